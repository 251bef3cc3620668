// csi_simple (XEP-0352) through real c2s sessions: the feature after authentication, messages with a body at once
// to an inactive client, presence updates and chat states held and flushed in order (active, something important,
// client activity, a full queue), and <inactive/>/<active/> never ending a stream.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { RawClient, rawAuthenticate } from '../c2s/helpers.js';
import { isImportant } from '../../../lib/host/modules/csi-simple.js';

/** STARTTLS, PLAIN and bind like rawLogin, keeping the features offered before and after authentication. */
async function login(port: number, user: string, resource: string, opts: { bind?: boolean } = {}): Promise<{ raw: RawClient; before: string; after: string }> {
  const { raw, afterTls: before, afterAuth: after } = await rawAuthenticate(port, user, `${user}-pw`);
  if (opts.bind !== false) await bind(raw, resource);
  return { raw, before, after };
}

async function bind(raw: RawClient, resource: string): Promise<void> {
  raw.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  await raw.waitFor(/<jid>[^<]+<\/jid>/, 'bind result');
}

async function online(port: number, user: string, resource: string): Promise<RawClient> {
  const { raw } = await login(port, user, resource);
  raw.send('<presence/>');
  await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), `${user}/${resource} own presence`);
  return raw;
}

/** Wait for `marker` and return everything received before it. */
async function upTo(raw: RawClient, marker: string, what: string): Promise<string> {
  return (await raw.waitFor(new RegExp(`([\\s\\S]*?)${marker}`), what))[1]!;
}

/** Give the server time to send what it would (a held stanza must still be absent afterwards). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

/** Presence updates from alice/b, which her other resources are sent (RFC 6121 §4.4.2). */
function statuses(b: RawClient, ...texts: string[]): void {
  for (const t of texts) b.send(`<presence><status>${t}</status></presence>`);
}

const statusOrder = (text: string): string[] => [...text.matchAll(/<status>([^<]+)<\/status>/g)].map((m) => m[1]!);

