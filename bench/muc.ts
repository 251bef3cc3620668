// Benchmark series `muc` (BENCH_SERIES=muc): one room with 100 and 1,000 occupants (raw direct-TLS sessions), its
// owner sending groupchat messages with a window of messages in flight; groupchat messages per second (the sender's
// own copies back) and deliveries per second (copies counted at every occupant's socket). XEP-0045 §7.4.

import type tls from 'node:tls';
import { openBoundSession } from './raw-client.js';
import { integer, markdownTable } from './table.js';

export interface MucBenchOptions {
  /** The server's direct-TLS c2s port. */
  port: number;
  ca: string;
  domain: string;
  /** The MUC service's domain, e.g. conference.localhost. */
  service: string;
  /** Occupant accounts (the first is the sender and owner); all share `password`. */
  usernames: readonly string[];
  password: string;
  seconds: number;
  /** Groupchat messages in flight from the sender (sent, not yet seen back). */
  window: number;
  log(text: string): void;
}

export interface MucRow {
  server: string;
  occupants: number;
  seconds: number;
  messagesPerSecond: number;
  deliveriesPerSecond: number;
  /** Deliveries expected (messages × occupants) that never arrived before the drain ended. */
  missing: number;
}

/** Counts `</message>` in a socket's text (a tag split across chunks included: the tail is kept). */
class MessageCounter {
  count = 0;
  private tail = '';
  constructor(socket: tls.TLSSocket, onMessage?: () => void) {
    socket.on('data', (text: string) => {
      const s = this.tail + text;
      let i = s.indexOf('</message>');
      while (i !== -1) {
        this.count++;
        onMessage?.();
        i = s.indexOf('</message>', i + 10);
      }
      this.tail = s.slice(-9);
    });
  }
}

const waitFor = async (check: () => boolean, ms: number, what: () => string): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`muc bench: timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Log `usernames` in, join them to a fresh room, then measure. Sessions are closed at the end. */
export async function measureRoom(server: string, opts: MucBenchOptions): Promise<MucRow> {
  const room = `bench${Date.now().toString(36)}@${opts.service}`;
  const sockets: tls.TLSSocket[] = [];
  try {
    const started = Date.now();
    let next = 0;
    const open = async (): Promise<void> => {
      while (next < opts.usernames.length) {
        const i = next++;
        sockets[i] = await openBoundSession({ port: opts.port, ca: opts.ca, domain: opts.domain, username: opts.usernames[i]!, password: opts.password, resource: 'muc', timeoutMs: 60_000 });
      }
    };
    await Promise.all(Array.from({ length: 32 }, open));
    opts.log(`  ${server}: ${sockets.length} sessions in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // Joins: each occupant's subject message ends its join (§7.2.16); count them with a text watch.
    let joined = 0;
    const watchJoin = (socket: tls.TLSSocket): void => {
      let seen = '';
      const onData = (text: string): void => {
        // The tail of the last chunk only: a tag split between chunks (a chunk may carry many later presences).
        const both = seen + text;
        seen = both.slice(-16);
        if (both.includes('<subject')) {
          joined++;
          socket.off('data', onData);
        }
      };
      socket.on('data', onData);
    };
    const owner = sockets[0]!;
    watchJoin(owner);
    owner.write(`<presence to='${room}/o0'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await waitFor(() => joined === 1, 15_000, () => 'the owner to join');
    // The instant room (§10.1.2): accept the default configuration, which unlocks it.
    owner.write(`<iq type='set' id='instant' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 1; i < sockets.length; i++) {
      watchJoin(sockets[i]!);
      sockets[i]!.write(`<presence to='${room}/o${i}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
      // Joins in batches: each one sends its presence to everyone in the room.
      if (i % 50 === 0) await waitFor(() => joined === i + 1, 60_000, () => `${i + 1} occupants (${joined} in)`);
    }
    await waitFor(() => joined === sockets.length, 60_000, () => `every occupant to join (${joined} of ${sockets.length})`);
    // Let the last presences settle before counting.
    await new Promise((r) => setTimeout(r, 500));

    let echoed = 0;
    let sent = 0;
    let isSending = true;
    const send = (): void => {
      owner.write(`<message to='${room}' type='groupchat' id='m${sent}'><body>Load ${sent}: db1 is fine.</body></message>`);
      sent++;
    };
    const counters = sockets.map((s, i) => new MessageCounter(s, i === 0 ? () => {
      echoed++;
      if (isSending) send();
    } : undefined));
    const t0 = Date.now();
    for (let i = 0; i < opts.window; i++) send();
    await new Promise((r) => setTimeout(r, opts.seconds * 1000));
    isSending = false;
    const echoedAtEnd = echoed;
    const elapsed = (Date.now() - t0) / 1000;
    const deliveredAtEnd = counters.reduce((n, c) => n + c.count, 0);
    await waitFor(() => echoed >= sent, 10_000, () => 'the messages in flight').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const delivered = counters.reduce((n, c) => n + c.count, 0);
    return {
      server,
      occupants: sockets.length,
      seconds: elapsed,
      messagesPerSecond: echoedAtEnd / elapsed,
      deliveriesPerSecond: deliveredAtEnd / elapsed,
      missing: Math.max(0, sent * sockets.length - delivered),
    };
  } finally {
    for (const s of sockets) s?.destroy();
  }
}

export function renderMucTable(rows: readonly MucRow[]): string {
  return markdownTable<MucRow>([
    { title: 'muc row', align: 'left', value: (r) => r.server },
    { title: 'occupants', value: (r) => integer(r.occupants) },
    { title: 'groupchat msg/s', value: (r) => integer(r.messagesPerSecond) },
    { title: 'deliveries/s', value: (r) => integer(r.deliveriesPerSecond) },
    { title: 'missing after drain', value: (r) => integer(r.missing) },
  ], rows);
}
