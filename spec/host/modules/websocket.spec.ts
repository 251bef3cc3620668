// The websocket module (RFC 7395) on the real server, driven with the `ws` client: framing, SASL over a loopback
// ws://, a message posted through post_msg, stream errors in frames, size limit, origin and subprotocol checks,
// and the XEP-0156 host-meta documents.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { isLoopback, isOriginAllowed } from '../../../lib/host/modules/websocket/index.js';
import { standaloneElement } from '../../../lib/host/net/ws-connection.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
const WAIT_MS = 5_000;

/** A ws client that queues text messages and reports how the socket closed. */
class Peer {
  readonly ws: WebSocket;
  private readonly queue: string[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(url: string, opts: { protocol?: string | string[]; origin?: string } = {}) {
    this.ws = new WebSocket(url, opts.protocol ?? 'xmpp', opts.origin ? { origin: opts.origin } : {});
    this.ws.on('message', (data) => {
      this.queue.push(String(data));
      this.waiter?.();
    });
    this.closed = new Promise((r) => this.ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  send(text: string): void {
    this.ws.send(text);
  }

  async next(what = 'a message'): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    while (this.queue.length === 0) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
    }
    return this.queue.shift()!;
  }

  /** Messages until one matches. */
  async until(pattern: RegExp, what: string): Promise<string> {
    for (;;) {
      const m = await this.next(what);
      if (pattern.test(m)) return m;
    }
  }
}

describe('websocket module', () => {
  let ts: TestServer;
  let wsUrl: string;

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: ['post_msg', 'websocket'], c2s_stanza_size_limit: 10_000 },
      users: [
        ['alice@localhost', 'alice-secret'],
        ['bob@localhost', 'bob-secret'],
      ],
    });
    wsUrl = `${ts.httpUrl.replace('http:', 'ws:')}/xmpp-websocket`;
  });

  after(async () => {
    await ts?.stop();
  });

  async function login(peer: Peer, resource = 'web'): Promise<void> {
    await peer.opened;
    peer.send(OPEN);
    assert.match(await peer.next('open'), /^<open [^>]*xmlns="urn:ietf:params:xml:ns:xmpp-framing"/);
    const features = await peer.next('features');
    assert.match(features, /^<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams"/);
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/, 'PLAIN is offered on loopback');
    assert.doesNotMatch(features, /starttls/, 'no STARTTLS over WebSocket');
    const token = Buffer.from('\0alice\0alice-secret').toString('base64');
    peer.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
    assert.match(await peer.next('success'), /^<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/);
    peer.send(OPEN);
    await peer.next('open after auth');
    assert.match(await peer.next('features after auth'), /urn:ietf:params:xml:ns:xmpp-bind/);
    peer.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    assert.match(await peer.next('bind result'), new RegExp(`^<iq xmlns="jabber:client"[^>]*type="result".*<jid>alice@localhost/${resource}</jid>`));
  }

  it('logs in with PLAIN on loopback, binds, receives a message posted with post_msg, and closes with <close/>', async () => {
    const peer = new Peer(wsUrl);
    await login(peer);
    peer.send(`<presence xmlns='jabber:client'/>`);
    const res = await fetch(`${ts.httpUrl}/msg/alice@localhost`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('bob@localhost:bob-secret').toString('base64')}`, 'Content-Type': 'text/plain' },
      body: 'Build 42 is green',
    });
    assert.equal(res.status, 201, await res.text());
    const message = await peer.until(/^<message /, 'the posted message');
    assert.match(message, /^<message xmlns="jabber:client"/, 'each frame declares jabber:client (RFC 7395 §3.3.3)');
    assert.match(message, /<body>Build 42 is green<\/body>/);
    peer.send(`<close xmlns='${FRAMING}'/>`);
    assert.equal(await peer.until(/^<close /, 'close'), `<close xmlns='${FRAMING}'/>`);
    assert.equal((await peer.closed).code, 1000);
  });

  it('answers a frame that is not well-formed with a stream error in a frame, then <close/>', async () => {
    const peer = new Peer(wsUrl);
    await peer.opened;
    peer.send(OPEN);
    await peer.next('open');
    await peer.next('features');
    peer.send('<message to="bob@localhost"><body>unfinished');
    const error = await peer.next('stream error');
    assert.match(error, /^<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams"><not-well-formed /);
    assert.match(await peer.next('close'), /^<close /);
    await peer.closed;
  });

  it('refuses a first frame that is not <open/>', async () => {
    const peer = new Peer(wsUrl);
    await peer.opened;
    peer.send(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'/>`);
    assert.match(await peer.next('open'), /^<open /, 'the error stream starts with the server <open/>');
    assert.match(await peer.next('stream error'), /<bad-format /);
    assert.match(await peer.next('close'), /^<close /);
    await peer.closed;
  });

  it('ends the stream with policy-violation for a frame over c2s_stanza_size_limit', async () => {
    const peer = new Peer(wsUrl);
    await peer.opened;
    peer.send(OPEN);
    await peer.next('open');
    await peer.next('features');
    peer.send(`<message xmlns='jabber:client'><body>${'x'.repeat(10_001)}</body></message>`);
    assert.match(await peer.next('stream error'), /<policy-violation /);
    assert.match(await peer.next('close'), /^<close /);
    await peer.closed;
  });

  it('drops a frame far over the limit at the WebSocket layer (1009)', async () => {
    const peer = new Peer(wsUrl);
    await peer.opened;
    peer.send('x'.repeat(30_000));
    assert.equal((await peer.closed).code, 1009);
  });

  it('closes on a binary frame (RFC 7395 §3.2)', async () => {
    const peer = new Peer(wsUrl);
    await peer.opened;
    peer.ws.send(Buffer.from(OPEN));
    assert.equal((await peer.closed).code, 1003);
  });

  it('refuses a page of another origin, and one without the xmpp subprotocol', async () => {
    const foreign = new Peer(wsUrl, { origin: 'https://evil.example' });
    await assert.rejects(foreign.opened, /403/);
    const same = new Peer(wsUrl, { origin: ts.httpUrl });
    await same.opened;
    same.ws.close();
    const noProtocol = new Peer(wsUrl, { protocol: [] });
    await assert.rejects(noProtocol.opened, /400/);
  });

  it('answers a plain GET with 426', async () => {
    const res = await fetch(`${ts.httpUrl}/xmpp-websocket`);
    assert.equal(res.status, 426);
    assert.equal(res.headers.get('upgrade'), 'websocket');
  });

  it('announces the endpoint in /.well-known/host-meta and host-meta.json (XEP-0156)', async () => {
    const xrd = await fetch(`${ts.httpUrl}/.well-known/host-meta`);
    assert.equal(xrd.status, 200);
    assert.match(xrd.headers.get('content-type') ?? '', /^application\/xrd\+xml/);
    assert.match(await xrd.text(), new RegExp(`<Link rel="urn:xmpp:alt-connections:websocket" href="${wsUrl}"/>`));
    const json = await fetch(`${ts.httpUrl}/.well-known/host-meta.json`);
    assert.equal(json.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await json.json(), { links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: wsUrl }] });
  });

  it('refuses an upgrade where no app takes one', async () => {
    const peer = new Peer(`${ts.httpUrl.replace('http:', 'ws:')}/msg`);
    await assert.rejects(peer.opened, /404/);
  });
});

