// Benchmark helper: the receiving side — a few accounts online (available presence, so messages to their bare
// JIDs reach them, RFC 6121 §8.5.2.1.1) counting the messages they get and checking ids are unique.
// Two kinds: raw sessions with a tag scanner (default), or @xmpp/client (whose XML parser is slow enough on large
// bodies that it, not the server, would limit the large-body rows).

import tls from 'node:tls';
import { client, xml, type Client } from '@xmpp/client';
import { idOf, openBoundSession, StanzaScanner } from './raw-client.js';
import { trustTestCertificate } from '../spec/host/c2s/helpers.js';

export interface ReceiverAccount {
  username: string;
  password: string;
}

export interface ReceiverOptions {
  port: number;
  ca: string;
  domain: string;
  accounts: readonly ReceiverAccount[];
  timeoutMs: number;
}

export type ReceiverKind = 'raw' | 'xmpp-client';

/** Distinct message ids seen since the last reset, and repeats. */
class IdCounter {
  private readonly ids = new Set<string>();
  duplicates = 0;

  add(id: string): void {
    if (this.ids.has(id)) this.duplicates++;
    else this.ids.add(id);
  }

  get received(): number {
    return this.ids.size;
  }

  get events(): number {
    return this.ids.size + this.duplicates;
  }

  reset(): void {
    this.ids.clear();
    this.duplicates = 0;
  }
}

export abstract class Receivers {
  protected readonly counter = new IdCounter();

  static connect(kind: ReceiverKind, opts: ReceiverOptions): Promise<Receivers> {
    return kind === 'raw' ? RawReceivers.open(opts) : XmppClientReceivers.open(opts);
  }

  /** Messages with distinct ids since the last reset. */
  get received(): number {
    return this.counter.received;
  }

  get duplicates(): number {
    return this.counter.duplicates;
  }

  reset(): void {
    this.counter.reset();
  }

  /** Wait until no message arrived for quietMs (in-flight deliveries drained), at most maxMs. */
  async settle(quietMs = 300, maxMs = 10_000): Promise<void> {
    const started = Date.now();
    let last = -1;
    while (Date.now() - started < maxMs) {
      const now = this.counter.events;
      if (now === last) return;
      last = now;
      await new Promise((r) => setTimeout(r, quietMs));
    }
  }

  abstract stop(): Promise<void>;
}

class RawReceivers extends Receivers {
  private readonly sockets: tls.TLSSocket[] = [];

  static async open(opts: ReceiverOptions): Promise<RawReceivers> {
    const receivers = new RawReceivers();
    for (const account of opts.accounts) {
      const socket = await openBoundSession({ ...opts, ...account, resource: 'bench' });
      receivers.sockets.push(socket);
      let onOwnPresence: () => void = () => undefined;
      const available = new Promise<void>((resolve) => (onOwnPresence = resolve));
      const scanner = new StanzaScanner((name, tag) => {
        if (name === 'message') receivers.counter.add(idOf(tag));
        else onOwnPresence();
      });
      socket.on('data', (text: string) => scanner.write(text));
      // Initial presence: the session becomes available; the server echoes it to the account's own resources.
      socket.write('<presence/>');
      await withTimeout(available, opts.timeoutMs, `${account.username}'s own presence`);
    }
    return receivers;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.end('</stream:stream>');
    await new Promise((r) => setTimeout(r, 100));
    for (const socket of this.sockets) socket.destroy();
  }
}

class XmppClientReceivers extends Receivers {
  private readonly clients: Client[] = [];

  static async open(opts: ReceiverOptions): Promise<XmppClientReceivers> {
    trustTestCertificate(opts.ca);
    const receivers = new XmppClientReceivers();
    for (const account of opts.accounts) {
      const c = client({
        service: `xmpps://127.0.0.1:${opts.port}`,
        domain: opts.domain,
        username: account.username,
        password: account.password,
        resource: 'bench',
      });
      c.reconnect.stop();
      c.on('error', () => undefined);
      receivers.clients.push(c);
      let onOwnPresence: () => void = () => undefined;
      const available = new Promise<void>((resolve) => (onOwnPresence = resolve));
      c.on('stanza', (el) => {
        if (el.is('message') && el.getChild('body') !== undefined) receivers.counter.add(el.attrs.id ?? '');
        else if (el.is('presence')) onOwnPresence();
      });
      await withTimeout(c.start(), opts.timeoutMs, `${account.username} to come online`);
      await c.send(xml('presence'));
      await withTimeout(available, opts.timeoutMs, `${account.username}'s own presence`);
    }
    return receivers;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => withTimeout(c.stop(), 2_000, 'client stop').catch(() => undefined)));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
