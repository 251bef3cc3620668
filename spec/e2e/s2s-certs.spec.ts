// Certificate authentication between servers (RFC 6120 §§6, 13.7; XEP-0178; RFC 6125 names): three instances of
// xmppd with certificates from a test CA (a.test, b.test) or self-signed (c.test), all trusting the CA through
// s2s_ca_file. SASL EXTERNAL where the peer's certificate validates, dialback where it does not, and refusal naming
// the reason where s2s_secure_auth allows no dialback.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { startTestCa } from '../helpers/ca.js';
import { federatedServer, login as rawLogin } from '../helpers/s2s.js';
import type { RawClient } from '../host/c2s/helpers.js';

// The servers' certificates are for their domains, not the c2s test client's localhost: clients log in without TLS.
const login = (port: number, domain: string, user: string, password: string): Promise<RawClient> => rawLogin(port, domain, user, password, { plaintext: true });
const BOUNCE = /<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s;

describe('s2s certificate authentication (SASL EXTERNAL, s2s_secure_auth)', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  const clients: RawClient[] = [];
  const authenticated = (ts: TestServer, direction: 'incoming' | 'outgoing'): Array<Record<string, unknown>> =>
    ts.logLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith(`${direction} s2s stream authenticated`));

  before(async () => {
    dns = await startTestDns();
    const ca = startTestCa();
    a = await federatedServer('a.test', dns, { tls: ca.issue('a.test'), s2s_ca_file: ca.caFile, c2s_require_encryption: false });
    // b.test's certificate names it only as an XmppAddr: no DNS-ID.
    b = await federatedServer('b.test', dns, { tls: ca.issue('b.test', { dns: false }), s2s_ca_file: ca.caFile, s2s_secure_auth: true, c2s_require_encryption: false });
    c = await federatedServer('c.test', dns, { tls: ca.selfSigned('c.test'), s2s_ca_file: ca.caFile, c2s_require_encryption: false });
  });

  after(async () => {
    for (const cl of clients) cl.close();
    await a?.stop();
    await b?.stop();
    await c?.stop();
    await dns?.close();
  });

  it('authenticates both ways with SASL EXTERNAL when the certificates validate (DNS-ID and XmppAddr)', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    alice.send("<message to='bob@b.test' type='chat' id='e1'><body>by certificate</body></message>");
    await bob.waitFor(/<message[^>]*from=["']alice@a\.test\/r["'][^>]*>.*?by certificate/s, 'bob gets the message');
    bob.send("<message to='alice@a.test' type='chat' id='e2'><body>and back</body></message>");
    await alice.waitFor(/<message[^>]*from=["']bob@b\.test\/r["'][^>]*>.*?and back/s, 'alice gets the reply');
    assert.deepEqual(authenticated(a, 'outgoing').map((l) => l.msg), ['outgoing s2s stream authenticated (SASL EXTERNAL)']);
    assert.deepEqual(authenticated(b, 'incoming').map((l) => [l.msg, l.from, l.mechanism]), [['incoming s2s stream authenticated (SASL EXTERNAL)', 'a.test', 'SASL EXTERNAL']]);
    assert.deepEqual(authenticated(b, 'outgoing').map((l) => l.msg), ['outgoing s2s stream authenticated (SASL EXTERNAL)']);
    assert.deepEqual(authenticated(a, 'incoming').map((l) => [l.from, l.mechanism]), [['b.test', 'SASL EXTERNAL']]);
    assert.ok(!a.logText().includes('dialback)') && !b.logText().includes('dialback)'), 'no dialback between a.test and b.test');
  });

  it('falls back to dialback where the certificate does not validate and s2s_secure_auth is off', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    const carol = await login(c.c2sPort, 'c.test', 'carol', 'carol-pw');
    clients.push(alice, carol);
    carol.send("<message to='alice@a.test' type='chat' id='d1'><body>self-signed hello</body></message>");
    await alice.waitFor(/<message[^>]*from=["']carol@c\.test\/r["'][^>]*>.*?self-signed hello/s, 'alice gets carol\'s message');
    alice.send("<message to='carol@c.test' type='chat' id='d2'><body>hello c</body></message>");
    await carol.waitFor(/<message[^>]*from=["']alice@a\.test\/r["'][^>]*>.*?hello c/s, 'carol gets alice\'s message');
    // a.test does not trust c.test's certificate: c.test authenticates by dialback; c.test trusts a.test's.
    assert.ok(authenticated(a, 'incoming').some((l) => l.from === 'c.test' && l.mechanism === 'dialback'), 'a.test took c.test by dialback');
    assert.ok(authenticated(c, 'outgoing').some((l) => l.msg === 'outgoing s2s stream authenticated (dialback)'));
    assert.ok(authenticated(c, 'incoming').some((l) => l.from === 'a.test' && l.mechanism === 'SASL EXTERNAL'), 'c.test took a.test by certificate');
  });

  it('with s2s_secure_auth refuses an incoming peer whose certificate is self-signed, naming the reason', async () => {
    const carol = await login(c.c2sPort, 'c.test', 'carol', 'carol-pw');
    clients.push(carol);
    carol.send("<message to='bob@b.test' type='chat' id='s1'><body>let me in</body></message>");
    const m = await carol.waitFor(BOUNCE, 'the bounce');
    // RFC 6120 §8.3.3.17: the stream was set up but its negotiation (here SASL EXTERNAL, refused) failed.
    assert.match(m[0], /<error[^>]*type=["']cancel["'][^>]*><remote-server-timeout /);
    assert.match(m[0], /b\.test/);
    assert.match(m[0], /not-authorized/);
    assert.match(m[0], /s2s_secure_auth/);
    const refused = b.logLines().find((l) => l.msg === 'refused an incoming s2s stream (s2s_secure_auth)');
    assert.equal(refused?.from, 'c.test');
    assert.match(String(refused?.reason), /not trusted \((DEPTH_ZERO_)?SELF_SIGNED_CERT/);
    assert.ok(!authenticated(b, 'incoming').some((l) => l.from === 'c.test'), 'c.test never authenticated at b.test');
  });

  it('with s2s_secure_auth bounces an outgoing stanza for a peer whose certificate does not validate', async () => {
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(bob);
    bob.send("<message to='carol@c.test' type='chat' id='s2'><body>are you c?</body></message>");
    const m = await bob.waitFor(BOUNCE, 'the bounce');
    assert.match(m[0], /<error[^>]*type=["']cancel["'][^>]*><remote-server-timeout /);
    assert.match(m[0], /c\.test is not authenticated: its certificate is not trusted/);
    assert.match(m[0], /s2s_secure_auth/);
  });
});
