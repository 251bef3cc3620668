// Idempotency-Key (post_msg.md §12) on the adapter: replay with Idempotent-Replayed, 422 for another request under
// the key, 409 while in flight, which answers are kept, the window, per-account keys, a header that is not a key.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { StanzaError, type HttpContext, type MapStore } from '../../lib/host/api.js';
import { load } from '../../lib/post_msg/index.js';
import { Idempotency, fingerprint, type IdempotencyRecord } from '../../lib/post_msg/idempotency.js';
import { fakeModule, type FakeModule } from './helpers/fake-module.js';
import { basic, request, type SpecResponse } from './helpers/http.js';

describe('post_msg Idempotency-Key', () => {
  let fake: FakeModule;
  let server: Server;
  let url: string;
  const post = (path: string, key: string | undefined, body = 'hello', extra: Record<string, string> = {}): Promise<SpecResponse> =>
    request(`${url}${path}`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain', ...(key ? { 'Idempotency-Key': key } : {}), ...extra }, body });

  before(async () => {
    fake = fakeModule({ options: { rate_burst: 1000, rate_per_second: 1000 }, users: [['bob@localhost', 'secret'], ['alice@localhost', 'pw'], ['carol@localhost', 'cpw']] });
    load(fake.api);
    server = fake.app().listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msg`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('the same key and request again: nothing sent again, the first status and body with Idempotent-Replayed: true', async () => {
    const before = fake.sent.length;
    const first = await post('/alice', 'k-replay-1');
    assert.equal(first.status, 201);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    const again = await post('/alice', 'k-replay-1');
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.match(String(again.headers['content-type']), /^application\/json/);
    assert.equal(fake.sent.length, before + 1, 'sent once');
  });

  it('the same key with another body, path or Content-Type: 422', async () => {
    assert.equal((await post('/alice', 'k-other')).status, 201);
    for (const res of [await post('/alice', 'k-other', 'other text'), await post('/carol', 'k-other'), await post('/alice', 'k-other', 'hello', { 'Content-Type': 'text/plain; charset=utf-8' })]) {
      assert.equal(res.status, 422);
      assert.match(res.json().detail as string, /this Idempotency-Key was used for another request/i);
    }
  });

  it('keeps 4xx answers (replayed), not 5xx: a retry after a 500-class failure is processed anew', async () => {
    const notFound = await post('/nobody', 'k-404');
    assert.equal(notFound.status, 404);
    const again = await post('/nobody', 'k-404');
    assert.equal(again.status, 404);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.match(String(again.headers['content-type']), /problem\+json/);

    fake.setSendResult(new StanzaError('internal-server-error', 'boom'));
    const failed = await post('/alice', 'k-5xx');
    assert.ok(failed.status >= 500, String(failed.status));
    fake.setSendResult('delivered');
    const retry = await post('/alice', 'k-5xx');
    assert.equal(retry.status, 201);
    assert.equal(retry.headers['idempotent-replayed'], undefined);
  });

  it('keys are per sender account', async () => {
    assert.equal((await post('/alice', 'k-shared')).status, 201);
    const other = await request(`${url}/bob`, { headers: { Authorization: basic('alice', 'pw'), 'Content-Type': 'text/plain', 'Idempotency-Key': 'k-shared' }, body: 'hello' });
    assert.equal(other.status, 201);
    assert.equal(other.headers['idempotent-replayed'], undefined);
  });

  it('a key that is not 1–255 visible ASCII characters: 400 naming the header, nothing sent', async () => {
    const before = fake.sent.length;
    for (const key of ['a b', 'x'.repeat(256), 'é']) {
      const res = await request(`${url}/alice`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain', 'Idempotency-Key': key }, body: 'hello' }).catch(() => undefined);
      if (res === undefined) continue; // a header Node refuses to send
      assert.equal(res.status, 400, key);
      assert.match(res.json().detail as string, /Idempotency-Key/);
    }
    assert.equal(fake.sent.length, before);
    assert.equal((await post('/alice', 'x'.repeat(255))).status, 201);
  });

  it('401 and 429 are never recorded', async () => {
    const unauth = await request(`${url}/alice`, { headers: { Authorization: basic('bob', 'wrong'), 'Content-Type': 'text/plain', 'Idempotency-Key': 'k-401' }, body: 'hello' });
    assert.equal(unauth.status, 401);
    const ok = await post('/alice', 'k-401');
    assert.equal(ok.status, 201);
    assert.equal(ok.headers['idempotent-replayed'], undefined);
  });
});

/** A MapStore in memory, with a gate to hold writes. */
function memoryMap(): MapStore<IdempotencyRecord> & { rows: Map<string, IdempotencyRecord> } {
  const rows = new Map<string, IdempotencyRecord>();
  return {
    rows,
    get: async (u, k) => rows.get(`${u}\n${k}`),
    getAll: async (u) => new Map([...rows].filter(([k]) => k.startsWith(`${u}\n`)).map(([k, v]) => [k.slice(u.length + 1), v])),
    set: async (u, k, v) => void (v === undefined ? rows.delete(`${u}\n${k}`) : rows.set(`${u}\n${k}`, v)),
    setKeys: async (u, entries) => {
      for (const [k, v] of entries) if (v === undefined) rows.delete(`${u}\n${k}`); else rows.set(`${u}\n${k}`, v);
    },
    clear: async () => rows.clear(),
  };
}

function fakeCtx(body = 'hello'): HttpContext & { problems: number[]; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const ctx = {
    method: 'POST',
    path: '/msg/alice',
    problems: [] as number[],
    headers,
    status: 404,
    body: undefined as unknown,
    get: (name: string) => (name.toLowerCase() === 'content-type' ? 'text/plain' : ''),
    set: (name: string, value: string) => void (headers[name.toLowerCase()] = value),
    response: { get: (name: string) => headers[name.toLowerCase()] ?? '' },
  };
  void body;
  return ctx as unknown as HttpContext & { problems: number[]; headers: Record<string, string> };
}

describe('Idempotency', () => {
  it('409 while the first request with the key is still being processed', async () => {
    const idem = new Idempotency(memoryMap(), 60);
    const body = Buffer.from('hello');
    const first = await idem.begin(fakeCtx(), 'bob@localhost', 'k', body, () => assert.fail('first is admitted'));
    assert.equal(first.proceed, true);
    const problems: number[] = [];
    const second = await idem.begin(fakeCtx(), 'bob@localhost', 'k', body, (p) => problems.push(p.status));
    assert.equal(second.proceed, false);
    assert.deepEqual(problems, [409]);
    if (first.proceed) await first.slot!.finish(201, 'application/json', '{"id":"a"}');
    const third = fakeCtx();
    assert.equal((await idem.begin(third, 'bob@localhost', 'k', body, () => assert.fail('replayed'))).proceed, false);
    assert.equal(third.headers['idempotent-replayed'], 'true');
  });

  it('a pending record (the process died after routing) gives its stanza ids back to the retry', async () => {
    const map = memoryMap();
    const body = Buffer.from('hello');
    const idem = new Idempotency(map, 60);
    const first = await idem.begin(fakeCtx(), 'bob@localhost', 'k', body, () => undefined);
    assert.ok(first.proceed);
    assert.equal(first.slot!.reusedIds, undefined);
    await first.slot!.reserve(['stanza-1']);
    // A new process: nothing in flight, the pending record on disk.
    const restarted = new Idempotency(map, 60);
    const retry = await restarted.begin(fakeCtx(), 'bob@localhost', 'k', body, () => assert.fail('admitted'));
    assert.ok(retry.proceed);
    assert.deepEqual(retry.slot!.reusedIds, ['stanza-1']);
  });

  it('forgets a key after idempotency_window seconds, and sweeps expired records', async () => {
    let now = 0;
    const map = memoryMap();
    const idem = new Idempotency(map, 10, () => now);
    const body = Buffer.from('hello');
    const a = await idem.begin(fakeCtx(), 'bob@localhost', 'k', body, () => undefined);
    assert.ok(a.proceed);
    await a.slot!.finish(201, 'application/json', '{}');
    now = 9_999;
    assert.equal((await idem.begin(fakeCtx(), 'bob@localhost', 'k', body, () => undefined)).proceed, false, 'replayed inside the window');
    now = 10_000;
    const b = await idem.begin(fakeCtx(), 'bob@localhost', 'k', Buffer.from('other'), () => assert.fail('a new request after the window'));
    assert.ok(b.proceed);
    await b.slot!.abandon();
    for (let i = 0; i < 70; i++) {
      const s = await idem.begin(fakeCtx(), 'bob@localhost', `n${i}`, body, () => undefined);
      if (s.proceed) await s.slot!.finish(201, 'application/json', '{}');
      now += 1_000;
    }
    assert.ok(map.rows.size < 70, `${map.rows.size} records after a sweep`);
  });

  it('the fingerprint covers method, path, Content-Type and body bytes, unambiguously', () => {
    const base = fingerprint('POST', '/msg/alice', 'text/plain', Buffer.from('x'));
    assert.notEqual(fingerprint('POST', '/msg/alicetext/plain', '', Buffer.from('x')), fingerprint('POST', '/msg/alice', 'text/plain', Buffer.from('x')));
    assert.notEqual(fingerprint('POST', '/msg/bob', 'text/plain', Buffer.from('x')), base);
    assert.notEqual(fingerprint('POST', '/msg/alice', 'text/plain', Buffer.from('y')), base);
    assert.equal(fingerprint('post', '/msg/alice', 'text/plain', Buffer.from('x')), base);
  });
});
