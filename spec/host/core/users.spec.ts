// Accounts: SCRAM-only storage, SASLprep, equal work for unknown users, throttle, credential cache.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStorage, DATABASE_FILE } from '../../../lib/host/modules/storage_sqlite/sqlite.js';
import { MemoryAuthThrottle } from '../../../lib/host/util/throttle.js';
import { UserService, deriveScram, deriveScramOnEventLoop, CredentialCache } from '../../../lib/host/core/users.js';
import type { ScramCredentials, Storage } from '../../../lib/host/api.js';
import type { AuthAdmission } from '../../../lib/host/util/throttle.js';
import { startTestServer } from '../../helpers/server.js';
import { basic, post } from '../../helpers/load.js';

/** A credential cache that records what it answered and how often it was asked to remember. */
class RecordingCache extends CredentialCache {
  readonly hits: boolean[] = [];
  remembered = 0;

  override matches(jid: string, password: string, current: Buffer): boolean {
    const hit = super.matches(jid, password, current);
    this.hits.push(hit);
    return hit;
  }

  override remember(jid: string, password: string, storedKey: Buffer): void {
    this.remembered++;
    super.remember(jid, password, storedKey);
  }
}

describe('UserService', () => {
  let dir: string;
  let storage: Storage;
  let users: UserService;
  const changes: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'users-'));
    storage = openSqliteStorage(dir);
    users = new UserService({
      store: storage.users,
      throttle: new MemoryAuthThrottle(3),
      iterations: 4096,
      isLocalHost: (d) => d === 'localhost',
      onChange: (jid, change) => void changes.push(`${change} ${jid}`),
    });
  });
  after(() => {
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores SCRAM credentials only, never the password', async () => {
    await users.create('Alice@LocalHost', 'correct horse');
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    const row = db.prepare('SELECT * FROM users').get() as Record<string, unknown>;
    db.close();
    assert.equal(row.jid, 'alice@localhost');
    assert.equal(row.iterations, 4096);
    assert.equal((row.sha1_stored_key as Buffer).length, 20);
    assert.equal((row.sha256_stored_key as Buffer).length, 32);
    assert.ok(!JSON.stringify(row).includes('correct horse'));
    const rec = await storage.users.get('alice@localhost');
    const { storedKey } = await deriveScram('correct horse', rec!.salt, 4096, 'sha256');
    assert.deepEqual(storedKey, rec!.sha256StoredKey);
  });

  it('#verifyPassword() accepts the password and refuses others', async () => {
    assert.equal(await users.verifyPassword('alice@localhost', 'correct horse'), true);
    assert.equal(await users.verifyPassword('alice@localhost', 'correct horsE'), false);
    assert.equal(await users.verifyPassword('nobody@localhost', 'correct horse'), false);
  });

  it('#verifyPassword() applies SASLprep (RFC 4013: soft hyphen maps to nothing, NBSP to space)', async () => {
    await users.create('prep@localhost', 'I\u00ADX y');
    assert.equal(await users.verifyPassword('prep@localhost', 'IX y'), true);
    assert.equal(await users.verifyPassword('prep@localhost', 'IX\u00A0y'), true);
    assert.equal(await users.verifyPassword('prep@localhost', 'IX\u0007y'), false);
  });

  it('refuses an existing account, a bad JID, a foreign host and an empty password', async () => {
    await assert.rejects(users.create('alice@localhost', 'x'), { code: 'HOST_ERR_USER_EXISTS' });
    await assert.rejects(users.create('a@b@c', 'x'), { code: 'HOST_ERR_JID_INVALID' });
    await assert.rejects(users.create('localhost', 'x'), { code: 'HOST_ERR_JID_INVALID' });
    await assert.rejects(users.create('bob@example.org', 'x'), { code: 'HOST_ERR_HOST_UNKNOWN' });
    await assert.rejects(users.create('bob@localhost', ''), { code: 'HOST_ERR_PASSWORD_INVALID' });
  });

  it('#setPassword() and #delete() change what verifies, and report each change', async () => {
    await users.create('carol@localhost', 'one');
    await users.setPassword('carol@localhost', 'two');
    assert.equal(await users.verifyPassword('carol@localhost', 'one'), false);
    assert.equal(await users.verifyPassword('carol@localhost', 'two'), true);
    await users.delete('carol@localhost');
    assert.equal(await users.exists('carol@localhost'), false);
    await assert.rejects(users.delete('carol@localhost'), { code: 'HOST_ERR_USER_UNKNOWN' });
    await assert.rejects(users.setPassword('carol@localhost', 'x'), { code: 'HOST_ERR_USER_UNKNOWN' });
    assert.deepEqual(changes.filter((c) => c.includes('carol')), ['created carol@localhost', 'password carol@localhost', 'deleted carol@localhost']);
  });

  it('#list() lists accounts, optionally of one host', async () => {
    assert.deepEqual(await users.list('localhost'), ['alice@localhost', 'prep@localhost']);
    assert.deepEqual(await users.list('other'), []);
  });

  it('#authenticate() throttles an address after too many failures, not other addresses', async () => {
    for (let i = 0; i < 3; i++) assert.deepEqual(await users.authenticate({ jid: 'alice@localhost', password: 'bad', address: '10.0.0.1' }), { ok: false, reason: 'invalid' });
    const throttled = await users.authenticate({ jid: 'alice@localhost', password: 'correct horse', address: '10.0.0.1' });
    assert.equal(throttled.ok, false);
    assert.equal(!throttled.ok && throttled.reason, 'throttled');
    assert.deepEqual(await users.authenticate({ jid: 'alice@localhost', password: 'correct horse', address: '10.0.0.2' }), { ok: true, jid: 'alice@localhost' });
  });

  it('makes an unknown user cost the same key derivation as a wrong password, and caches neither (counted, not timed)', async () => {
    // The work that sets the answer's time, recorded per check; the time itself is bench/auth-timing.ts's.
    // pbkdf2_iterations 8192 against accounts at 4096 as well: a decoy at the configured count would show there.
    await users.create('erin@localhost', 'erin-pw');
    for (const iterations of [4096, 8192]) {
      const derivations: Array<{ saltLength: number; iterations: number; hash: string; keyLengths: number[] }> = [];
      const derive: typeof deriveScram = async (password, salt, count, hash) => {
        const keys = await deriveScram(password, salt, count, hash);
        derivations.push({ saltLength: salt.length, iterations: count, hash, keyLengths: [keys.storedKey.length, keys.serverKey.length] });
        return keys;
      };
      const cache = new RecordingCache();
      const service = new UserService({ store: storage.users, throttle: new MemoryAuthThrottle(100), iterations, isLocalHost: () => true, cache, derive });
      const workOf = async (check: () => Promise<unknown>) => {
        derivations.length = 0;
        cache.hits.length = 0;
        cache.remembered = 0;
        const answer = await check();
        return { answer, derivations: [...derivations], hits: [...cache.hits], remembered: cache.remembered, cached: cache.size };
      };
      let address = 0;
      const byVerify = (jid: string) => workOf(() => service.verifyPassword(jid, 'wrong'));
      const byAuthenticate = (jid: string) => workOf(() => service.authenticate({ jid, password: 'wrong', address: `192.0.2.${++address}` }));

      for (const [how, attempt, refused] of [['verifyPassword', byVerify, false], ['authenticate', byAuthenticate, { ok: false, reason: 'invalid' }]] as const) {
        const label = `${how}, pbkdf2_iterations ${iterations}`;
        // Twice each: a refused check must not make the next one cheaper.
        for (let round = 0; round < 2; round++) {
          const known = await attempt('erin@localhost');
          assert.deepEqual(known.derivations, [{ saltLength: 16, iterations: 4096, hash: 'sha256', keyLengths: [32, 32] }], label);
          assert.deepEqual(known.answer, refused, label);
          for (const name of ['nobody', 'ghost', 'mallory']) {
            const unknown = await attempt(`${name}@localhost`);
            assert.deepEqual(unknown.answer, known.answer, `${label}, ${name}`);
            assert.deepEqual(unknown.derivations, known.derivations, `${label}, ${name}: the derivations differ`);
            // Both look the pair up in the cache first (one SHA-256, a miss), neither is remembered by it, so both pay
            // the derivation every time.
            assert.deepEqual(unknown.hits, known.hits, `${label}, ${name}: the cache lookups differ`);
            assert.deepEqual(known.hits, [false], label);
            assert.deepEqual([unknown.remembered, unknown.cached], [known.remembered, known.cached], `${label}, ${name}`);
            assert.deepEqual([known.remembered, known.cached], [0, 0], label);
          }
        }
      }
      // The decoy records those derivations run against have a real account's shape, for both hashes.
      for (const hash of ['sha1', 'sha256'] as const) {
        const shape = (c: ScramCredentials) => ({ salt: c.salt.length, iterations: c.iterations, storedKey: c.storedKey.length, serverKey: c.serverKey.length });
        assert.deepEqual(shape(await service.scramDecoy('nobody@localhost', hash)), shape((await service.scramCredentials('erin@localhost', hash))!), hash);
      }
    }
  });
});

