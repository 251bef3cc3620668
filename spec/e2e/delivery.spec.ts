// Delivery never lies and never drops (RFC 6121 §8.5, XEP-0160): a client that stops reading gets what a 201 said
// "delivered", the rest waits offline; a large offline queue arrives whole over a slow reader; a client that leaves
// mid-flush gets the rest next time; the per-account offline quota refuses with 507, never drops.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { xml } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rawLogin, type RawClient } from '../host/c2s/helpers.js';
import { basic, post, waitFor } from '../helpers/load.js';
import { FLUSH_BATCH_ITEMS } from '../../lib/host/modules/message.js';

const USERS: Array<[string, string]> = [
  ['alice@localhost', 'alice-dl-pw'],
  ['bob@localhost', 'bob-dl-pw'],
  ['carol@localhost', 'carol-dl-pw'],
  ['dave@localhost', 'dave-dl-pw'],
  ['erin@localhost', 'erin-dl-pw'],
];
const UNLIMITED = { post_msg: { rate_per_second: 100000, rate_burst: 1000000 } };

/** A logged-in, available raw client that counts the ids of the messages it reads, and can stop reading. */
export class Reader {
  readonly ids: string[] = [];
  private carry = '';
  closed = false;

  private constructor(
    readonly raw: RawClient,
    readonly socket: TLSSocket,
  ) {
    socket.on('data', (chunk: string) => this.scan(chunk));
    socket.on('close', () => (this.closed = true));
  }

  static async login(port: number, user: string, password: string, resource: string, opts: { paused?: boolean } = {}): Promise<Reader> {
    const { raw } = await rawLogin(port, user, password, resource);
    const reader = new Reader(raw, (raw as unknown as { socket: TLSSocket }).socket);
    if (opts.paused) reader.socket.pause();
    raw.send('<presence/>');
    if (!opts.paused) await raw.waitFor(/<presence[^>]*(\/>|>)/, 'own presence');
    return reader;
  }

  get unique(): number {
    return new Set(this.ids).size;
  }

  /** Message ids as they stream in; a tag cut between chunks is completed by the next one. */
  private scan(chunk: string): void {
    const text = this.carry + chunk;
    const re = /<message\b[^>]*?\sid="([^"]+)"[^>]*>/g;
    let end = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      this.ids.push(m[1]!);
      end = re.lastIndex;
    }
    this.carry = text.slice(Math.max(end, text.length - 4096));
  }

  /** Read in short bursts with pauses, so the server's writes back up again and again; returns the stop. */
  slowly(burstMs = 5, everyMs = 20): () => void {
    this.socket.pause();
    let burst: NodeJS.Timeout | undefined;
    const pump = setInterval(() => {
      this.socket.resume();
      burst = setTimeout(() => this.socket.pause(), burstMs);
    }, everyMs);
    return () => {
      clearInterval(pump);
      // A burst still running would pause the socket after this and leave it paused for good.
      clearTimeout(burst);
      this.socket.resume();
    };
  }

  close(): void {
    this.raw.close();
  }
}