describe('websocket helpers', () => {
  it('isOriginAllowed follows cross_domain_websocket', () => {
    assert.equal(isOriginAllowed(undefined, 'h:1', false), true, 'no Origin: not a browser');
    assert.equal(isOriginAllowed('http://h:1', 'h:1', false), true);
    assert.equal(isOriginAllowed('https://H:1', 'h:1', false), true, 'a TLS-terminating proxy in front');
    assert.equal(isOriginAllowed('https://other', 'h:1', false), false);
    assert.equal(isOriginAllowed('https://other', 'h:1', true), true);
    assert.equal(isOriginAllowed('https://other', 'h:1', ['https://other']), true);
    assert.equal(isOriginAllowed('https://third', 'h:1', ['https://other']), false);
    assert.equal(isOriginAllowed('null', 'h:1', ['https://other']), false);
  });

  it('isLoopback knows the loopback addresses only', () => {
    for (const a of ['127.0.0.1', '127.5.0.1', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
    for (const a of ['10.0.0.1', '::2', '::ffff:10.0.0.1', undefined, 'localhost']) assert.equal(isLoopback(a), false, String(a));
  });

  it('standaloneElement declares the namespaces a stream would have given', () => {
    assert.equal(standaloneElement('<message to="a"/>'), '<message xmlns="jabber:client" to="a"/>');
    assert.equal(standaloneElement('<iq xmlns="jabber:client" id="1"/>'), '<iq xmlns="jabber:client" id="1"/>');
    assert.equal(standaloneElement('<stream:features><x/></stream:features>'), '<stream:features xmlns:stream="http://etherx.jabber.org/streams"><x/></stream:features>');
    assert.equal(standaloneElement('<presence id=" xmlns=x"/>'), '<presence xmlns="jabber:client" id=" xmlns=x"/>');
    assert.equal(standaloneElement('<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>'), '<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>');
  });
});
