// post_msg.md §9 over real federation: two xmppd instances (a.test, b.test) found through the loopback DNS server.
// 201 sent once the stanza is on an authenticated stream; 502 naming the domain and the reason (no such domain,
// connection refused); 504 past remote_timeout (a peer that accepts and never speaks), with the stanza withdrawn and
// never sent later (a slow DNS answer); a later bounce reaches the sender, online or at its next login; 422 saying federation is off without s2s.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { RawClient } from '../host/c2s/helpers.js';
import { login } from '../helpers/s2s.js';



function serverOn(dns: TestDns, domain: string, port: number): void {
  dns.srv(`_xmpp-server._tcp.${domain}`, [{ target: `xmpp.${domain}`, port }]);
  dns.a(`xmpp.${domain}`, ['127.0.0.1']);
}

function federated(domain: string, dns: TestDns, extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startTestServer({
    config: { virtual_hosts: { [domain]: {} }, http_default_host: domain, modules_enabled: ['post_msg'], s2s_ports: [0], s2s_interfaces: ['127.0.0.1'], dns_servers: [dns.address], s2s_timeout: 30, ...extra },
    users: [[`alice@${domain}`, 'alice-pw'], [`bob@${domain}`, 'bob-pw']],
  });
}

async function post(ts: TestServer, to: string, body: string, as = 'alice@a.test:alice-pw'): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${ts.httpUrl}/msg/${to}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Basic ${Buffer.from(as).toString('base64')}` },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, ms: Date.now() - started };
}

/** A TCP server that accepts connections and never says a word. */
async function blackhole(): Promise<{ server: NetServer; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

describe('post_msg to a recipient on another server (s2s)', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  let bob: RawClient;
  const clients: RawClient[] = [];

  before(async () => {
    dns = await startTestDns();
    a = await federated('a.test', dns, { post_msg: { remote_timeout: 1 } });
    b = await federated('b.test', dns);
    serverOn(dns, 'a.test', a.server.ports.ports('s2s')[0]!);
    serverOn(dns, 'b.test', b.server.ports.ports('s2s')[0]!);
    bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(bob);
  });

  after(async () => {
    for (const c of clients) c.close();
    await a?.stop();
    await b?.stop();
    await dns?.close();
  });

  // First, while no stream to b.test exists: b.test is found only after remote_timeout has passed.
  it('answers 504 past remote_timeout and never sends the withdrawn message later', async () => {
    dns.delay('_xmpp-server._tcp.b.test', 2_000);
    const res = await post(a, 'bob@b.test', 'too late');
    assert.equal(res.status, 504, JSON.stringify(res.json));
    assert.match(String(res.json.detail), /b\.test/);
    assert.match(String(res.json.detail), /remote_timeout/);
    assert.ok(res.ms < 1_900, `answered after ${res.ms} ms, before the stream could exist`);
    // The stream comes up about a second later; the withdrawn message must not follow it.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.doesNotMatch(bob.text, /too late/);
    dns.delay('_xmpp-server._tcp.b.test', 0);
  });

  it('answers 201 sent once the message is on an authenticated stream, and it arrives', async () => {
    const res = await post(a, 'bob@b.test', 'hello from a');
    assert.equal(res.status, 201, JSON.stringify(res.json));
    assert.equal(res.json.outcome, 'sent');
    assert.equal(res.json.to, 'bob@b.test');
    assert.equal(typeof res.json.id, 'string');
    await bob.waitFor(/<message[^>]*from=["']alice@a\.test["'][^>]*>.*?hello from a/s, 'bob gets the message');
    assert.doesNotMatch(bob.text, /too late/, 'the withdrawn message never came');
  });

  it('brings a later bounce from the remote server to the sender account', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    const res = await post(a, 'nobody@b.test', 'anyone there?');
    assert.equal(res.status, 201, JSON.stringify(res.json));
    assert.equal(res.json.outcome, 'sent');
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /from=["']nobody@b\.test["']/);
    assert.match(m[0], /service-unavailable/);
  });

  it('keeps a later bounce for a sender account with no resource online, given at its next login', async () => {
    // bob@a.test has no session: the bounce from b.test is stored (message.ts isKeptBounce), not discarded.
    const res = await post(a, 'nobody@b.test', 'while bob is away', 'bob@a.test:bob-pw');
    assert.equal(res.status, 201, JSON.stringify(res.json));
    await new Promise((r) => setTimeout(r, 1_000));
    const bobA = await login(a.c2sPort, 'a.test', 'bob', 'bob-pw');
    clients.push(bobA);
    const m = await bobA.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the stored bounce at login');
    assert.match(m[0], /from=["']nobody@b\.test["']/);
    assert.match(m[0], /service-unavailable/);
    assert.match(m[0], /while bob is away/);
  });

  it('answers 502 naming the domain for a domain that does not exist', async () => {
    const res = await post(a, 'x@nowhere.test', 'hi');
    assert.equal(res.status, 502, JSON.stringify(res.json));
    assert.match(String(res.json.detail), /nowhere\.test/);
    assert.match(String(res.json.detail), /no such domain|no address/);
  });

  it('answers 502 naming the domain and "connection refused" for a server that refuses connections', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    serverOn(dns, 'down.test', port);
    const res = await post(a, 'x@down.test', 'hi');
    assert.equal(res.status, 502, JSON.stringify(res.json));
    assert.match(String(res.json.detail), /down\.test/);
    assert.match(String(res.json.detail), /connection refused/);
  });

  it('answers 504 for a peer that accepts the connection and never speaks', async () => {
    const hole = await blackhole();
    try {
      serverOn(dns, 'silent.test', hole.port);
      const res = await post(a, 'x@silent.test', 'hello?');
      assert.equal(res.status, 504, JSON.stringify(res.json));
      assert.match(String(res.json.detail), /silent\.test/);
      assert.ok(res.ms >= 900 && res.ms < 3_000, `answered after ${res.ms} ms (remote_timeout 1 s)`);
      assert.ok(hole.sockets.length > 0, 'the peer was connected to');
    } finally {
      for (const s of hole.sockets) s.destroy();
      hole.server.close();
    }
  });
});

describe('post_msg to another server with s2s disabled', () => {
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({
      config: { virtual_hosts: { 'a.test': {} }, http_default_host: 'a.test', modules_enabled: ['post_msg'], modules_disabled: ['s2s'] },
      users: [['alice@a.test', 'alice-pw']],
    });
  });

  after(async () => ts?.stop());

  it('answers 422 saying federation is off', async () => {
    const res = await post(ts, 'bob@b.test', 'hi');
    assert.equal(res.status, 422, JSON.stringify(res.json));
    assert.match(String(res.json.detail), /b\.test/);
    assert.match(String(res.json.detail), /federation is off/);
  });
});
