// The tokenauth module (post_msg.md §11): the token store (only hashes kept, per account, deleted with it), its
// service, and the `tokens` HTTP app on the real server (koa-bodyparser, password only, one account's tokens).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { startTestServer, type TestServer } from '../../../helpers/server.js';
import { TokenStore, type StoredToken } from '../../../../lib/host/modules/tokenauth/index.js';
import { MAX_TOKENS_PER_ACCOUNT } from '../../../../lib/host/modules/tokenauth/store.js';
import { checkInput, parseBasic } from '../../../../lib/host/modules/tokenauth/http-app.js';
import type { MapStore, TokenService } from '../../../../lib/host/api.js';

/** A MapStore in memory (the contract suite checks the SQLite one). */
function memoryMap<T>(): MapStore<T> & { rows: Map<string, Map<string, T>> } {
  const rows = new Map<string, Map<string, T>>();
  const of = (user: string): Map<string, T> => rows.get(user) ?? rows.set(user, new Map()).get(user)!;
  return {
    rows,
    get: async (user, key) => rows.get(user)?.get(key),
    getAll: async (user) => new Map([...of(user)].sort(([a], [b]) => a.localeCompare(b))),
    set: async (user, key, value) => void (value === undefined ? of(user).delete(key) : of(user).set(key, value)),
    setKeys: async (user, entries) => {
      for (const [k, v] of entries) if (v === undefined) of(user).delete(k); else of(user).set(k, v);
    },
    clear: async (user) => void rows.delete(user),
  };
}

