// Presence (RFC 6121 §4): priority parsing, availability in the session registry, broadcast to the
// account's own resources, and the unavailable presence a disconnect turns into; presence subscriptions (§3) between
// local accounts through real c2s sessions: every push and presence of the dance, pre-approval, cancellations,
// requests kept for offline accounts, probes at login, directed presence.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '../../../lib/host/api.js';
import { parsePriority } from '../../../lib/host/modules/presence.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { RawClient, rawLogin, streamOpen, withTimeout } from '../c2s/helpers.js';

describe('presence module', () => {
  describe('parsePriority()', () => {
    const p = (text?: string) => parsePriority(text === undefined ? xml('presence') : xml('presence', {}, xml('priority', {}, text)));

    it('reads integers from -128 to 127', () => {
      assert.equal(p('5'), 5);
      assert.equal(p('-1'), -1);
      assert.equal(p(' 127 '), 127);
      assert.equal(p('-128'), -128);
    });

    it('takes 0 for a missing, out of range or non-integer priority (RFC 6121 §4.7.2.3)', () => {
      for (const bad of [undefined, '', '128', '-129', '1.5', 'high', '1e2']) assert.equal(p(bad), 0, String(bad));
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];
    const until = async (check: () => boolean, what: string) =>
      withTimeout(
        (async () => {
          while (!check()) await new Promise((r) => setTimeout(r, 5));
        })(),
        what,
      );

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw']] });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    it('makes a resource available with its priority, tells the other resources, and unavailable undoes it', async () => {
      const a = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'desk');
      const b = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'phone');
      clients.push(a.raw, b.raw);
      const desk = () => ts.server.sessions.byFull('alice@localhost/desk');
      assert.equal(desk()?.isAvailable, false, 'bound but not yet available');

      b.raw.send('<presence/>');
      await b.raw.waitFor(/<presence from="alice@localhost\/phone" to="alice@localhost\/phone"\/>/, 'own presence echoed (§4.2.2)');

      a.raw.send('<presence><priority>7</priority><show>dnd</show></presence>');
      await until(() => desk()?.isAvailable === true, 'desk to be available');
      assert.equal(desk()?.priority, 7);
      // The phone learns of the desk, and the desk of the phone that was already online.
      await b.raw.waitFor(/<presence from="alice@localhost\/desk" to="alice@localhost\/phone"><priority>7<\/priority><show>dnd<\/show><\/presence>/, 'broadcast to the phone');
      await a.raw.waitFor(/<presence from="alice@localhost\/phone" to="alice@localhost\/desk"\/>/, 'the phone presence to the desk');

      a.raw.send("<presence type='unavailable'/>");
      await until(() => desk()?.isAvailable === false, 'desk to be unavailable');
      await b.raw.waitFor(/<presence type="unavailable" from="alice@localhost\/desk"/, 'unavailable broadcast');

      // A disconnect of an available resource is an unavailable presence too (§4.5.1).
      a.raw.send('<presence/>');
      await until(() => desk()?.isAvailable === true, 'desk available again');
      a.raw.close();
      await until(() => desk() === undefined, 'desk to leave the registry');
      await b.raw.waitFor(/<presence type="unavailable" from="alice@localhost\/desk"/, 'unavailable after the disconnect');
    });
  });

  describe('subscriptions (RFC 6121 §3)', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];
    const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'fred', 'gina'];
    /** Sessions one test leaves online for the next. */
    let bob1: RawClient;
    let alice3: RawClient;

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [] }, users: users.map((u) => [`${u}@localhost`, `${u}-pw`]) });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    /** An element's start tag with these attributes, in any order. */
    const tag = (name: string, attrs: Record<string, string>): string =>
      `<${name}${Object.entries(attrs).map(([k, v]) => `(?=[^>]*\\s${k}="${esc(v)}")`).join('')}[^>]*>`;
    /** A roster push of one item; captures its ver. */
    const push = (attrs: Record<string, string>, absent: string[] = []): RegExp =>
      new RegExp(`<iq type="set" id="push-[^"]+"[^>]*><query xmlns="jabber:iq:roster" ver="([^"]+)">${tag('item', attrs).replace(/\[\^>\]\*>$/, `${absent.map((a) => `(?![^>]*\\s${a}=)`).join('')}[^>]*>`)}`);
    const presence = (attrs: Record<string, string>): RegExp => new RegExp(tag('presence', attrs));

    /** Log in, fetch the roster (an interested resource) and send initial presence. */
    async function online(user: string, resource: string, initial = '<presence/>'): Promise<RawClient> {
      const { raw } = await rawLogin(ts.c2sPort, user, `${user}-pw`, resource);
      clients.push(raw);
      raw.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
      await raw.waitFor(/<iq type="result" id="r1"/, `${user}'s roster`);
      raw.send(initial);
      await raw.waitFor(presence({ from: `${user}@localhost/${resource}`, to: `${user}@localhost/${resource}` }), `${user} to see its own presence`);
      return raw;
    }

    /** The received text matches, without consuming it (stanzas of one step may come in any order). */
    async function sees(c: RawClient, re: RegExp, what: string): Promise<RegExpExecArray> {
      return withTimeout(
        (async () => {
          for (;;) {
            const m = re.exec(c.text);
            if (m) return m;
            if (c.isClosed) throw new Error(`closed while waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 5));
          }
        })(),
        what,
      );
    }
    /** A ping round trip: whatever the server sent before it has arrived. */
    async function settle(c: RawClient): Promise<void> {
      const id = `p${Math.random().toString(36).slice(2)}`;
      c.send(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await sees(c, new RegExp(`<iq type="result" id="${id}"`), 'ping result');
    }
    const forget = (c: RawClient) => c.waitFor(/[\s\S]*/);
    const verNumber = (m: RegExpExecArray) => Number(m[1]!.split('-').pop());
    const rosterOf = async (user: string) => {
      const { raw } = await rawLogin(ts.c2sPort, user, `${user}-pw`);
      raw.send(`<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>`);
      const m = await raw.waitFor(/<iq type="result" id="rg"[^>]*>([\s\S]*?)<\/iq>/, 'roster');
      raw.close();
      return m[1]!;
    };

    it('subscribe and approve both ways: every push, the requests, approvals and presence (§3.1)', async () => {
      const a = await online('alice', 'a1');
      const b = await online('bob', 'b1', '<presence><show>chat</show></presence>');
      bob1 = b;

      a.send(`<presence to='bob@localhost' type='subscribe'><status>It is Alice</status><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>`);
      const p1 = await sees(a, push({ jid: 'bob@localhost', subscription: 'none', ask: 'subscribe' }), "alice's push: none + ask");
      const request = await sees(b, /<presence[^>]*type="subscribe"[^>]*>[\s\S]*?<\/presence>/, 'the request at bob');
      assert.match(request[0], new RegExp(tag('presence', { from: 'alice@localhost', type: 'subscribe' })), 'from the bare JID (§3.1.2)');
      assert.match(request[0], /<status>It is Alice<\/status><nick xmlns="http:\/\/jabber.org\/protocol\/nick">Al<\/nick>/, 'kept whole');

      b.send(`<presence to='alice@localhost' type='subscribed'/>`);
      const p2 = await sees(b, push({ jid: 'alice@localhost', subscription: 'from' }, ['ask']), "bob's push: from");
      const p3 = await sees(a, push({ jid: 'bob@localhost', subscription: 'to' }, ['ask']), "alice's push: to");
      assert.ok(verNumber(p3) > verNumber(p1), 'a new version');
      await sees(a, presence({ type: 'subscribed', from: 'bob@localhost' }), 'the approval at alice (§3.1.6)');
      await sees(a, /<presence[^>]*from="bob@localhost\/b1"[^>]*><show>chat<\/show><\/presence>/, "bob's presence at alice (§3.1.5)");
      assert.ok(verNumber(p2) >= 1);
      await settle(a);
      await settle(b);
      await forget(a);
      await forget(b);

      b.send(`<presence to='alice@localhost' type='subscribe'/>`);
      await sees(b, push({ jid: 'alice@localhost', subscription: 'from', ask: 'subscribe' }), "bob's push: from + ask");
      await sees(a, presence({ type: 'subscribe', from: 'bob@localhost' }), 'the request at alice');
      a.send(`<presence to='bob@localhost' type='subscribed'/>`);
      await sees(a, push({ jid: 'bob@localhost', subscription: 'both' }, ['ask']), "alice's push: both");
      await sees(b, push({ jid: 'alice@localhost', subscription: 'both' }, ['ask']), "bob's push: both");
      await sees(b, presence({ from: 'alice@localhost/a1', to: 'bob@localhost/b1' }), "alice's presence at bob");
      await settle(a);
      await forget(b);

      // §4.4: a presence change reaches the contacts; §4.5: so does unavailable.
      a.send('<presence><show>away</show></presence>');
      await sees(b, /<presence[^>]*from="alice@localhost\/a1"[^>]*><show>away<\/show><\/presence>/, 'the change at bob');
      a.send("<presence type='unavailable'/>");
      await sees(b, presence({ type: 'unavailable', from: 'alice@localhost/a1' }), 'unavailable at bob');
      a.send('<presence/>');
      await sees(b, /<presence from="alice@localhost\/a1" to="bob@localhost\/b1"\/>/, 'available again at bob');

      assert.match(await rosterOf('alice'), new RegExp(tag('item', { jid: 'bob@localhost', subscription: 'both' })));
      assert.match(await rosterOf('bob'), new RegExp(tag('item', { jid: 'alice@localhost', subscription: 'both' })));
    });

    it('answers probes at login: the contacts online send their presence, those offline unavailable (§4.3)', async () => {
      const a2 = await online('alice', 'a2');
      // bob/b1 is online (previous test) with <show>chat</show>.
      await sees(a2, /<presence[^>]*from="bob@localhost\/b1"[^>]*to="alice@localhost\/a2"[^>]*><show>chat<\/show>/, "bob's presence in answer to the probe");
      const b = bob1;
      await sees(b, /<presence from="alice@localhost\/a2" to="bob@localhost\/b1"\/>/, "bob sees alice's new resource");
      b.close();
      await sees(a2, presence({ type: 'unavailable', from: 'bob@localhost/b1' }), 'bob leaving');
      const a3 = await online('alice', 'a3');
      alice3 = a3;
      await sees(a3, /<presence (?=[^>]*type="unavailable")(?=[^>]*from="bob@localhost")(?=[^>]*to="alice@localhost\/a3")[^>]*\/>/, 'unavailable for a contact with no resource');
    });

    it('a request to an offline account is kept whole and given to each of its next sessions until answered', async () => {
      const c = await online('carol', 'c1');
      c.send(`<presence to='dave@localhost' type='subscribe'><status>Carol from work</status></presence>`);
      await sees(c, push({ jid: 'dave@localhost', subscription: 'none', ask: 'subscribe' }), "carol's push");

      const d1 = await online('dave', 'd1');
      await sees(d1, /<presence[^>]*type="subscribe"[^>]*><status>Carol from work<\/status><\/presence>/, 'the request at the first login');
      assert.match(d1.text, new RegExp(tag('presence', { from: 'carol@localhost', type: 'subscribe', to: 'dave@localhost/d1' })));
      d1.close();
      const d2 = await online('dave', 'd2');
      await sees(d2, /<presence[^>]*type="subscribe"[^>]*><status>Carol from work<\/status><\/presence>/, 'again at the next login');
      d2.send(`<presence to='carol@localhost' type='subscribed'/>`);
      await sees(d2, push({ jid: 'carol@localhost', subscription: 'from' }), "dave's push");
      await sees(c, push({ jid: 'dave@localhost', subscription: 'to' }, ['ask']), "carol's push: to");
      await sees(c, presence({ from: 'dave@localhost/d2', to: 'carol@localhost/c1' }), "dave's presence at carol");
      d2.close();
      const d3 = await online('dave', 'd3');
      await settle(d3);
      assert.doesNotMatch(d3.text, /type="subscribe"/, 'answered: not given again');
    });

    it('a denied request and a cancelled subscription clean up both rosters (§3.2, §3.3)', async () => {
      // alice <-> bob are both from the first test; bob comes back.
      const b = await online('bob', 'b2');
      const a = alice3;
      await forget(a);

      // §3.3: alice unsubscribes from bob: alice from, bob to; alice sees bob go offline.
      a.send(`<presence to='bob@localhost' type='unsubscribe'/>`);
      await sees(a, push({ jid: 'bob@localhost', subscription: 'from' }), "alice's push: from");
      await sees(b, push({ jid: 'alice@localhost', subscription: 'to' }), "bob's push: to");
      await sees(b, presence({ type: 'unsubscribe', from: 'alice@localhost' }), 'the unsubscribe at bob');
      await sees(a, presence({ type: 'unavailable', from: 'bob@localhost/b2' }), "bob's unavailable at alice (§3.3.3)");
      await forget(b);

      // §3.2: alice cancels bob's subscription: both none; bob sees alice go offline.
      a.send(`<presence to='bob@localhost' type='unsubscribed'/>`);
      await sees(a, push({ jid: 'bob@localhost', subscription: 'none' }), "alice's push: none");
      await sees(b, push({ jid: 'alice@localhost', subscription: 'none' }), "bob's push: none");
      await sees(b, presence({ type: 'unsubscribed', from: 'alice@localhost' }), 'the cancellation at bob');
      await sees(b, presence({ type: 'unavailable', from: 'alice@localhost/a3', to: 'bob@localhost/b2' }), "alice's unavailable at bob (§3.2.2)");

      // A request denied: the ask goes (§3.2.3 for a pending request).
      const e = await online('erin', 'e1');
      const f = await online('fred', 'f1');
      e.send(`<presence to='fred@localhost' type='subscribe'/>`);
      await sees(e, push({ jid: 'fred@localhost', subscription: 'none', ask: 'subscribe' }), 'ask');
      await sees(f, presence({ type: 'subscribe', from: 'erin@localhost' }), 'the request at fred');
      f.send(`<presence to='erin@localhost' type='unsubscribed'/>`);
      await sees(e, push({ jid: 'fred@localhost', subscription: 'none' }, ['ask']), 'the ask removed');
      await sees(e, presence({ type: 'unsubscribed', from: 'fred@localhost' }), 'the denial at erin');
      await settle(f);
      const fredRoster = await rosterOf('fred');
      assert.doesNotMatch(fredRoster, /erin/, 'a denied request leaves no item');
      const f2 = await online('fred', 'f2');
      await settle(f2);
      assert.doesNotMatch(f2.text, /type="subscribe"/, 'nor a pending request');
    });

    it('offers pre-approval and approves a pre-approved request at once (§3.4)', async () => {
      const raw = await RawClient.connect(ts.c2sPort);
      clients.push(raw);
      raw.send(streamOpen());
      await raw.waitFor(/<\/stream:features>/);
      raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await raw.waitFor(/<proceed[^>]*\/>/);
      await raw.starttls();
      raw.send(streamOpen());
      const before = await raw.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/);
      assert.doesNotMatch(before[0], /pre-approval/, 'not before authentication');
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0gina\0gina-pw').toString('base64')}</auth>`);
      await raw.waitFor(/<success/);
      raw.send(streamOpen());
      const features = await raw.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/);
      assert.match(features[0], /<sub xmlns="urn:xmpp:features:pre-approval"\/>/);
      raw.close();

      const g = await online('gina', 'g1');
      const c = await online('carol', 'c2');
      await forget(c);
      g.send(`<presence to='carol@localhost' type='subscribed'/>`);
      await sees(g, push({ jid: 'carol@localhost', subscription: 'none', approved: 'true' }), 'the pre-approval on gina\'s roster');
      await settle(c);
      assert.doesNotMatch(c.text, /subscribed/, 'a pre-approval is not sent (§3.4.2)');
      c.send(`<presence to='gina@localhost' type='subscribe'/>`);
      await sees(c, push({ jid: 'gina@localhost', subscription: 'to' }, ['ask']), 'approved at once');
      await sees(c, presence({ type: 'subscribed', from: 'gina@localhost' }), 'the approval');
      await sees(c, presence({ from: 'gina@localhost/g1', to: 'carol@localhost/c2' }), "gina's presence");
      await sees(g, push({ jid: 'carol@localhost', subscription: 'from' }, ['approved']), "gina's push: from, approval used");
      await settle(g);
      assert.doesNotMatch(g.text, /type="subscribe"/, 'gina is not asked');
    });

    it('directed presence reaches its recipient, and its unavailable at disconnect (§4.6)', async () => {
      const e = await online('erin', 'e2');
      const { raw: d } = await rawLogin(ts.c2sPort, 'dave', 'dave-pw', 'd9');
      clients.push(d);
      d.send('<presence/>');
      await d.waitFor(presence({ from: 'dave@localhost/d9' }));
      await forget(e);
      d.send(`<presence to='erin@localhost/e2'><status>just for you</status></presence>`);
      await sees(e, /<presence[^>]*from="dave@localhost\/d9"[^>]*><status>just for you<\/status>/, 'the directed presence');
      d.close();
      await sees(e, presence({ type: 'unavailable', from: 'dave@localhost/d9', to: 'erin@localhost/e2' }), 'unavailable when dave disconnects');
    });
  });
});
