// Roster get/set with versioning (RFC 6121 §2): the pure set logic, then get, set, pushes and `ver` on the wire.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, xml, type Element } from '../../../lib/host/api.js';
import { applyRosterSet, emptyRoster, type Roster } from '../../../lib/host/modules/roster.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';

const NS = 'jabber:iq:roster';
const query = (...items: Element[]) => xml('query', { xmlns: NS }, ...items);
const item = (attrs: Record<string, string>, ...groups: string[]) => xml('item', attrs, ...groups.map((g) => xml('group', {}, g)));
const refusesWith = (condition: string) => (err: unknown) => err instanceof StanzaError && err.condition === condition;

describe('roster module', () => {
  describe('applyRosterSet()', () => {
    const owner = 'alice@localhost';

    it('adds an item with groups and bumps the version', () => {
      const { roster, change } = applyRosterSet(emptyRoster(), query(item({ jid: 'Bob@Localhost', name: 'Bob' }, 'Friends')), owner);
      assert.equal(roster.version, 1);
      assert.deepEqual(roster.items['bob@localhost'], { jid: 'bob@localhost', name: 'Bob', subscription: 'none', groups: ['Friends'] });
      assert.ok('item' in change);
    });

    it('ignores a subscription or ask the client sets (§2.1.2.5)', () => {
      const { roster } = applyRosterSet(emptyRoster(), query(item({ jid: 'bob@localhost', subscription: 'both', ask: 'subscribe' })), owner);
      assert.equal(roster.items['bob@localhost']!.subscription, 'none');
      assert.equal(roster.items['bob@localhost']!.ask, undefined);
    });

    it('removes an item with subscription="remove"', () => {
      const start: Roster = { version: 4, items: { 'bob@localhost': { jid: 'bob@localhost', subscription: 'none', groups: [] } } };
      const { roster, change } = applyRosterSet(start, query(item({ jid: 'bob@localhost', subscription: 'remove' })), owner);
      assert.deepEqual(roster, { version: 5, items: {} });
      assert.deepEqual(change, { removed: 'bob@localhost' });
    });

    it('refuses what RFC 6121 §2.3.3 and §2.5.3 refuse', () => {
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: 'x@y', subscription: 'remove' })), owner), refusesWith('item-not-found'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: 'a@b' }), item({ jid: 'c@d' })), owner), refusesWith('bad-request'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(), owner), refusesWith('bad-request'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: 'a@b' }, 'G', 'G')), owner), refusesWith('bad-request'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: 'a@b' }, '')), owner), refusesWith('not-acceptable'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: '@@' })), owner), refusesWith('bad-request'));
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: owner })), owner), refusesWith('not-allowed'));
    });

    it('treats JIDs that are Object.prototype names (constructor, toString) as ordinary items', () => {
      assert.throws(() => applyRosterSet(emptyRoster(), query(item({ jid: 'constructor', subscription: 'remove' })), owner), refusesWith('item-not-found'));
      const { roster } = applyRosterSet(emptyRoster(), query(item({ jid: 'tostring' })), owner);
      assert.deepEqual(Object.keys(roster.items), ['tostring']);
      assert.equal(applyRosterSet(emptyRoster(), query(item({ jid: 'constructor' })), owner).roster.items['constructor']?.subscription, 'none');
    });

    it('does not change the roster it was given', () => {
      const start = emptyRoster();
      applyRosterSet(start, query(item({ jid: 'bob@localhost' })), owner);
      assert.deepEqual(start, emptyRoster());
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw']] });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    it('gets, sets with a push to interested resources, and answers an up-to-date ver with an empty result', async () => {
      const a = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'one');
      const b = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'two');
      clients.push(a.raw, b.raw);

      a.raw.send(`<iq type='get' id='g1'><query xmlns='${NS}'/></iq>`);
      await a.raw.waitFor(/<iq type="result" id="g1" to="alice@localhost\/one"><query xmlns="jabber:iq:roster" ver="0"\/><\/iq>/, 'empty roster with ver');
      b.raw.send(`<iq type='get' id='g2'><query xmlns='${NS}' ver=''/></iq>`);
      await b.raw.waitFor(/<iq type="result" id="g2"[^>]*><query xmlns="jabber:iq:roster" ver="0"\/>/, 'an empty ver gets the roster');

      a.raw.send(`<iq type='set' id='s1'><query xmlns='${NS}'><item jid='bob@example.net' name='Bob'><group>Friends</group></item></query></iq>`);
      await a.raw.waitFor(/<iq type="result" id="s1"/, 'set result');
      for (const c of [a.raw, b.raw]) {
        await c.waitFor(/<iq type="set" id="push-[^"]+" to="alice@localhost\/(one|two)"><query xmlns="jabber:iq:roster" ver="1"><item jid="bob@example.net" subscription="none" name="Bob"><group>Friends<\/group><\/item><\/query><\/iq>/, 'roster push');
      }

      a.raw.send(`<iq type='get' id='g3'><query xmlns='${NS}' ver='1'/></iq>`);
      await a.raw.waitFor(/<iq type="result" id="g3" to="alice@localhost\/one"\/>/, 'empty result for the current version (§2.6.3)');
      a.raw.send(`<iq type='get' id='g4'><query xmlns='${NS}' ver='0'/></iq>`);
      await a.raw.waitFor(/<iq type="result" id="g4"[^>]*><query xmlns="jabber:iq:roster" ver="1"><item jid="bob@example.net"/, 'the full roster for an old version');

      a.raw.send(`<iq type='set' id='s2'><query xmlns='${NS}'><item jid='nobody@example.net' subscription='remove'/></query></iq>`);
      await a.raw.waitFor(/<iq [^>]*type="error"[^>]*>.*<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/s, 'item-not-found');
    });

    it('keeps the roster for the next login', async () => {
      const c = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'three');
      clients.push(c.raw);
      c.raw.send(`<iq type='get' id='g5'><query xmlns='${NS}'/></iq>`);
      await c.raw.waitFor(/<item jid="bob@example.net" subscription="none" name="Bob"><group>Friends<\/group><\/item>/);
    });

    it('refuses a roster get for another account (not the own bare JID)', async () => {
      const c = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'four');
      clients.push(c.raw);
      c.raw.send(`<iq type='get' id='g6' to='bob@localhost'><query xmlns='${NS}'/></iq>`);
      await c.raw.waitFor(/<iq [^>]*type="error"[^>]*>.*<service-unavailable /s);
    });
  });
});