function memoryStore(now = () => Date.now()) {
  const tokens = memoryMap<StoredToken>();
  const index = memoryMap<string>();
  const accounts = new Set(['alice@localhost', 'bob@localhost']);
  const store = new TokenStore({ tokens: () => tokens, index: () => index, accountExists: async (b) => accounts.has(b), hosts: () => ['localhost'], now });
  return { store, tokens, index };
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('tokenauth', () => {
  describe('TokenStore', () => {
    it('mints xmppd_<id>.<secret> and keeps only the SHA-256 of the secret', async () => {
      const { store, tokens } = memoryStore();
      const { token, info } = await store.create('alice@localhost', { name: 'cron' });
      assert.match(token, /^xmppd_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
      assert.ok(token.startsWith(`xmppd_${info.id}.`));
      const stored = JSON.stringify([...tokens.rows.get('alice@localhost')!.values()]);
      assert.ok(!stored.includes(token.split('.')[1]!), 'the secret is not stored');
      assert.match(stored, /"hash":"[0-9a-f]{64}"/);
      assert.deepEqual(await store.verify(token), { ok: true, info });
    });

    it('refuses a wrong secret, an unknown id and a malformed token', async () => {
      const { store } = memoryStore();
      const { token } = await store.create('alice@localhost', { name: 'cron' });
      const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
      assert.deepEqual(await store.verify(wrong), { ok: false, reason: 'unknown' });
      assert.deepEqual(await store.verify(`xmppd_0000000000000000.${token.split('.')[1]}`), { ok: false, reason: 'unknown' });
      for (const bad of ['', 'xmppd_', token.toUpperCase(), `${token}x`, 'Bearer x']) assert.equal((await store.verify(bad)).ok, false, bad);
    });

    it('fails a revoked token at once, and only its owner revokes it', async () => {
      const { store } = memoryStore();
      const { token, info } = await store.create('alice@localhost', { name: 'cron' });
      assert.equal(await store.revoke('bob@localhost', info.id), false);
      assert.equal((await store.verify(token)).ok, true);
      assert.equal(await store.revoke('alice@localhost', info.id), true);
      assert.deepEqual(await store.verify(token), { ok: false, reason: 'unknown' });
      assert.equal(await store.revoke('alice@localhost', info.id), false);
    });

    it('expires a token after its lifetime', async () => {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const { store } = memoryStore(() => now);
      const { token, info } = await store.create('alice@localhost', { name: 'short', expiresInSeconds: 30 });
      assert.equal(info.expires, '2026-01-01T00:00:30.000Z');
      now += 29_000;
      assert.equal((await store.verify(token)).ok, true);
      now += 1_000;
      assert.deepEqual(await store.verify(token), { ok: false, reason: 'expired' });
    });

    it('holds at most MAX_TOKENS_PER_ACCOUNT live tokens per account; expired ones make room and go', async () => {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const { store, tokens, index } = memoryStore(() => now);
      const short = await store.create('alice@localhost', { name: 'short', expiresInSeconds: 60 });
      // Created in parallel: the cap holds for requests that arrive together.
      const results = await Promise.allSettled(Array.from({ length: MAX_TOKENS_PER_ACCOUNT + 5 }, (_, i) => store.create('alice@localhost', { name: `t${i}` })));
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(refused.length, 6, 'one short-lived and 99 more fit; the other 6 are refused');
      assert.match(String((refused[0] as PromiseRejectedResult).reason), /alice@localhost has 100 live tokens.*revoke one first/);
      assert.equal((await store.create('bob@localhost', { name: 'bob' })).info.account, 'bob@localhost', 'another account is not affected');
      now += 61_000;
      await store.create('alice@localhost', { name: 'after expiry' });
      assert.equal((await tokens.getAll('alice@localhost')).size, MAX_TOKENS_PER_ACCOUNT, 'the expired token is gone, the new one took its place');
      assert.equal(await index.get('localhost', short.info.id), undefined, 'and its index entry');
      await assert.rejects(store.create('alice@localhost', { name: 'one too many' }), /revoke one first/);
    });

    it('normalises the scope to bare JIDs and domains and checks recipients against it', async () => {
      const { store } = memoryStore();
      const { info } = await store.create('alice@localhost', { name: 'ops', to: ['Bob@LOCALHOST', 'example.org', 'bob@localhost'] });
      assert.deepEqual(info.to, ['bob@localhost', 'example.org']);
      assert.equal(store.allows(info, 'bob@localhost/phone'), true);
      assert.equal(store.allows(info, 'anyone@example.org'), true);
      assert.equal(store.allows(info, 'carol@localhost'), false);
      assert.equal(store.allows({ ...info, to: undefined }, 'carol@localhost'), true);
      await assert.rejects(store.create('alice@localhost', { name: 'x', to: ['bob@localhost/phone'] }), { code: 'HOST_ERR_TOKEN_INVALID' });
      await assert.rejects(store.create('alice@localhost', { name: 'x', to: [] }), { code: 'HOST_ERR_TOKEN_INVALID' });
    });

    it('refuses unknown accounts, other hosts, empty names and bad lifetimes', async () => {
      const { store } = memoryStore();
      await assert.rejects(store.create('carol@localhost', { name: 'x' }), { code: 'HOST_ERR_USER_UNKNOWN' });
      await assert.rejects(store.create('alice@example.org', { name: 'x' }), { code: 'HOST_ERR_HOST_UNKNOWN' });
      await assert.rejects(store.create('alice@localhost', { name: ' ' }), { code: 'HOST_ERR_TOKEN_INVALID' });
      await assert.rejects(store.create('alice@localhost', { name: 'a\u0000b' }), { code: 'HOST_ERR_TOKEN_INVALID' });
      for (const s of [0, 1.5, -1, 1e12]) await assert.rejects(store.create('alice@localhost', { name: 'x', expiresInSeconds: s }), { code: 'HOST_ERR_TOKEN_INVALID' });
    });

    it('lists an account\'s tokens oldest first, never with a hash or secret', async () => {
      let now = 1_000;
      const { store } = memoryStore(() => now);
      const a = await store.create('alice@localhost', { name: 'one' });
      now += 1;
      const b = await store.create('alice@localhost', { name: 'two' });
      await store.create('bob@localhost', { name: 'bobs' });
      const list = await store.list('alice@localhost');
      assert.deepEqual(list.map((t) => t.id), [a.info.id, b.info.id]);
      assert.ok(!JSON.stringify(list).includes('hash'));
      assert.ok(!JSON.stringify(list).includes(a.token.split('.')[1]!));
    });
  });

  describe('the tokens HTTP app input', () => {
    it('parses Basic strictly', () => {
      assert.deepEqual(parseBasic(basic('alice', 'p:w')), { username: 'alice', password: 'p:w' });
      assert.deepEqual(parseBasic(basic('', 'tok')), { username: '', password: 'tok' });
      assert.equal(parseBasic('Basic !!!'), undefined);
      assert.equal(parseBasic(`Basic ${Buffer.from([0xff, 0x3a, 0x41]).toString('base64')}`), undefined);
    });

    it('checks the JSON fields', () => {
      assert.deepEqual(checkInput({ name: 'cron', to: ['bob@localhost'], expires: 60 }), { ok: true, value: { name: 'cron', to: ['bob@localhost'], expiresInSeconds: 60 } });
      for (const bad of [null, [], 'x', {}, { name: 1 }, { name: 'x', to: 'bob' }, { name: 'x', expires: 0 }, { name: 'x', expires: '60' }, { name: 'x', extra: 1 }]) {
        assert.equal(checkInput(bad).ok, false, JSON.stringify(bad));
      }
    });
  });

  describe('on the server', () => {
    let ts: TestServer;
    let tokens: string;
    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: ['tokenauth', 'post_msg'] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']] });
      tokens = `${ts.httpUrl}/tokens`;
    });
    after(async () => ts?.stop());

    const create = (auth: string, body: unknown, type = 'application/json'): Promise<Response> =>
      fetch(tokens, { method: 'POST', headers: { authorization: auth, 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });

    it('POST /tokens → 201 with the token once; GET lists it without a secret; DELETE → 204', async () => {
      const res = await create(basic('alice', 'alice-pw'), { name: 'cron', to: ['bob@localhost'], expires: 3600 });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const body = (await res.json()) as { id: string; name: string; token: string; account: string; to: string[]; expires: string };
      assert.equal(body.name, 'cron');
      assert.equal(body.account, 'alice@localhost');
      assert.deepEqual(body.to, ['bob@localhost']);
      assert.ok(body.token.startsWith(`xmppd_${body.id}.`));
      assert.equal(res.headers.get('location'), `/tokens/${body.id}`);

      const list = await fetch(tokens, { headers: { authorization: basic('alice@localhost', 'alice-pw') } });
      assert.equal(list.status, 200);
      const text = await list.text();
      assert.ok(text.includes(body.id));
      assert.ok(!text.includes(body.token.split('.')[1]!), 'never the secret');
      assert.ok(!text.includes('hash'));

      const service = ts.server.modules.apiOf('localhost', 'post_msg')!.depends('tokenauth') as TokenService;
      assert.equal((await service.verify(body.token)).ok, true);
      const del = await fetch(`${tokens}/${body.id}`, { method: 'DELETE', headers: { authorization: basic('alice', 'alice-pw') } });
      assert.equal(del.status, 204);
      assert.equal((await service.verify(body.token)).ok, false, 'revoked at once');
    });

    it('an account never sees or revokes another\'s tokens', async () => {
      const mine = (await (await create(basic('alice', 'alice-pw'), { name: 'alices' })).json()) as { id: string };
      const bobs = await (await fetch(tokens, { headers: { authorization: basic('bob', 'bob-pw') } })).text();
      assert.ok(!bobs.includes(mine.id));
      const del = await fetch(`${tokens}/${mine.id}`, { method: 'DELETE', headers: { authorization: basic('bob', 'bob-pw') } });
      assert.equal(del.status, 404);
      assert.match(del.headers.get('content-type') ?? '', /application\/problem\+json/);
      const still = await (await fetch(tokens, { headers: { authorization: basic('alice', 'alice-pw') } })).text();
      assert.ok(still.includes(mine.id));
    });

    it('one token past the per-account cap → 409 naming the way out; a revocation makes room', async () => {
      // bob's own tokens only (the other tests mint alice's); the store fills up to the cap, the request goes over HTTP.
      const service = ts.server.modules.apiOf('localhost', 'post_msg')!.depends('tokenauth') as TokenService;
      const made = [];
      for (let i = 0; i < MAX_TOKENS_PER_ACCOUNT; i++) made.push(await service.create('bob@localhost', { name: `b${i}` }));
      const res = await create(basic('bob', 'bob-pw'), { name: 'one more' });
      assert.equal(res.status, 409);
      assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.match(((await res.json()) as { detail: string }).detail, /bob@localhost has 100 live tokens.*revoke one first/);
      assert.equal((await fetch(`${tokens}/${made[0]!.info.id}`, { method: 'DELETE', headers: { authorization: basic('bob', 'bob-pw') } })).status, 204);
      assert.equal((await create(basic('bob', 'bob-pw'), { name: 'one more' })).status, 201);
    });

    it('tokens cannot manage tokens: Bearer or Basic with an empty user → 403', async () => {
      const { token } = (await (await create(basic('alice', 'alice-pw'), { name: 'sender' })).json()) as { token: string };
      for (const auth of [`Bearer ${token}`, basic('', token)]) {
        for (const res of [await create(auth, { name: 'x' }), await fetch(tokens, { headers: { authorization: auth } })]) {
          assert.equal(res.status, 403);
          assert.match(((await res.json()) as { detail: string }).detail, /tokens cannot manage tokens/);
        }
      }
    });

    it('a wrong or missing password → 401 with a Basic challenge', async () => {
      for (const headers of [{}, { authorization: basic('alice', 'nope') }, { authorization: basic('carol', 'x') }] as Array<Record<string, string>>) {
        const res = await fetch(tokens, { headers });
        assert.equal(res.status, 401);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="localhost\/tokens"/);
      }
    });

    it('bad bodies are 400/415 problems, parsed by koa-bodyparser', async () => {
      const auth = basic('alice', 'alice-pw');
      assert.equal((await create(auth, '{"name":', 'application/json')).status, 400);
      assert.equal((await create(auth, '"x"', 'application/json')).status, 400);
      assert.equal((await create(auth, { name: 'x', to: ['not a jid@@'] })).status, 400);
      assert.equal((await create(auth, { name: 'x', expires: -5 })).status, 400);
      assert.equal((await create(auth, 'name=x', 'application/x-www-form-urlencoded')).status, 415);
      const big = await create(auth, JSON.stringify({ name: 'x'.repeat(20_000) }));
      assert.equal(big.status, 413);
      const res = await create(auth, { name: '' });
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    });

    it('deleting the account deletes its tokens (every stored row); a password change does not', async () => {
      await ts.server.users.create('dave@localhost', 'dave-pw');
      const service = ts.server.modules.apiOf('localhost', 'post_msg')!.depends('tokenauth') as TokenService;
      const { token } = await service.create('dave@localhost', { name: 'a' });
      await ts.server.users.setPassword('dave@localhost', 'dave-pw2');
      assert.equal((await service.verify(token)).ok, true, 'a password change keeps tokens');
      await ts.server.users.delete('dave@localhost');
      assert.equal((await service.verify(token)).ok, false);
      await ts.server.users.create('dave@localhost', 'dave-pw3');
      assert.equal((await service.verify(token)).ok, false, 'a new account of that name does not inherit them');
      assert.deepEqual(await service.list('dave@localhost'), []);
      // On disk: no row of the account's tokens, nor of its index entries.
      const file = readdirSync(ts.dataDir).find((f) => f.endsWith('.sqlite') || f.endsWith('.db'));
      assert.ok(file, 'the SQLite file');
      const db = new Database(join(ts.dataDir, file), { readonly: true });
      try {
        const rows = db.prepare("SELECT user, store, key FROM keymap WHERE store LIKE 'tokenauth%'").all() as Array<{ user: string; key: string; value: string }>;
        const daves = rows.filter((r) => r.user === 'dave@localhost' || JSON.stringify(r).includes('dave'));
        assert.deepEqual(daves, []);
      } finally {
        db.close();
      }
    });
  });
});