describe('MemoryAuthThrottle', () => {
  it('counts an IPv4 client the same whether seen as IPv4 or IPv4-mapped IPv6', () => {
    const t = new MemoryAuthThrottle(2);
    t.recordFailure('::ffff:192.0.2.7');
    t.recordFailure('192.0.2.7');
    assert.ok(t.retryAfter('192.0.2.7') > 0);
    assert.ok(t.retryAfter('::FFFF:192.0.2.7') > 0);
    assert.equal(t.retryAfter('::ffff:192.0.2.8'), 0);
  });

  it('waits until the oldest failure leaves the 60 s window', () => {
    let now = 1_000_000;
    const t = new MemoryAuthThrottle(2, () => now);
    assert.equal(t.recordFailure('a'), 0);
    now += 10_000;
    assert.equal(t.recordFailure('a'), 50);
    assert.equal(t.retryAfter('b'), 0);
    now += 49_000;
    assert.equal(t.retryAfter('a'), 1);
    now += 1_001;
    assert.equal(t.retryAfter('a'), 0);
  });
});

describe('CredentialCache', () => {
  let dir: string;
  let storage: Storage;
  let otherStorage: Storage;
  let cache: CredentialCache;
  let server: UserService;
  let admin: UserService;
  let other: UserService;
  let derivations = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cache-'));
    storage = openSqliteStorage(dir);
    // Another connection to the same file, as the CLI or another node has.
    otherStorage = openSqliteStorage(dir);
    cache = new CredentialCache(60_000, 100);
    const derive: typeof deriveScram = (...args) => {
      derivations++;
      return deriveScram(...args);
    };
    const make = (store: Storage, withCache: boolean) =>
      new UserService({ store: store.users, throttle: new MemoryAuthThrottle(100), iterations: 4096, isLocalHost: () => true, ...(withCache ? { cache, derive } : {}) });
    server = make(storage, true);
    // The server's own admin path (same store, no cache of its own), and another connection's.
    admin = make(storage, false);
    other = make(otherStorage, false);
    await admin.create('dave@localhost', 'first');
    await admin.create('fay@localhost', 'first');
  });
  after(() => {
    storage.close();
    otherStorage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = (pw: string, jid = 'dave@localhost'): Promise<boolean> => server.verifyPassword(jid, pw);
  // The store asks SQLite whether another connection wrote at most once per millisecond (storage_sqlite/sqlite.ts).
  const pastRecheck = (): Promise<void> => new Promise((r) => setTimeout(r, 2));

  it('remembers a verified password and answers the next check without PBKDF2', async () => {
    assert.equal(await check('first'), true);
    assert.equal(derivations, 1);
    assert.equal(await check('first'), true);
    assert.equal(await check('first'), true);
    assert.equal(derivations, 1);
  });

  it('never remembers a wrong password', async () => {
    assert.equal(await check('wrong'), false);
    assert.equal(await check('wrong'), false);
    assert.equal(derivations, 3);
  });

  it('is invalidated at once when the password changes', async () => {
    await admin.setPassword('dave@localhost', 'second');
    assert.equal(await check('first'), false);
    assert.equal(await check('second'), true);
  });

  it('is invalidated at once when the account is deleted', async () => {
    assert.equal(await check('second'), true);
    await admin.delete('dave@localhost');
    assert.equal(await check('second'), false);
  });

  it('sees a password change by another connection from the first check 1 ms after it', async () => {
    assert.equal(await check('first', 'fay@localhost'), true);
    assert.equal(await check('first', 'fay@localhost'), true);
    await other.setPassword('fay@localhost', 'second');
    await pastRecheck();
    assert.equal(await check('first', 'fay@localhost'), false);
    assert.equal(await check('second', 'fay@localhost'), true);
  });

  it('sees an account deleted by another connection from the first check 1 ms after it', async () => {
    assert.equal(await check('second', 'fay@localhost'), true);
    await other.delete('fay@localhost');
    await pastRecheck();
    assert.equal(await check('second', 'fay@localhost'), false);
  });

  it('expires entries after the TTL and keeps at most maxEntries', () => {
    let now = 0;
    const small = new CredentialCache(1000, 2, () => now);
    const key = Buffer.alloc(32, 1);
    small.remember('a', 'p', key);
    assert.equal(small.matches('a', 'p', key), true);
    now = 1000;
    assert.equal(small.matches('a', 'p', key), false);
    small.remember('a', 'p', key);
    small.remember('b', 'p', key);
    small.remember('c', 'p', key);
    assert.equal(small.size, 2);
    assert.equal(small.matches('a', 'p', key), false);
    assert.equal(small.matches('c', 'p', key), true);
  });
});