describe('csi_simple', () => {
  let ts: TestServer;
  let a: RawClient;
  let b: RawClient;
  let bob: RawClient;

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: ['csi_simple'], csi_simple: { csi_queue_size: 4 } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']],
    });
    a = await online(ts.c2sPort, 'alice', 'a');
    b = await online(ts.c2sPort, 'alice', 'b');
    bob = await online(ts.c2sPort, 'bob', 'x');
    await a.waitFor(/<presence [^>]*from="alice@localhost\/b"/, "b's initial presence at a");
  });

  after(async () => {
    for (const r of [a, b, bob]) r?.close();
    await ts?.stop();
  });

  it('offers <csi/> after authentication only', async () => {
    const { raw, before: pre, after: post } = await login(ts.c2sPort, 'bob', 'features', { bind: false });
    raw.close();
    assert.doesNotMatch(pre, /urn:xmpp:csi:0/);
    assert.match(post, /<csi xmlns="urn:xmpp:csi:0"\/>/);
  });

  it('delivers a message with a body to an inactive client at once, holding presence updates until <active/>', async () => {
    a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    await settle();
    statuses(b, 'one', 'two');
    await settle();
    bob.send("<message to='alice@localhost/a' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await settle();
    assert.doesNotMatch(a.text, /<status>|id="c1"/, 'presence updates and chat states wait');
    a.send("<active xmlns='urn:xmpp:csi:0'/>");
    const flushed = await upTo(a, '<message [^>]*id="c1"[\\s\\S]*?</message>', 'the held chat state');
    assert.deepEqual(statusOrder(flushed), ['one', 'two']);
    assert.match(flushed, /<delay xmlns="urn:xmpp:delay" from="alice@localhost" stamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\/>/);
    // Active again: presence goes straight through.
    statuses(b, 'three');
    const now = await a.waitFor(/<presence [^>]*from="alice@localhost\/b"[^>]*>[\s\S]*?<\/presence>/, 'a live presence');
    assert.match(now[0], /<status>three<\/status>/);
    assert.doesNotMatch(now[0], /urn:xmpp:delay/);
  });

  it('flushes what is held, in order, before a message with a body', async () => {
    a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    await settle();
    statuses(b, 'four', 'five');
    await settle();
    assert.doesNotMatch(a.text, /<status>four/);
    bob.send("<message to='alice@localhost' type='chat' id='u1'><body>urgent</body></message>");
    const flushed = await upTo(a, '<message [^>]*id="u1"[^>]*><body>urgent</body></message>', 'the urgent message');
    assert.deepEqual(statusOrder(flushed), ['four', 'five']);
    // Still inactive: the next update is held again.
    statuses(b, 'six');
    await settle();
    assert.doesNotMatch(a.text, /<status>six/);
    a.send("<active xmlns='urn:xmpp:csi:0'/>");
    await a.waitFor(/<status>six<\/status>/, 'six after active');
  });

  it('flushes when the queue is full (csi_queue_size), and on anything the client sends', async () => {
    a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    await settle();
    statuses(b, 'q1', 'q2', 'q3', 'q4');
    await settle();
    assert.doesNotMatch(a.text, /<status>q/, 'four held (csi_queue_size 4)');
    statuses(b, 'q5');
    const m = await a.waitFor(/[\s\S]*<status>q5<\/status>[\s\S]*?<\/presence>/, 'the fifth update flushes all');
    assert.deepEqual(statusOrder(m[0]), ['q1', 'q2', 'q3', 'q4', 'q5']);
    statuses(b, 'q6');
    await settle();
    assert.doesNotMatch(a.text, /<status>q6/);
    // Any stanza from the client, even one that brings nothing back, shows it is awake: what was held comes.
    a.send("<message to='bob@localhost' type='chat' id='awake'><body>back</body></message>");
    await bob.waitFor(/id="awake"/, 'the message at bob');
    await a.waitFor(/<status>q6<\/status>/, 'q6 after client activity');
    a.send("<active xmlns='urn:xmpp:csi:0'/>");
  });

  it('never ends a stream: <inactive/> before bind, twice, and <active/> without <inactive/>', async () => {
    const { raw } = await login(ts.c2sPort, 'bob', 'early', { bind: false });
    raw.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    raw.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    await bind(raw, 'early');
    raw.send("<active xmlns='urn:xmpp:csi:0'/><active xmlns='urn:xmpp:csi:0'/><inactive xmlns='urn:xmpp:csi:0'/>");
    raw.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await raw.waitFor(/<iq [^>]*id="p2"/, 'ping result on the same stream');
    assert.ok(!raw.isClosed);
    assert.doesNotMatch(raw.text, /stream:error/);
    raw.close();
  });

  it('classifies stanzas as Prosody does', () => {
    const m = (attrs: Record<string, string>, ...children: ReturnType<typeof xml>[]) => xml('message', attrs, ...children);
    assert.equal(isImportant(m({ type: 'chat' }, xml('body', {}, 'x'))), true);
    assert.equal(isImportant(m({ type: 'chat' }, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }))), false);
    assert.equal(isImportant(m({ type: 'headline' }, xml('body', {}, 'x'))), false);
    assert.equal(isImportant(m({ type: 'error' })), true);
    assert.equal(isImportant(m({}, xml('received', { xmlns: 'urn:xmpp:receipts', id: '1' }))), false);
    const carbon = m({ type: 'chat' }, xml('received', { xmlns: 'urn:xmpp:carbons:2' }, xml('forwarded', { xmlns: 'urn:xmpp:forward:0' }, xml('message', { xmlns: 'jabber:client' }, xml('body', {}, 'x')))));
    assert.equal(isImportant(carbon), true);
    assert.equal(isImportant(xml('presence', {})), false);
    assert.equal(isImportant(xml('presence', { type: 'unavailable' })), false);
    assert.equal(isImportant(xml('presence', { type: 'subscribe' })), true);
    assert.equal(isImportant(xml('iq', { type: 'result' })), true);
    assert.equal(isImportant(xml('r', { xmlns: 'urn:xmpp:sm:3' })), true);
  });
});

describe('csi_simple off', () => {
  it('offers no <csi/> when the module is not enabled', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [] }, users: [['bob@localhost', 'bob-pw']] });
    try {
      const { raw, after: post } = await login(ts.c2sPort, 'bob', 'r', { bind: false });
      raw.close();
      assert.doesNotMatch(post, /csi/);
    } finally {
      await ts.stop();
    }
  });
});
