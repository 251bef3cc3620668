// Federation between two instances of xmppd (a.test and b.test) on loopback, found through a DNS server the spec
// runs (SRV and A records): messages both ways, offline storage for a remote sender, bounces, a peer speaking for
// a domain it did not authenticate (invalid-from), a forged dialback, and a refused connection (RFC 6120, XEP-0220).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import type { RawClient } from '../host/c2s/helpers.js';
import { fakeAuthoritative, federatedServer, login, publish, s2sPeer } from '../helpers/s2s.js';

describe('s2s between two xmppd instances', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    dns = await startTestDns();
    a = await federatedServer('a.test', dns);
    b = await federatedServer('b.test', dns);
  });

  after(async () => {
    for (const c of clients) c.close();
    await a?.stop();
    await b?.stop();
    await dns?.close();
  });

  it('carries messages both ways, found by SRV, over TLS with dialback', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    alice.send("<message to='bob@b.test' type='chat' id='m1'><body>hello b</body></message>");
    await bob.waitFor(/<message[^>]*from=["']alice@a\.test\/r["'][^>]*>.*?hello b/s, 'bob gets alice\'s message');
    bob.send("<message to='alice@a.test' type='chat' id='m2'><body>hello a</body></message>");
    await alice.waitFor(/<message[^>]*from=["']bob@b\.test\/r["'][^>]*>.*?hello a/s, 'alice gets bob\'s reply');
    assert.ok(dns.queries.includes('SRV _xmpp-server._tcp.b.test'), 'b.test was found by its SRV record');
    assert.ok(a.logText().includes('outgoing s2s stream authenticated (dialback)'));
    assert.ok(b.logLines().some((l) => l.msg === 'incoming s2s stream authenticated (dialback)' && l.secure === true), 'b authenticated a.test over TLS');
  });

  it('stores a message for an offline account of the other server', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='carol@b.test' type='chat' id='m3'><body>while you were out</body></message>");
    // Give it time to cross; then carol comes online and gets it from offline storage.
    await new Promise((r) => setTimeout(r, 300));
    const carol = await login(b.c2sPort, 'b.test', 'carol', 'carol-pw');
    clients.push(carol);
    await carol.waitFor(/<message[^>]*from=["']alice@a\.test\/r["'][^>]*>.*?while you were out/s, 'carol gets the stored message');
  });

  it('bounces a message for an unknown account back across servers', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='nobody@b.test' type='chat' id='m4'><body>anyone?</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /from=["']nobody@b\.test["']/);
    assert.match(m[0], /service-unavailable/);
  });

  it('bounces remote-server-not-found at once when the remote server refuses connections', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    dns.srv('_xmpp-server._tcp.down.test', [{ target: 'xmpp.down.test', port }]);
    dns.a('xmpp.down.test', ['127.0.0.1']);
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    const started = Date.now();
    alice.send("<message to='x@down.test' type='chat' id='m5'><body>hi</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /remote-server-not-found/);
    assert.match(m[0], /down\.test/);
    assert.match(m[0], /connection refused/);
    assert.ok(Date.now() - started < 3000, 'well before s2s_timeout');
  });

  it('bounces remote-server-not-found, and logs why, when the peer closes its stream during setup', async () => {
    // A peer that answers with a stream header and closes it at once (as ejabberd 23.01 does when its stream crashes).
    const closing = createServer((socket) => {
      socket.once('data', () => socket.end("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='closing.test' id='c1' version='1.0'></stream:stream>"));
    });
    await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
    try {
      dns.srv('_xmpp-server._tcp.closing.test', [{ target: 'xmpp.closing.test', port: (closing.address() as { port: number }).port }]);
      dns.a('xmpp.closing.test', ['127.0.0.1']);
      const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
      clients.push(alice);
      alice.send("<message to='x@closing.test' type='chat' id='m7'><body>hi</body></message>");
      const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
      assert.match(m[0], /remote-server-not-found/);
      assert.match(m[0], /closing\.test closed its stream during setup/);
      assert.ok(a.logLines().some((l) => l.msg === 'outgoing s2s stream failed' && /closing\.test closed its stream during setup/.test(String(l.reason))), 'logged at info');
    } finally {
      closing.close();
    }
  });

  it('bounces remote-server-not-found for a domain that does not exist', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='x@nowhere.test' type='chat' id='m6'><body>hi</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /remote-server-not-found/);
    assert.match(m[0], /nowhere\.test/);
  });

  it('route/remote resolves sent once the stanza is on an authenticated stream, and rejects with the domain and reason', async () => {
    const { xml } = await import('@xmpp/xml');
    const origin = { type: 'local', host: 'a.test', jid: 'alice@a.test' };
    const remote = (to: string, host: string) =>
      a.server.globalBus.fire('route/remote', { stanza: xml('message', { from: 'alice@a.test', to, type: 'chat' }, xml('body', {}, 'x')), origin, host });
    assert.equal(await remote('bob@b.test', 'b.test'), 'sent');
    await assert.rejects(remote('x@nowhere.test', 'nowhere.test'), (err: Error & { condition?: string }) => err.condition === 'remote-server-not-found' && /nowhere\.test/.test(err.message));
  });

  it('refuses a peer that claims a.test with a key a.test did not make (forged dialback)', async () => {
    const peer = await s2sPeer(b.server.ports.ports('s2s')[0]!, 'a.test', 'b.test', 'f'.repeat(64));
    clients.push(peer);
    await peer.waitFor(/<db:result[^>]*type='invalid'/, 'dialback refused');
    await peer.waitFor(/not-authorized/, 'stream closed not-authorized');
  });

  it('closes with invalid-from a stream that speaks for a domain it did not authenticate', async () => {
    const fake = await fakeAuthoritative('evil.test');
    try {
      publish(dns, 'evil.test', { server: { ports: { ports: () => [fake.port] } } } as unknown as TestServer);
      const peer = await s2sPeer(b.server.ports.ports('s2s')[0]!, 'evil.test', 'b.test', 'k'.repeat(64));
      clients.push(peer);
      await peer.waitFor(/<db:result[^>]*type='valid'/, 'evil.test authenticated');
      peer.send("<message from='mallory@a.test' to='bob@b.test' type='chat'><body>it is me, a.test</body></message>");
      await peer.waitFor(/invalid-from/, 'invalid-from');
      await peer.waitClosed();
    } finally {
      fake.server.close();
    }
  });

  it('refuses a remote domain more authenticated incoming streams than MAX_INCOMING_PER_DOMAIN', async () => {
    const { MAX_INCOMING_PER_DOMAIN } = await import('../../lib/host/modules/s2s/index.js');
    const fake = await fakeAuthoritative('evil.test');
    const peers: RawClient[] = [];
    try {
      publish(dns, 'evil.test', { server: { ports: { ports: () => [fake.port] } } } as unknown as TestServer);
      const port = b.server.ports.ports('s2s')[0]!;
      for (let i = 0; i < MAX_INCOMING_PER_DOMAIN; i++) {
        const peer = await s2sPeer(port, 'evil.test', 'b.test', 'k'.repeat(64));
        peers.push(peer);
        await peer.waitFor(/<db:result[^>]*type='valid'/, `stream ${i + 1} authenticated`);
      }
      const extra = await s2sPeer(port, 'evil.test', 'b.test', 'k'.repeat(64));
      peers.push(extra);
      const m = await extra.waitFor(/<stream:error>.*?<\/stream:error>/s, 'the refusal');
      assert.match(m[0], /policy-violation/);
      assert.match(m[0], /evil\.test has too many streams/);
      assert.doesNotMatch(extra.text, /type='valid'/);
      // One closes: there is room again.
      peers[0]!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await s2sPeer(port, 'evil.test', 'b.test', 'k'.repeat(64));
      peers.push(again);
      await again.waitFor(/<db:result[^>]*type='valid'/, 'a stream after one closed');
    } finally {
      for (const p of peers) p.close();
      fake.server.close();
    }
  });
});