describe('deriveScramOnEventLoop', () => {
  it('derives the same keys as deriveScram, for both hashes', async () => {
    const salt = Buffer.from('salt of sixteen!');
    for (const hash of ['sha1', 'sha256'] as const) {
      assert.deepEqual(await deriveScramOnEventLoop('pencil', salt, 4096, hash), await deriveScram('pencil', salt, 4096, hash));
    }
  });
});

describe('MemoryAuthThrottle: checks in flight', () => {
  const admitted = (a: AuthAdmission | Promise<AuthAdmission>) => {
    assert.ok(!(a instanceof Promise) && a.ok, 'admitted at once');
    return a.attempt;
  };

  it('admits at most `limit` checks at once; the others wait and are refused once the failures reach the limit', async () => {
    const t = new MemoryAuthThrottle(3);
    const running = [t.begin('a'), t.begin('a'), t.begin('a')].map(admitted);
    const waiting = [t.begin('a'), t.begin('a')];
    assert.ok(waiting.every((w) => w instanceof Promise), 'the 4th and 5th wait for a slot');
    admitted(t.begin('b')).succeeded(); // another address is not held up
    for (const attempt of running) attempt.failed();
    const answers = await Promise.all(waiting);
    assert.ok(answers.every((a) => !a.ok && a.retryAfterSeconds > 0));
    assert.equal(t.inFlightCount('a'), 0);
  });

  it('a success frees its slot for a waiting check and counts nothing', async () => {
    const t = new MemoryAuthThrottle(1);
    const first = admitted(t.begin('a'));
    const next = t.begin('a');
    first.succeeded();
    first.failed(); // a second end is ignored
    const answer = await next;
    assert.ok(answer.ok);
    answer.attempt.succeeded();
    assert.equal(t.retryAfter('a'), 0);
    assert.equal(t.inFlightCount('a'), 0);
  });
});

