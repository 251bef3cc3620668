// smacks (XEP-0198 v3) through real c2s sessions: the feature, <enable/>, h counting both ways with <r/>/<a/>,
// server ack requests, handled-count-too-high, hibernation and resumption on a new connection (replay once, in
// order, the session's presence kept), <failed/> for unknown and expired ids, the bounded queue, and unacknowledged
// messages handed on when a session ends: to offline storage and to the account's other device.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { RawClient, rawAuthenticate, rawLogin } from '../c2s/helpers.js';
import { isCountedStanza, newlyAcked, parseH } from '../../../lib/host/modules/smacks.js';
import { xml } from '@xmpp/xml';

const SM = "xmlns='urn:xmpp:sm:3'";

/** STARTTLS and PLAIN up to the features after authentication (no bind). */
async function authenticate(port: number, user: string): Promise<{ raw: RawClient; features: string }> {
  const { raw, afterAuth } = await rawAuthenticate(port, user, `${user}-pw`);
  return { raw, features: afterAuth };
}

/** Logged in, bound, stream management enabled (with resumption), available. */
async function smLogin(port: number, user: string, resource: string, opts: { resume?: boolean; presence?: boolean } = {}): Promise<{ raw: RawClient; id: string }> {
  const { raw } = await rawLogin(port, user, `${user}-pw`, resource);
  raw.send(`<enable ${SM}${opts.resume === false ? '' : " resume='true'"}/>`);
  const m = await raw.waitFor(/<enabled [^>]*\/>/, 'enabled');
  const id = /id="([^"]+)"/.exec(m[0])?.[1] ?? '';
  if (opts.presence !== false) {
    raw.send('<presence/>');
    await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), 'own presence');
  }
  return { raw, id };
}

async function online(port: number, user: string, resource: string): Promise<RawClient> {
  const { raw } = await rawLogin(port, user, `${user}-pw`, resource);
  raw.send('<presence/>');
  await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), 'own presence');
  return raw;
}

