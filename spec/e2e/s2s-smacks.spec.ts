// Stream management on server-to-server streams (XEP-0198 with no resumption, as Prosody's mod_smacks does s2s):
// two instances of xmppd enable it and acknowledge what crossed; against a fake peer, a stanza the peer never
// acknowledged before its stream ended comes back to the sender as recipient-unavailable, one it acknowledged does
// not, and an <a/> acknowledging more than was sent ends the stream with handled-count-too-high.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { testTls, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { federatedServer, login } from '../helpers/s2s.js';
import type { RawClient } from '../host/c2s/helpers.js';

const HEADER = (from: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='fake-${from}' from='${from}' version='1.0'>`;

/**
 * A receiving server for `domain` that offers STARTTLS, then stream management and dialback, takes any dialback key
 * as valid and enables stream management; `onSecured` sees everything our server sends after that and may answer.
 */
async function fakePeer(domain: string, onSecured: (received: string, write: (s: string) => void, socket: TLSSocket) => void): Promise<{ server: NetServer; port: number; received: () => string }> {
  const { key, cert } = testTls();
  const pair = { key: readFileSync(key), cert: readFileSync(cert) };
  let all = '';
  const server = createServer((socket: Socket) => {
    let plain = '';
    const onPlain = (d: Buffer): void => {
      plain += d.toString();
      if (plain.includes('<stream:stream') && !plain.includes('#sent')) {
        plain += '#sent';
        socket.write(`${HEADER(domain)}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`);
      }
      if (!plain.includes('<starttls')) return;
      socket.off('data', onPlain);
      socket.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      const tls = new TLSSocket(socket, { isServer: true, ...pair });
      let secured = '';
      const write = (s: string): void => void tls.write(s);
      tls.on('data', (d: Buffer) => {
        secured += d.toString();
        all += d.toString();
        if (secured.includes('<stream:stream') && !secured.includes('#header')) {
          secured += '#header';
          write(`${HEADER(domain)}<stream:features><sm xmlns='urn:xmpp:sm:3'/><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`);
        }
        const result = /<db:result[^>]*from='([^']+)'[^>]*>[^<]*<\/db:result>/.exec(secured);
        if (result) {
          secured = secured.replace(result[0], '');
          write(`<db:result from='${domain}' to='${result[1]}' type='valid'/>`);
        }
        if (/<enable xmlns='urn:xmpp:sm:3'\/>/.test(secured)) {
          secured = secured.replace(/<enable xmlns='urn:xmpp:sm:3'\/>/, '');
          write("<enabled xmlns='urn:xmpp:sm:3'/>");
        }
        onSecured(all, write, tls);
      });
      tls.on('error', () => undefined);
    };
    socket.on('data', onPlain);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, received: () => all };
}

describe('XEP-0198 on s2s streams', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  const clients: RawClient[] = [];
  const servers: NetServer[] = [];

  const onFake = async (domain: string, onSecured: Parameters<typeof fakePeer>[1]): Promise<ReturnType<typeof fakePeer>> => {
    const fake = await fakePeer(domain, onSecured);
    servers.push(fake.server);
    dns.srv(`_xmpp-server._tcp.${domain}`, [{ target: `xmpp.${domain}`, port: fake.port }]);
    dns.a(`xmpp.${domain}`, ['127.0.0.1']);
    return fake;
  };

  before(async () => {
    dns = await startTestDns();
    a = await federatedServer('a.test', dns);
    b = await federatedServer('b.test', dns);
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) s.close();
    await a?.stop();
    await b?.stop();
    await dns?.close();
  });

  it('is enabled between two instances, and every stanza sent is acknowledged', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    for (let i = 1; i <= 3; i++) alice.send(`<message to='bob@b.test' type='chat' id='sm${i}'><body>counted ${i}</body></message>`);
    await bob.waitFor(/counted 3/, 'bob gets the third message');
    const deadline = Date.now() + 3000;
    const acknowledged = (): number => a.logLines().filter((l) => l.msg === 'the peer acknowledged stanzas').reduce((n, l) => n + Number(l.acknowledged), 0);
    while (acknowledged() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(acknowledged(), 3, 'b.test acknowledged the three messages');
    assert.ok(a.logText().includes('stream management enabled on the outgoing stream'));
    assert.ok(b.logText().includes('stream management enabled on the incoming stream'));
  });

  it('bounces recipient-unavailable what the peer never acknowledged before its stream ended', async () => {
    await onFake('lost.test', (received, _write, socket) => {
      if (received.includes('never acked') && !socket.destroyed) setTimeout(() => socket.destroy(), 100);
    });
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='x@lost.test' type='chat' id='l1'><body>never acked</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /recipient-unavailable/);
    assert.match(m[0], /lost\.test did not acknowledge/);
  });

  it('does not bounce what the peer acknowledged', async () => {
    let isAcked = false;
    await onFake('kept.test', (received, write, socket) => {
      if (received.includes('acked once') && !isAcked) {
        isAcked = true;
        write("<a xmlns='urn:xmpp:sm:3' h='1'/>");
        setTimeout(() => socket.destroy(), 100);
      }
    });
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='x@kept.test' type='chat' id='k1'><body>acked once</body></message>");
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(isAcked);
    assert.doesNotMatch(alice.text, /type=["']error["']/);
    assert.ok(a.logText().includes('outgoing s2s stream authenticated (dialback)'));
  });

  it('ends the stream with handled-count-too-high when the peer acknowledges more than was sent', async () => {
    let isLied = false;
    const fake = await onFake('liar.test', (received, write) => {
      if (!received.includes('only one') || isLied) return;
      isLied = true;
      write("<a xmlns='urn:xmpp:sm:3' h='5'/>");
    });
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    alice.send("<message to='x@liar.test' type='chat' id='h1'><body>only one</body></message>");
    const deadline = Date.now() + 3000;
    while (!fake.received().includes('handled-count-too-high') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(fake.received(), /<undefined-condition[^>]*\/><handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='1'\/>/);
  });
});