function count(ids: readonly string[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  return seen;
}

describe('Delivery', () => {
  let ts: TestServer;
  const readers: Reader[] = [];
  const login = async (user: string, resource: string, opts: { paused?: boolean } = {}): Promise<Reader> => {
    const r = await Reader.login(ts.c2sPort, user, `${user}-dl-pw`, resource, opts);
    readers.push(r);
    return r;
  };
  const gone = async (r: Reader, jid: string): Promise<void> => {
    r.close();
    await waitFor(`${jid} to leave`, () => ts.server.sessions.byFull(jid) === undefined, 10_000);
  };
  /** Store `n` messages for an offline account straight through the router (fast: no HTTP). */
  const fill = async (to: string, n: number, bodyBytes: number, prefix: string): Promise<string[]> => {
    const api = ts.server.modules.apiOf('localhost', 'message')!;
    const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    const body = 'x'.repeat(bodyBytes);
    for (let i = 0; i < n; i += 500) {
      const outcomes = await Promise.all(ids.slice(i, i + 500).map((id) => api.send(xml('message', { to, from: 'bob@localhost', type: 'chat', id }, xml('body', {}, body)))));
      assert.ok(outcomes.every((o) => o === 'stored'), 'the account is offline: every message is stored');
    }
    return ids;
  };

  before(async () => {
    ts = await startTestServer({ config: { ...UNLIMITED, message: { storage_archive_item_limit: 30000 } }, users: USERS });
  });
  after(async () => {
    for (const r of readers) r.close();
    await ts.stop();
  });

  it('a client that stops reading: a 201 says delivered only if written, else stored, and every stored one comes at the next login', async (t) => {
    const first = await login('alice', 'paused', { paused: false });
    first.socket.pause();
    const answers: Array<{ id: string; outcome: string }> = [];
    const body = 'y'.repeat(32 * 1024);
    let sent = 0;
    // Waves of parallel POSTs until the stalled client makes the server store some (bounded in count either way).
    for (let wave = 0; wave < 60 && answers.filter((a) => a.outcome === 'stored').length < 20; wave++) {
      const res = await Promise.all(
        Array.from({ length: 25 }, () =>
          post(ts.httpUrl, '/msg/alice', { headers: { authorization: basic('bob@localhost', 'bob-dl-pw'), 'content-type': 'text/plain' }, body: `${sent++} ${body}` }),
        ),
      );
      for (const r of res) {
        assert.equal(r.status, 201, r.body);
        answers.push(JSON.parse(r.body) as { id: string; outcome: string });
      }
    }
    const delivered = answers.filter((a) => a.outcome === 'delivered').map((a) => a.id);
    const stored = answers.filter((a) => a.outcome === 'stored').map((a) => a.id);
    t.diagnostic(`${answers.length} POSTs: ${delivered.length} delivered, ${stored.length} stored; server session open: ${ts.server.sessions.byFull('alice@localhost/paused') !== undefined}`);
    assert.ok(stored.length > 0, 'the stalled client made the server store messages');
    assert.ok(delivered.length > 0, 'the first messages were written');

    // The client reads again: everything a 201 called delivered is on its way to it.
    first.socket.resume();
    await waitFor('every delivered message at the reading client', () => delivered.every((id) => first.ids.includes(id)), 20_000).catch(() => undefined);
    const missed = delivered.filter((id) => !first.ids.includes(id));
    assert.deepEqual(missed, [], 'every message answered delivered reached the client');
    await gone(first, 'alice@localhost/paused');

    const second = await login('alice', 'again');
    const seen1 = new Set(first.ids);
    const expected = stored.filter((id) => !seen1.has(id));
    await waitFor('the stored messages at the next login', () => expected.every((id) => second.ids.includes(id)), 20_000).catch(() => undefined);
    assert.deepEqual(expected.filter((id) => !second.ids.includes(id)), [], 'every stored message arrives at the next login');
    const all = [...first.ids, ...second.ids];
    const duplicates = all.length - new Set(all).size;
    t.diagnostic(`received ${first.ids.length} while online, ${second.ids.length} at the next login; duplicates ${duplicates}`);
    assert.ok(duplicates <= stored.length, 'a duplicate only for a message stored after its wait and written after all');
    await gone(second, 'alice@localhost/again');
  });

  it(`a queue of 20,000 offline messages (several MB) arrives whole at login over a slow reader, in batches of ${FLUSH_BATCH_ITEMS}`, async (t) => {
    const ids = await fill('carol@localhost', 20_000, 300, 'q');
    const reader = await login('carol', 'slow', { paused: true });
    const stop = reader.slowly();
    const started = Date.now();
    try {
      await waitFor('the whole queue', () => reader.unique >= ids.length, 60_000);
    } finally {
      stop();
    }
    t.diagnostic(`20,000 messages in ${Date.now() - started} ms; duplicates ${reader.ids.length - reader.unique}`);
    const got = count(reader.ids);
    assert.deepEqual(ids.filter((id) => !got.has(id)), []);
    assert.equal(reader.ids.length, reader.unique, 'each once');
    assert.equal(ts.server.sessions.byFull('carol@localhost/slow') !== undefined, true, 'the slow reader was never cut off');
    const offline = ts.server.modules.apiOf('localhost', 'message')!.openArchive('offline');
    for (let i = 0; i < 100 && (await offline.count('carol@localhost')) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await offline.count('carol@localhost'), 0, 'deleted once written');
    await gone(reader, 'carol@localhost/slow');
  });

  it('a client that leaves mid-flush gets the rest at the next login: nothing lost, duplicates bounded', async (t) => {
    const ids = await fill('dave@localhost', 20_000, 300, 'm');
    const first = await login('dave', 'leaves', { paused: true });
    const stop = first.slowly(2, 40);
    await waitFor('part of the queue', () => first.unique >= 1000, 20_000);
    // It ends its stream mid-flush and reads what is still on its way, as a client that quits does.
    first.raw.send('</stream:stream>');
    stop();
    await waitFor('the server to close', () => first.closed, 10_000);
    await waitFor('dave to leave', () => ts.server.sessions.byFull('dave@localhost/leaves') === undefined, 10_000);
    const second = await login('dave', 'back');
    const seen1 = new Set(first.ids);
    assert.ok(seen1.size < ids.length, 'the first session left before the end of the queue');
    await waitFor('the rest', () => ids.every((id) => seen1.has(id) || second.ids.includes(id)), 30_000).catch(() => undefined);
    const lost = ids.filter((id) => !seen1.has(id) && !second.ids.includes(id));
    const all = [...first.ids, ...second.ids];
    const duplicates = all.length - new Set(all).size;
    t.diagnostic(`first session ${first.ids.length}, second ${second.ids.length}; lost ${lost.length}; duplicates ${duplicates}`);
    assert.deepEqual(lost, [], 'nothing lost');
    assert.ok(duplicates <= FLUSH_BATCH_ITEMS, `duplicates bounded by one batch (${duplicates})`);
    await gone(second, 'dave@localhost/back');
  });

  it('a client that vanishes mid-flush (connection reset): what it did not read that was not yet written stays stored', async (t) => {
    const ids = await fill('erin@localhost', 20_000, 300, 'v');
    const first = await login('erin', 'vanishes', { paused: true });
    const stop = first.slowly(2, 40);
    await waitFor('part of the queue', () => first.unique >= 500, 20_000);
    // Closed with unread data in its receive buffer: the kernel resets the connection.
    first.socket.destroy();
    stop();
    await waitFor('erin to leave', () => ts.server.sessions.byFull('erin@localhost/vanishes') === undefined, 10_000);
    const api = ts.server.modules.apiOf('localhost', 'message')!;
    const left = await api.openArchive('offline').count('erin@localhost');
    const second = await login('erin', 'back');
    await waitFor('what was left', () => second.unique >= left, 30_000);
    const seen = new Set([...first.ids, ...second.ids]);
    const lost = ids.filter((id) => !seen.has(id)).length;
    t.diagnostic(`read ${first.unique} before the reset, ${left} still stored, ${second.unique} at the next login; unread in the network when it vanished: ${lost}`);
    // Without stream management (XEP-0198) what the kernel had taken for the vanished client is gone with it; the
    // server holds no more than one batch in its own buffer beyond that.
    assert.ok(left > 0, 'it vanished before the end of the queue');
    assert.equal(second.unique, left, 'everything still stored arrives');
    await gone(second, 'erin@localhost/back');
  });

  it('refuses a message over the offline quota with 507 and one sentence, never dropping it quietly', async () => {
    const small = await startTestServer({ config: { ...UNLIMITED, message: { storage_archive_item_limit: 3 } }, users: USERS });
    try {
      const send = (text: string) => post(small.httpUrl, '/msg/alice', { headers: { authorization: basic('bob@localhost', 'bob-dl-pw'), 'content-type': 'text/plain' }, body: text });
      const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => send(`quota ${i}`)));
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [201, 201, 201, 507, 507], 'parallel requests cannot pass the last place');
      const refused = answers.find((a) => a.status === 507)!;
      assert.equal(refused.headers['content-type'], 'application/problem+json');
      assert.match((JSON.parse(refused.body) as { detail: string }).detail, /^The offline storage of alice@localhost is full \(3 messages\); it empties when the recipient comes online\.$/);

      // An XMPP sender gets resource-constraint.
      const { raw } = await rawLogin(small.c2sPort, 'bob', 'bob-dl-pw', 'sender');
      raw.send("<message to='alice@localhost' id='q9' type='chat'><body>over</body></message>");
      const [bounce] = await raw.waitFor(/<message [^>]*type="error"[^>]*>.*?<\/message>/s, 'the bounce');
      assert.match(bounce, /<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
      assert.match(bounce, /id="q9"/);
      raw.close();

      // Once delivered, the queue has room again.
      const reader = await Reader.login(small.c2sPort, 'alice', 'alice-dl-pw', 'r');
      await waitFor('the three stored', () => reader.unique === 3, 10_000);
      reader.close();
      await waitFor('alice to leave', () => small.server.sessions.byFull('alice@localhost/r') === undefined, 10_000);
      assert.equal((await send('room again')).status, 201);
    } finally {
      await small.stop();
    }
  });
});
