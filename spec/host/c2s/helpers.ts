// Client-side helpers for c2s specs: a raw XML socket that can do STARTTLS, and @xmpp/client set up to
// trust the test certificate (and nothing else: verification stays on, unlike NODE_TLS_REJECT_UNAUTHORIZED=0).

import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { client, xml, type Client } from '@xmpp/client';
import { testTls } from '../../helpers/server.js';

export const DEFAULT_WAIT_MS = 5_000;

/** Reject after `ms` with a message naming what we were waiting for, so no spec hangs. */
export function withTimeout<T>(promise: Promise<T>, what: string, ms = DEFAULT_WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const testCa = (): string => readFileSync(testTls().cert, 'utf8');

let restoreConnect: (() => void) | undefined;

/**
 * @xmpp/client's STARTTLS calls tls.connect({ socket, host }) with no way to pass a CA. Add the test CA (or `ca`) to
 * the options of every connection this process makes; hostname checks and chain validation still run.
 */
export function trustTestCertificate(ca: string = testCa()): () => void {
  if (restoreConnect) return restoreConnect;
  const original = tls.connect;
  const patched = ((...args: unknown[]) => {
    if (typeof args[0] === 'object' && args[0] !== null) args[0] = { ca, ...(args[0] as object) };
    return (original as (...a: unknown[]) => tls.TLSSocket)(...args);
  }) as typeof tls.connect;
  (tls as { connect: typeof tls.connect }).connect = patched;
  restoreConnect = () => {
    (tls as { connect: typeof tls.connect }).connect = original;
    restoreConnect = undefined;
  };
  return restoreConnect;
}

export interface ClientOptions {
  port: number;
  username: string;
  password: string;
  resource?: string;
  /** Force a SASL mechanism (e.g. PLAIN); default: the client's own choice (SCRAM-SHA-1). */
  mechanism?: string;
  /** Direct TLS (XEP-0368) instead of STARTTLS. */
  directTls?: boolean;
}

/** An @xmpp/client session, online (bound) or rejected within the timeout. */
export async function startClient(opts: ClientOptions): Promise<Client> {
  trustTestCertificate();
  const credentials = opts.mechanism
    ? async (authenticate: (c: { username: string; password: string }, m: string) => Promise<void>) =>
        authenticate({ username: opts.username, password: opts.password }, opts.mechanism!)
    : { username: opts.username, password: opts.password };
  const c = client({
    service: `${opts.directTls ? 'xmpps' : 'xmpp'}://127.0.0.1:${opts.port}`,
    domain: 'localhost',
    credentials,
    resource: opts.resource,
  });
  c.reconnect.stop();
  c.on('error', () => undefined);
  try {
    await withTimeout(c.start(), `${opts.username} to come online`);
  } catch (err) {
    await stopClient(c);
    throw err;
  }
  return c;
}

export async function stopClient(c: Client): Promise<void> {
  try {
    await withTimeout(c.stop(), 'client stop', 2_000);
  } catch {
    // A client whose stream the server already closed has nothing left to stop.
  }
}

/** Send initial presence and wait for the server to echo it back: the client is now available for messages. */
export async function goOnline(c: Client, who: string): Promise<void> {
  const self = nextStanza(c, (el) => el.is('presence'), `${who} to see their own presence`);
  await c.send(xml('presence'));
  await self;
}

/** The next stanza matching `match`, within the timeout. */
export function nextStanza(c: Client, match: (el: ReturnType<typeof xml>) => boolean, what: string, ms = DEFAULT_WAIT_MS): Promise<ReturnType<typeof xml>> {
  return withTimeout(
    new Promise((resolve) => {
      const listener = (el: ReturnType<typeof xml>) => {
        if (!match(el)) return;
        c.removeListener('stanza', listener);
        resolve(el);
      };
      c.on('stanza', listener);
    }),
    what,
    ms,
  );
}

/**
 * A bare XML-over-TCP client for protocol specs: write text, wait for text. Can switch to TLS (STARTTLS).
 */
export class RawClient {
  private socket: net.Socket;
  private buffer = '';
  private closed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  static connect(port: number, opts: { tls?: boolean } = {}): Promise<RawClient> {
    return withTimeout(
      new Promise((resolve, reject) => {
        const socket = opts.tls
          ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: testCa() }, () => resolve(new RawClient(socket)))
          : net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket)));
        socket.once('error', reject);
      }),
      `connection to port ${port}`,
    );
  }

  private listen(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  get text(): string {
    return this.buffer;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(text: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /** Write, and resolve once the bytes are handed to the kernel (or the socket died). */
  sendAndFlush(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Wait until the received text matches; returns the match and consumes the text up to its end. */
  async waitFor(pattern: RegExp, what = String(pattern), ms = DEFAULT_WAIT_MS): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = pattern.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m.index + m[0].length);
        return m;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; received: ${this.buffer.slice(0, 500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received: ${this.buffer.slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Wait for the server to close the TCP connection. */
  async waitClosed(ms = DEFAULT_WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for the server to close; received: ${this.buffer.slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Upgrade after `<proceed/>`; whatever arrives from now on is TLS-protected. */
  async starttls(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = await withTimeout(
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: raw, servername: 'localhost', ca: testCa() }, () => resolve(s));
        s.once('error', reject);
      }),
      'TLS handshake',
    );
    this.socket = secure;
    this.buffer = '';
    this.listen(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}

export const streamOpen = (to = 'localhost', extra = ''): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'${extra}>`;

const FEATURES = /<stream:features>[\s\S]*?<\/stream:features>/;

/**
 * STARTTLS, PLAIN auth and the stream restart on a raw client, up to the features after authentication (no bind);
 * returns the features offered after TLS and after authentication too.
 */
export async function rawAuthenticate(port: number, user: string, password: string): Promise<{ raw: RawClient; afterTls: string; afterAuth: string }> {
  const raw = await RawClient.connect(port);
  raw.send(streamOpen());
  await raw.waitFor(/<\/stream:features>/, 'initial features');
  raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await raw.waitFor(/<proceed[^>]*\/>/, 'proceed');
  await raw.starttls();
  raw.send(streamOpen());
  const afterTls = (await raw.waitFor(FEATURES, 'features after TLS'))[0];
  const payload = Buffer.from(`\0${user}\0${password}`).toString('base64');
  raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`);
  await raw.waitFor(/<success[^>]*(\/>|>[^<]*<\/success>)/, 'SASL success');
  raw.send(streamOpen());
  const afterAuth = (await raw.waitFor(FEATURES, 'features after SASL'))[0];
  return { raw, afterTls, afterAuth };
}

/**
 * Logins for a spec's server at `port()` with the specs' password convention (`${user}-pw`), each client kept so
 * that closeAll (in an after hook) closes them all.
 */
export function rawLogins(port: () => number): { login(user: string, resource?: string): Promise<RawClient>; closeAll(): void } {
  const clients: RawClient[] = [];
  return {
    async login(user, resource) {
      const { raw } = await rawLogin(port(), user, `${user}-pw`, resource);
      clients.push(raw);
      return raw;
    },
    closeAll() {
      for (const c of clients.splice(0)) c.close();
    },
  };
}

/** STARTTLS, PLAIN auth and bind on a raw client; returns the bound full JID. */
export async function rawLogin(port: number, user: string, password: string, resource?: string): Promise<{ raw: RawClient; jid: string }> {
  const { raw } = await rawAuthenticate(port, user, password);
  raw.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${resource ? `<resource>${resource}</resource>` : ''}</bind></iq>`);
  const m = await raw.waitFor(/<jid>([^<]+)<\/jid>/, 'bind result');
  return { raw, jid: m[1]! };
}