describe('UserService under parallel guessing and a changed pbkdf2_iterations', () => {
  let dir: string;
  let storage: Storage;
  let derivations = 0;
  const derive: typeof deriveScram = (...args) => {
    derivations++;
    return deriveScram(...args);
  };
  const service = (iterations: number, limit = 100000) =>
    new UserService({ store: storage.users, throttle: new MemoryAuthThrottle(limit), iterations, isLocalHost: () => true, cache: new CredentialCache(), derive });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'users-parallel-'));
    storage = openSqliteStorage(dir);
    const old = service(4096);
    for (const name of ['alice', 'bob']) await old.create(`${name}@localhost`, `${name}-pw`);
  });
  after(() => {
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('derives at most auth_failures_per_minute keys for 200 parallel wrong passwords from one address', async () => {
    const users = service(4096, 5);
    derivations = 0;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => users.authenticate({ jid: 'alice@localhost', password: `guess-${i}`, address: '192.0.2.1' })));
    assert.equal(derivations, 5);
    assert.equal(results.filter((r) => !r.ok && r.reason === 'invalid').length, 5);
    assert.equal(results.filter((r) => !r.ok && r.reason === 'throttled').length, 195);
    assert.deepEqual(await users.authenticate({ jid: 'alice@localhost', password: 'alice-pw', address: '192.0.2.2' }), { ok: true, jid: 'alice@localhost' });
  });

  it('lets a burst of 50 parallel right passwords through a limit of 5 (successes free their slots)', async () => {
    const users = service(4096, 5);
    const results = await Promise.all(Array.from({ length: 50 }, () => users.authenticate({ jid: 'bob@localhost', password: 'bob-pw', address: '192.0.2.3' })));
    assert.ok(results.every((r) => r.ok));
  });

  it('gives an unknown name the iteration count real accounts have, not the new pbkdf2_iterations', async () => {
    const users = service(20480);
    assert.equal((await users.scramCredentials('alice@localhost', 'sha256'))!.iterations, 4096);
    for (const name of ['nobody', 'ghost', 'carol']) assert.equal((await users.scramDecoy(`${name}@localhost`, 'sha1')).iterations, 4096, name);
  });

  it('draws decoy counts as often as accounts have them, stable per name', async () => {
    await service(20480).create('dan@localhost', 'dan-pw'); // now 2 accounts at 4096, 1 at 20480
    const users = service(20480);
    const names = Array.from({ length: 300 }, (_, i) => `unknown-${i}@localhost`);
    const counts = await Promise.all(names.map(async (n) => (await users.scramDecoy(n, 'sha256')).iterations));
    const share = counts.filter((c) => c === 4096).length / counts.length;
    assert.ok(share > 0.55 && share < 0.78, `share of 4096 among decoys ${share.toFixed(2)}, accounts have 2/3`);
    assert.ok(counts.every((c) => c === 4096 || c === 20480));
    assert.deepEqual(await Promise.all(names.slice(0, 20).map(async (n) => (await users.scramDecoy(n, 'sha256')).iterations)), counts.slice(0, 20));
  });
});