/** Wait until every pattern is in the unread text, whatever their order; returns that text (left unread). */
async function allOf(raw: RawClient, patterns: RegExp[], what: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (!patterns.every((p) => p.test(raw.text))) {
    if (Date.now() > deadline || raw.isClosed) throw new Error(`waiting for ${what}; received: ${raw.text.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return raw.text;
}

const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));
const count = (text: string, needle: string): number => text.split(needle).length - 1;

describe('smacks', () => {
  describe('helpers', () => {
    it('counts stanzas of the client namespace only', () => {
      assert.equal(isCountedStanza(xml('message')), true);
      assert.equal(isCountedStanza(xml('iq', { xmlns: 'jabber:client' })), true);
      assert.equal(isCountedStanza(xml('r', { xmlns: 'urn:xmpp:sm:3' })), false);
      assert.equal(isCountedStanza(xml('active', { xmlns: 'urn:xmpp:csi:0' })), false);
    });
    it('wraps h at 2^32', () => {
      assert.equal(parseH('4294967295'), 4294967295);
      assert.equal(parseH('4294967296'), undefined);
      assert.equal(parseH('-1'), undefined);
      assert.equal(parseH('1e3'), undefined);
      assert.equal(newlyAcked(4294967295, 1), 2);
      assert.equal(newlyAcked(2 ** 32 + 5, 7), 2);
    });
  });

  describe('through sessions', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];
    const track = <T extends RawClient>(c: T): T => (clients.push(c), c);

    before(async () => {
      ts = await startTestServer({
        config: { modules_enabled: ['smacks'], smacks: { hibernation_time: 1, max_queue_size: 8, max_ack_delay: 1 } },
        users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['carol@localhost', 'carol-pw'], ['dave@localhost', 'dave-pw'], ['erin@localhost', 'erin-pw'], ['frank@localhost', 'frank-pw']],
      });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    it('offers <sm/> after authentication and refuses <enable/> before binding', async () => {
      const { raw, features } = await authenticate(ts.c2sPort, 'alice');
      track(raw);
      assert.match(features, /<sm xmlns="urn:xmpp:sm:3"\/>/);
      raw.send(`<enable ${SM}/>`);
      await raw.waitFor(/<failed xmlns="urn:xmpp:sm:3"[^>]*><unexpected-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/failed>/, 'failed before bind');
      raw.close();
    });

    it('enables with resumption: id, resume and max', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'enable');
      track(raw);
      raw.send(`<enable ${SM} resume='true'/>`);
      const m = await raw.waitFor(/<enabled [^>]*\/>/, 'enabled');
      assert.match(m[0], /id="[A-Za-z0-9_-]{16,}"/);
      assert.match(m[0], /resume="true"/);
      assert.match(m[0], /max="1"/);
      raw.send(`<enable ${SM}/>`);
      await raw.waitFor(/<failed [^>]*><unexpected-request/, 'a second enable fails');
      raw.send('</stream:stream>');
      await raw.waitClosed();
    });

    it('answers <r/> with the stanzas handled (not nonzas), and asks for acks of what it sent', async () => {
      const { raw } = await smLogin(ts.c2sPort, 'bob', 'counting');
      track(raw);
      // The server asks about its first stanza (the client's own presence) at once.
      await raw.waitFor(/<r xmlns="urn:xmpp:sm:3"\/>/, 'the server asks for an ack');
      raw.send(`<a ${SM} h='1'/>`);
      // Counted: the initial presence; now two pings (stanzas) and a nonza.
      raw.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      raw.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      raw.send(`<r ${SM}/>`);
      // h=3 for us, and a new request about what it sent since (2 results).
      await allOf(raw, [/<a xmlns="urn:xmpp:sm:3" h="3"\/>/, /id="p2"[\s\S]*<r xmlns="urn:xmpp:sm:3"\/>|<r xmlns="urn:xmpp:sm:3"\/>[\s\S]*id="p2"/], 'a h=3 and a new <r/>');
      await raw.waitFor(/<a xmlns="urn:xmpp:sm:3" h="3"\/>/, 'a h=3');
      raw.send(`<a ${SM} h='3'/>`);
      raw.send(`<r ${SM}/>`);
      await raw.waitFor(/<a xmlns="urn:xmpp:sm:3" h="3"\/>/, 'still 3: nonzas are not counted');
      raw.send('</stream:stream>');
      await raw.waitClosed();
    });

    it('ends the stream when the client acknowledges more than was sent (handled-count-too-high)', async () => {
      const { raw } = await smLogin(ts.c2sPort, 'frank', 'toohigh');
      track(raw);
      raw.send(`<a ${SM} h='5'/>`);
      const m = await raw.waitFor(/<stream:error>[\s\S]*?<\/stream:error>/, 'stream error');
      assert.match(m[0], /<undefined-condition /);
      assert.match(m[0], /<handled-count-too-high xmlns="urn:xmpp:sm:3" h="5" send-count="1"\/>/);
      assert.match(m[0], /You acknowledged 5 stanzas, but I only sent you 1 so far\./);
      await raw.waitClosed();
    });

    it('resumes on a new connection: replays the unacknowledged stanzas once, in order, and keeps the session', async () => {
      const watcher = track(await online(ts.c2sPort, 'carol', 'watch'));
      const { raw: first, id } = await smLogin(ts.c2sPort, 'carol', 'phone');
      track(first);
      await watcher.waitFor(/<presence [^>]*from="carol@localhost\/phone"/, 'phone online at the watcher');
      // Nothing acknowledged: the presences and three messages are replayed.
      for (const n of [1, 2, 3]) watcher.send(`<message to='carol@localhost/phone' type='chat' id='m${n}'><body>m${n}</body></message>`);
      await first.waitFor(/<body>m3<\/body>/, 'the three messages on the first connection');
      first.close();
      await settle(200);

      const { raw: second } = await authenticate(ts.c2sPort, 'carol');
      track(second);
      second.send(`<resume ${SM} previd='${id}' h='0'/>`);
      const replay = await second.waitFor(/(<resumed [^>]*\/>)([\s\S]*<body>m3<\/body><delay[^>]*\/><\/message>)/, 'resumed and the replay');
      assert.match(replay[1]!, new RegExp(`previd="${id}"`));
      assert.match(replay[1]!, /h="1"/);
      const bodies = [...replay[2]!.matchAll(/<body>(m\d)<\/body>/g)].map((b) => b[1]);
      assert.deepEqual(bodies, ['m1', 'm2', 'm3']);
      const replayed = replay[2]!.match(/<(message|presence|iq)[ >]/g)!.length;
      // The session is the same: bound resource, available (the watcher saw no unavailable), still routable.
      assert.doesNotMatch(watcher.text, /type="unavailable"/);
      watcher.send("<message to='carol@localhost/phone' type='chat' id='m4'><body>m4</body></message>");
      await second.waitFor(/<body>m4<\/body>/, 'a new message after resumption');
      second.send(`<a ${SM} h='${replayed + 1}'/>`);
      await settle();
      assert.equal(count(second.text, '<body>m'), 0);
      second.send('</stream:stream>');
      await second.waitClosed();
    });

    it('answers <failed/> item-not-found for an unknown id, and with h after hibernation ran out', async () => {
      const { raw: unknown } = await authenticate(ts.c2sPort, 'dave');
      track(unknown);
      unknown.send(`<resume ${SM} previd='nope' h='0'/>`);
      await unknown.waitFor(/<failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/failed>/, 'failed');

      const { raw: first, id } = await smLogin(ts.c2sPort, 'dave', 'late');
      track(first);
      first.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await first.waitFor(/id="p1"/, 'pong');
      first.close();
      await settle(1600);
      const { raw: second } = await authenticate(ts.c2sPort, 'dave');
      track(second);
      second.send(`<resume ${SM} previd='${id}' h='0'/>`);
      await second.waitFor(/<failed xmlns="urn:xmpp:sm:3" h="2"><item-not-found /, 'failed with h');
      // Another account cannot even learn that the id existed.
      const { raw: other } = await authenticate(ts.c2sPort, 'erin');
      track(other);
      other.send(`<resume ${SM} previd='${id}' h='0'/>`);
      await other.waitFor(/<failed xmlns="urn:xmpp:sm:3"><item-not-found /, 'failed without h');
    });

    it('never drops: a message unacknowledged at </stream> reaches the next session from offline storage', async () => {
      const sender = track(await online(ts.c2sPort, 'bob', 'sender'));
      const { raw: phone } = await smLogin(ts.c2sPort, 'erin', 'phone', { resume: false });
      track(phone);
      sender.send("<message to='erin@localhost/phone' type='chat' id='k1'><body>keep me</body></message>");
      await phone.waitFor(/<body>keep me<\/body>/, 'message on the phone, not acknowledged');
      phone.send('</stream:stream>');
      await phone.waitClosed();
      await settle(200);
      const next = track(await online(ts.c2sPort, 'erin', 'next'));
      await next.waitFor(/<body>keep me<\/body>/, 'the message at the next login');
      await settle();
      assert.equal(count(next.text, 'keep me'), 0, 'exactly once');
    });

    it('never drops when another device of the account is online (Prosody 0.12 loses it): that device gets it, and the next session too', async () => {
      const sender = track(await online(ts.c2sPort, 'bob', 'sender2'));
      const laptop = track(await online(ts.c2sPort, 'dave', 'laptop'));
      const { raw: phone } = await smLogin(ts.c2sPort, 'dave', 'phone2', { resume: false });
      track(phone);
      await laptop.waitFor(/<presence [^>]*from="dave@localhost\/phone2"/, 'phone at the laptop');
      // To the bare JID: both devices get it; only the laptop's socket takes it for sure.
      sender.send("<message to='dave@localhost' type='chat' id='b1'><body>to both</body></message>");
      // To the phone only: the laptop never saw it.
      sender.send("<message to='dave@localhost/phone2' type='chat' id='f1'><body>to the phone</body></message>");
      await phone.waitFor(/<body>to the phone<\/body>/, 'both on the phone');
      await laptop.waitFor(/<body>to both<\/body>/, 'the bare-JID message on the laptop');
      phone.send('</stream:stream>');
      await phone.waitClosed();
      await laptop.waitFor(/<body>to the phone<\/body>/, 'the phone-only message handed to the laptop');
      await settle(200);
      assert.equal(count(laptop.text, 'to both'), 0, 'the laptop does not get the bare-JID message twice');
      const next = track(await online(ts.c2sPort, 'dave', 'tablet'));
      await next.waitFor(/<body>to (both|the phone)<\/body>[\s\S]*<body>to (both|the phone)<\/body>/, 'both at the next login');
      await settle();
      const all = next.text;
      assert.equal(count(all, 'to both') + count(all, 'to the phone'), 0, 'each exactly once');
    });

    it('bounds the queue: past max_queue_size the stream ends with policy-violation and nothing is lost', async () => {
      const sender = track(await online(ts.c2sPort, 'bob', 'flood'));
      const { raw: phone } = await smLogin(ts.c2sPort, 'alice', 'full', { resume: false, presence: false });
      track(phone);
      for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) sender.send(`<message to='alice@localhost/full' type='chat' id='q${n}'><body>q${n}</body></message>`);
      const m = await phone.waitFor(/<stream:error>[\s\S]*?<\/stream:error>/, 'stream error');
      assert.match(m[0], /<policy-violation /);
      await phone.waitClosed();
      await settle(200);
      const next = track(await online(ts.c2sPort, 'alice', 'after'));
      const got = await next.waitFor(/<body>q1<\/body>[\s\S]*<body>q9<\/body>/, 'all nine at the next login');
      assert.deepEqual([...got[0].matchAll(/<body>(q\d)<\/body>/g)].map((b) => b[1]), ['q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'q9']);
    });
  });
});
