// SASL negotiation (RFC 6120 §6) against a fake user store: offers, PLAIN, SCRAM end to end with a small
// RFC 5802 client, failures, the shared throttle and the retry limit.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { SaslNegotiation, offeredMechanisms, parsePlain, type SaslContext } from '../../../../lib/host/util/sasl/sasl.js';
import type { AuthAdmission, AuthResult, ScramCredentials, UsersApi } from '../../../../lib/host/api.js';
import { decoyCredentials } from '../../../../lib/host/util/sasl/sasl-scram.js';
import { MemoryAuthThrottle } from '../../../../lib/host/util/throttle.js';

const NS = 'urn:ietf:params:xml:ns:xmpp-sasl';
const SALT = Buffer.from('0123456789abcdef');

function creds(password: string, hash: 'sha1' | 'sha256'): ScramCredentials {
  const salted = pbkdf2Sync(password, SALT, 4096, hash === 'sha1' ? 20 : 32, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return { salt: SALT, iterations: 4096, storedKey: createHash(hash).update(clientKey).digest(), serverKey: createHmac(hash, salted).update('Server Key').digest() };
}

class FakeUsers implements UsersApi {
  failures = 0;
  retryAfter = 0;
  lookups = 0;
  /** Proofs checked inside a throttle slot. */
  verified = 0;
  private readonly decoySecret = randomBytes(32);
  /** Without a throttle every attempt is admitted. */
  constructor(private readonly accounts: Record<string, string>, private readonly throttle?: MemoryAuthThrottle) {}
  async exists(jid: string) {
    return jid in this.accounts;
  }
  async verifyPassword(jid: string, pw: string) {
    return this.accounts[jid] === pw;
  }
  async authenticate(input: { jid: string; password: string; address: string }): Promise<AuthResult> {
    if (this.retryAfter > 0) return { ok: false, reason: 'throttled', retryAfterSeconds: this.retryAfter };
    if (this.accounts[input.jid] === input.password) return { ok: true, jid: input.jid };
    this.failures++;
    return { ok: false, reason: 'invalid' };
  }
  async scramCredentials(jid: string, hash: 'sha1' | 'sha256') {
    this.lookups++;
    const pw = this.accounts[jid];
    return pw === undefined ? undefined : creds(pw, hash);
  }
  async scramDecoy(jid: string, hash: 'sha1' | 'sha256') {
    return decoyCredentials(this.decoySecret, jid, hash, 4096);
  }
  async beginAuthAttempt(address: string): Promise<AuthAdmission> {
    if (this.retryAfter > 0) return { ok: false, retryAfterSeconds: this.retryAfter };
    const admission = this.throttle ? await this.throttle.begin(address) : { ok: true as const, attempt: { succeeded: () => undefined, failed: () => 0 } };
    if (!admission.ok) return admission;
    this.verified++;
    const { attempt } = admission;
    return { ok: true, attempt: { succeeded: () => attempt.succeeded(), failed: () => (this.failures++, attempt.failed()) } };
  }
  authRetryAfter() {
    return this.retryAfter;
  }
}

function negotiation(users: FakeUsers, over: Partial<SaslContext> = {}): { sasl: SaslNegotiation; sleeps: number[] } {
  const sleeps: number[] = [];
  const sasl = new SaslNegotiation({
    host: 'localhost',
    users,
    address: '192.0.2.1',
    isSecure: true,
    requireEncryption: true,
    sleep: async (ms) => void sleeps.push(ms),
    ...over,
  });
  return { sasl, sleeps };
}

const auth = (mechanism: string, payload?: string | Buffer) =>
  xml('auth', { xmlns: NS, mechanism }, payload === undefined ? '=' : Buffer.from(payload).toString('base64'));
const response = (payload: string) => xml('response', { xmlns: NS }, Buffer.from(payload).toString('base64'));
const condition = (el: Element) => el.getChildElements()[0]?.name;
const decoded = (el: Element) => Buffer.from(el.getText(), 'base64').toString();

/** RFC 5802 client side, to drive a whole exchange. */
async function scramLogin(sasl: SaslNegotiation, mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256', user: string, password: string) {
  const started = await scramStart(sasl, mechanism, user);
  return typeof started === 'function' ? started(password) : started;
}

/** The client-first half of an exchange; then a function that sends client-final for a password. */
async function scramStart(sasl: SaslNegotiation, mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256', user: string) {
  const hash = mechanism === 'SCRAM-SHA-1' ? 'sha1' : 'sha256';
  const cnonce = randomBytes(12).toString('base64');
  const bare = `n=${user},r=${cnonce}`;
  const first = await sasl.handle(auth(mechanism, `n,,${bare}`));
  if (first.reply.name !== 'challenge') return first;
  const serverFirst = decoded(first.reply);
  return (password: string) => scramFinish(sasl, hash, bare, serverFirst, password);
}

async function scramFinish(sasl: SaslNegotiation, hash: 'sha1' | 'sha256', bare: string, serverFirst: string, password: string) {
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), hash === 'sha1' ? 20 : 32, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.r}`;
  const authMessage = `${bare},${serverFirst},${withoutProof}`;
  const signature = createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
  const result = await sasl.handle(response(`${withoutProof},p=${proof.toString('base64')}`));
  if (result.reply.name === 'success') {
    const serverKey = createHmac(hash, salted).update('Server Key').digest();
    const expected = createHmac(hash, serverKey).update(authMessage).digest('base64');
    assert.equal(decoded(result.reply), `v=${expected}`, 'the server proves it knows the key');
  }
  return result;
}

describe('SASL', () => {
  describe('offeredMechanisms()', () => {
    it('offers nothing before TLS when encryption is required', () => {
      assert.deepEqual(offeredMechanisms({ isSecure: false, requireEncryption: true }), []);
    });

    it('offers SCRAM and PLAIN over TLS, and no -PLUS mechanism', () => {
      const offered = offeredMechanisms({ isSecure: true, requireEncryption: true });
      assert.deepEqual(offered, ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
      assert.ok(!offered.some((m) => m.endsWith('-PLUS')));
    });

    it('offers PLAIN before TLS only when encryption is not required', () => {
      assert.ok(offeredMechanisms({ isSecure: false, requireEncryption: false }).includes('PLAIN'));
    });
  });

  describe('PLAIN', () => {
    it('authenticates with the right password', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      const r = await sasl.handle(auth('PLAIN', '\0alice\0pw'));
      assert.equal(r.reply.name, 'success');
      assert.equal(r.jid, 'alice@localhost');
    });

    it('accepts user@host as the authcid (some clients send it)', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      assert.equal((await sasl.handle(auth('PLAIN', '\0alice@localhost\0pw'))).jid, 'alice@localhost');
    });

    it('answers not-authorized to a wrong password and counts it', async () => {
      const users = new FakeUsers({ 'alice@localhost': 'pw' });
      const { sasl } = negotiation(users);
      const r = await sasl.handle(auth('PLAIN', '\0alice\0nope'));
      assert.equal(condition(r.reply), 'not-authorized');
      assert.equal(r.jid, undefined);
      assert.equal(users.failures, 1);
    });

    it('is refused before TLS when encryption is required', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }), { isSecure: false });
      assert.equal(condition((await sasl.handle(auth('PLAIN', '\0alice\0pw'))).reply), 'encryption-required');
    });

    it('works before TLS when encryption is not required', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }), { isSecure: false, requireEncryption: false });
      assert.equal((await sasl.handle(auth('PLAIN', '\0alice\0pw'))).jid, 'alice@localhost');
    });

    it('takes the message in a response after an empty initial response', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      assert.equal((await sasl.handle(auth('PLAIN'))).reply.name, 'challenge');
      assert.equal((await sasl.handle(response('\0alice\0pw'))).jid, 'alice@localhost');
    });

    it('refuses an authzid for another account', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      assert.equal(condition((await sasl.handle(auth('PLAIN', 'bob@localhost\0alice\0pw'))).reply), 'invalid-authzid');
    });

    it('accepts its own bare JID as authzid', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      assert.equal((await sasl.handle(auth('PLAIN', 'alice@localhost\0alice\0pw'))).jid, 'alice@localhost');
    });

    it('slows a throttled address down and does not check its password', async () => {
      const users = new FakeUsers({ 'alice@localhost': 'pw' });
      users.retryAfter = 30;
      const { sasl, sleeps } = negotiation(users);
      const r = await sasl.handle(auth('PLAIN', '\0alice\0pw'));
      assert.equal(condition(r.reply), 'not-authorized');
      assert.deepEqual(sleeps, [5000], 'waits, capped at 5 s');
      assert.match(r.reply.getChildText('text') ?? '', /try again in 30 s/);
    });

    it('parses RFC 4616 messages strictly', () => {
      assert.deepEqual(parsePlain(Buffer.from('\0u\0p')), { authzid: '', authcid: 'u', password: 'p' });
      assert.equal(parsePlain(Buffer.from('u\0p')), undefined);
      assert.equal(parsePlain(Buffer.from('\0\0p')), undefined);
      assert.equal(parsePlain(Buffer.from('\0u\0')), undefined);
      assert.equal(parsePlain(Buffer.from([0, 0x75, 0, 0xff])), undefined, 'invalid UTF-8');
    });
  });

  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    describe(mechanism, () => {
      it('authenticates with the right password and proves the server', async () => {
        const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pencil' }));
        const r = await scramLogin(sasl, mechanism, 'alice', 'pencil');
        assert.equal(r.reply.name, 'success');
        assert.equal(r.jid, 'alice@localhost');
      });

      it('answers not-authorized to a wrong password and records the failure', async () => {
        const users = new FakeUsers({ 'alice@localhost': 'pencil' });
        const { sasl } = negotiation(users);
        const r = await scramLogin(sasl, mechanism, 'alice', 'pen');
        assert.equal(condition(r.reply), 'not-authorized');
        assert.equal(users.failures, 1);
      });

      it('answers an unknown user the same way, after a full exchange', async () => {
        const users = new FakeUsers({});
        const { sasl } = negotiation(users);
        const r = await scramLogin(sasl, mechanism, 'ghost', 'x');
        assert.equal(condition(r.reply), 'not-authorized');
        assert.equal(users.failures, 1);
      });

      it('does not even look the user up for a throttled address', async () => {
        const users = new FakeUsers({ 'alice@localhost': 'pencil' });
        users.retryAfter = 2;
        const { sasl, sleeps } = negotiation(users);
        const r = await scramLogin(sasl, mechanism, 'alice', 'pencil');
        assert.equal(condition(r.reply), 'not-authorized');
        assert.equal(users.lookups, 0);
        assert.deepEqual(sleeps, [2000]);
      });

      it('verifies at most auth_failures_per_minute proofs of 40 parallel streams from one address', async () => {
        const limit = 10;
        const users = new FakeUsers({ 'alice@localhost': 'pencil' }, new MemoryAuthThrottle(limit));
        const streams = Array.from({ length: 40 }, () => negotiation(users));
        // Every stream gets its challenge first, then all 40 proofs arrive together.
        const finals = await Promise.all(streams.map(({ sasl }) => scramStart(sasl, mechanism, 'alice')));
        const results = await Promise.all(finals.map((f, i) => (typeof f === 'function' ? f(`guess-${i}`) : f)));
        assert.ok(results.every((r) => condition(r.reply) === 'not-authorized'));
        assert.equal(users.verified, limit, 'proofs checked');
        assert.equal(results.filter((r) => /try again/.test(r.reply.getChildText('text') ?? '')).length, 40 - limit, 'the rest are refused as throttled');
        // Not even the right password is checked now, from this address.
        const late = negotiation(users);
        assert.match((await scramLogin(late.sasl, mechanism, 'alice', 'pencil')).reply.getChildText('text') ?? '', /try again/);
      });

      it('lets parallel right passwords through: a success frees its slot without counting', async () => {
        const users = new FakeUsers({ 'alice@localhost': 'pencil' }, new MemoryAuthThrottle(2));
        const results = await Promise.all(Array.from({ length: 20 }, () => scramLogin(negotiation(users).sasl, mechanism, 'alice', 'pencil')));
        assert.ok(results.every((r) => r.jid === 'alice@localhost'));
        assert.equal(users.failures, 0);
      });
    });
  }

  describe('errors', () => {
    it('refuses a -PLUS or unknown mechanism with invalid-mechanism', async () => {
      const { sasl } = negotiation(new FakeUsers({}));
      for (const m of ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'DIGEST-MD5', 'ANONYMOUS', '']) {
        assert.equal(condition((await sasl.handle(auth(m, 'x'))).reply), 'invalid-mechanism', m);
      }
    });

    it('refuses bad base64 with incorrect-encoding', async () => {
      const { sasl } = negotiation(new FakeUsers({}));
      assert.equal(condition((await sasl.handle(xml('auth', { xmlns: NS, mechanism: 'PLAIN' }, '!!!'))).reply), 'incorrect-encoding');
    });

    it('answers aborted to <abort/>', async () => {
      const { sasl } = negotiation(new FakeUsers({}));
      await sasl.handle(auth('SCRAM-SHA-1'));
      assert.equal(condition((await sasl.handle(xml('abort', { xmlns: NS }))).reply), 'aborted');
    });

    it('is exhausted after five failures (RFC 6120 §6.4.5)', async () => {
      const { sasl } = negotiation(new FakeUsers({ 'alice@localhost': 'pw' }));
      for (let i = 0; i < 4; i++) await sasl.handle(auth('PLAIN', '\0alice\0bad'));
      assert.equal(sasl.isExhausted, false);
      await sasl.handle(auth('PLAIN', '\0alice\0bad'));
      assert.equal(sasl.isExhausted, true);
    });
  });
});