describe('HTTP Basic under parallel guessing (the real server)', () => {
  it('checks at most auth_failures_per_minute of 200 simultaneous requests from one address; the rest get 429', { timeout: 30_000 }, async () => {
    const ts = await startTestServer({ config: { auth_failures_per_minute: 5 }, users: [['bob@localhost', 'bob-par-pw']] });
    try {
      const send = (password: string, localAddress: string) =>
        post(ts.httpUrl, '/msg/bob', { localAddress, headers: { authorization: basic('bob@localhost', password), 'content-type': 'text/plain' }, body: 'parallel' });
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => send(`guess-${i}`, '127.0.0.4')));
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 401).length, 5, 'checked (each 401 is one verified guess)');
      assert.equal(statuses.filter((s) => s === 429).length, 195);
      assert.ok(answers.filter((a) => a.status === 429).every((a) => /^[1-9]\d*$/.test(String(a.headers['retry-after']))));
      // The real user, elsewhere, is not locked out.
      assert.equal((await send('bob-par-pw', '127.0.0.5')).status, 201);
      // A burst of right passwords from one address is not mistaken for guessing.
      const burst = await Promise.all(Array.from({ length: 40 }, () => send('bob-par-pw', '127.0.0.6')));
      assert.deepEqual([...new Set(burst.map((a) => a.status))], [201]);
    } finally {
      await ts.stop();
    }
  });
});
