// Federation with Prosody from Debian (spec/helpers/prosody.ts): xmppd serves a.test, Prosody p.test; messages
// both ways over STARTTLS with dialback, offline storage on each side, a bounce for an unknown account.
// Skipped locally when prosody is not installed, failed in CI (.ci/run installs it): spec/helpers/requires.ts.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { program, requires } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { startProsody, type ProsodyPeer } from '../helpers/prosody.js';
import { RawClient } from '../host/c2s/helpers.js';
import { login } from '../helpers/s2s.js';



describe('s2s with Prosody', { skip: requires([program('prosody', 'prosody')]) }, () => {
  let dns: TestDns;
  let ours: TestServer;
  let prosody: ProsodyPeer;
  const clients: RawClient[] = [];

  before(async () => {
    dns = await startTestDns();
    ours = await startTestServer({
      config: { virtual_hosts: { 'a.test': {} }, http_default_host: 'a.test', modules_enabled: [], s2s_ports: [0], dns_servers: [dns.address], s2s_timeout: 15 },
      users: [['alice@a.test', 'alice-pw'], ['dave@a.test', 'dave-pw']],
    });
    const s2sPort = ours.server.ports.ports('s2s')[0]!;
    prosody = await startProsody({ domain: 'p.test', users: [['bob', 'bob-pw'], ['carol', 'carol-pw']], tls: testTls(), peers: { 'a.test': s2sPort } });
    dns.srv('_xmpp-server._tcp.p.test', [{ target: 'xmpp.p.test', port: prosody.s2sPort }]);
    dns.a('xmpp.p.test', ['127.0.0.1']);
  });

  after(async () => {
    for (const c of clients) c.close();
    await prosody?.stop();
    await ours?.stop();
    await dns?.close();
  });

  it('carries messages both ways (STARTTLS, dialback each way)', async () => {
    const alice = await login(ours.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(prosody.c2sPort, 'p.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    alice.send("<message to='bob@p.test' type='chat' id='m1'><body>hello prosody</body></message>");
    await bob.waitFor(/<message[^>]*from=["']alice@a\.test\/r["'][^>]*>.*?hello prosody/s, 'bob on Prosody gets the message', 15_000);
    bob.send("<message to='alice@a.test' type='chat' id='m2'><body>hello xmppd</body></message>");
    await alice.waitFor(/<message[^>]*from=["']bob@p\.test\/r["'][^>]*>.*?hello xmppd/s, 'alice gets Prosody\'s message', 15_000);
  });

  it('Prosody stores our message for an offline account, we store Prosody\'s', async () => {
    const alice = await login(ours.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(prosody.c2sPort, 'p.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    alice.send("<message to='carol@p.test' type='chat' id='m3'><body>for carol later</body></message>");
    bob.send("<message to='dave@a.test' type='chat' id='m4'><body>for dave later</body></message>");
    await new Promise((r) => setTimeout(r, 1_000));
    const carol = await login(prosody.c2sPort, 'p.test', 'carol', 'carol-pw');
    const dave = await login(ours.c2sPort, 'a.test', 'dave', 'dave-pw');
    clients.push(carol, dave);
    await carol.waitFor(/<message[^>]*>.*?for carol later/s, 'carol gets it from Prosody\'s offline store', 10_000);
    await dave.waitFor(/<message[^>]*from=["']bob@p\.test\/r["'][^>]*>.*?for dave later/s, 'dave gets it from ours', 10_000);
  });

  it('bounces a message for an unknown Prosody account back to us', async () => {
    const alice = await login(ours.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='nobody@p.test' type='chat' id='m5'><body>anyone?</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce', 10_000);
    assert.match(m[0], /service-unavailable/);
  });
});
