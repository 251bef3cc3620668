// Roster get/set with versioning (RFC 6121 §2): the set's checks and limits, the store (a change at any roster size
// reads and writes the same entries; earlier one-document rosters move over), then get, set, pushes and `ver` on the wire;
// subscription changes (RFC 6121 §3) under the same limits, pending requests bounded, removal telling the contact (§2.5.2).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, xml, type Element, type MapStore } from '../../../lib/host/api.js';
import { mockModule } from '../../../lib/host/testing.js';
import { DEFAULT_LIMITS, RosterStore, parseRosterSet, type LegacyRoster, type RosterLimits } from '../../../lib/host/modules/roster.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, withTimeout, type RawClient } from '../c2s/helpers.js';

const NS = 'jabber:iq:roster';
const query = (...items: Element[]) => xml('query', { xmlns: NS }, ...items);
const item = (attrs: Record<string, string>, ...groups: string[]) => xml('item', attrs, ...groups.map((g) => xml('group', {}, g)));
const refusesWith = (condition: string, text?: RegExp) => (err: unknown) =>
  err instanceof StanzaError && err.condition === condition && (text === undefined || text.test(err.text ?? ''));
const owner = 'alice@localhost';

/** A map store that records every call made to it. */
function spyMap(): { map: MapStore<never>; calls: Array<{ op: string; keys: string[] }>; legacy: ReturnType<typeof legacyStore> } {
  const mock = mockModule();
  const inner = mock.api.openMap<never>('roster');
  const calls: Array<{ op: string; keys: string[] }> = [];
  const map: MapStore<never> = {
    get: (user, key) => (calls.push({ op: 'get', keys: [key] }), inner.get(user, key)),
    getAll: (user) => (calls.push({ op: 'getAll', keys: [] }), inner.getAll(user)),
    set: (user, key, value) => (calls.push({ op: 'set', keys: [key] }), inner.set(user, key, value)),
    setKeys: (user, entries) => (calls.push({ op: 'setKeys', keys: [...entries.keys()] }), inner.setKeys(user, entries)),
    clear: (user) => (calls.push({ op: 'clear', keys: [] }), inner.clear(user)),
  };
  return { map, calls, legacy: legacyStore() };
}

function legacyStore() {
  return mockModule().api.openStore<LegacyRoster>('roster');
}

function newStore(limits: Partial<RosterLimits> = {}) {
  const spy = spyMap();
  return { ...spy, store: new RosterStore(spy.map, spy.legacy, { ...DEFAULT_LIMITS, ...limits }) };
}

describe('roster module', () => {
  describe('parseRosterSet()', () => {
    it('reads the item; subscription and ask from the client are not part of it (§2.1.2.5)', () => {
      assert.deepEqual(parseRosterSet(query(item({ jid: 'Bob@Localhost', name: 'Bob', subscription: 'both', ask: 'subscribe' }, 'Friends')), owner), {
        jid: 'bob@localhost',
        name: 'Bob',
        groups: ['Friends'],
      });
      assert.deepEqual(parseRosterSet(query(item({ jid: 'bob@localhost', subscription: 'remove' })), owner), { jid: 'bob@localhost', remove: true });
    });

    it('refuses what RFC 6121 §2.3.3 and §2.5.3 refuse', () => {
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }), item({ jid: 'c@d' })), owner), refusesWith('bad-request'));
      assert.throws(() => parseRosterSet(query(), owner), refusesWith('bad-request'));
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }, 'G', 'G')), owner), refusesWith('bad-request'));
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }, '')), owner), refusesWith('not-acceptable'));
      assert.throws(() => parseRosterSet(query(item({ jid: '@@' })), owner), refusesWith('bad-request'));
      assert.throws(() => parseRosterSet(query(item({ jid: owner })), owner), refusesWith('not-allowed'));
    });

    it('refuses an item over the limits with not-acceptable, naming the option', () => {
      const limits = { ...DEFAULT_LIMITS, maxGroupsPerItem: 2, maxNameLength: 5, maxGroupLength: 3 };
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }, 'x', 'y', 'z')), owner, limits), refusesWith('not-acceptable', /3 groups; at most 2 .*max_groups_per_item/));
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b', name: 'abcdef' })), owner, limits), refusesWith('not-acceptable', /6 characters; at most 5 .*max_name_length/));
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }, 'abcd')), owner, limits), refusesWith('not-acceptable', /max_group_length/));
      // Characters, not UTF-16 units or bytes: five emoji are a name of five.
      assert.equal(parseRosterSet(query(item({ jid: 'a@b', name: '😀😀😀😀😀' }, 'été')), owner, limits).jid, 'a@b');
      assert.throws(() => parseRosterSet(query(item({ jid: 'a@b' }, ...Array.from({ length: 65 }, (_, i) => `g${i}`))), owner), refusesWith('not-acceptable', /at most 64/));
    });
  });

  describe('RosterStore', () => {
    it('adds, changes and removes items, each change a new ver; subscription stays the server\'s', async () => {
      const { store } = newStore();
      assert.deepEqual(await store.read(owner), { ver: '0', items: [] });
      const added = await store.apply(owner, query(item({ jid: 'bob@localhost', name: 'Bob', subscription: 'both' }, 'Friends')));
      assert.deepEqual(added.change, { item: { jid: 'bob@localhost', name: 'Bob', subscription: 'none', groups: ['Friends'] } });
      const changed = await store.apply(owner, query(item({ jid: 'bob@localhost' })));
      assert.notEqual(changed.ver, added.ver);
      assert.deepEqual(await store.read(owner), { ver: changed.ver, items: [{ jid: 'bob@localhost', subscription: 'none', groups: [] }] });
      const removed = await store.apply(owner, query(item({ jid: 'bob@localhost', subscription: 'remove' })));
      assert.deepEqual(removed.change, { removed: 'bob@localhost' });
      assert.deepEqual(await store.read(owner), { ver: removed.ver, items: [] });
      await assert.rejects(store.apply(owner, query(item({ jid: 'bob@localhost', subscription: 'remove' }))), refusesWith('item-not-found'));
    });

    it('treats JIDs that are Object.prototype names (constructor, toString) as ordinary items', async () => {
      const { store } = newStore();
      await assert.rejects(store.apply(owner, query(item({ jid: 'constructor', subscription: 'remove' }))), refusesWith('item-not-found'));
      await store.apply(owner, query(item({ jid: 'tostring' })));
      await store.apply(owner, query(item({ jid: 'constructor' })));
      assert.deepEqual((await store.read(owner)).items.map((i) => i.jid), ['constructor', 'tostring']);
    });

    it('refuses a new item past max_items with policy-violation, but still changes or removes existing ones', async () => {
      const { store } = newStore({ maxItems: 2 });
      await store.apply(owner, query(item({ jid: 'a@localhost' })));
      await store.apply(owner, query(item({ jid: 'b@localhost' })));
      await assert.rejects(store.apply(owner, query(item({ jid: 'c@localhost' }))), refusesWith('policy-violation', /full: it has 2 items.*max_items.*remove a contact/));
      await store.apply(owner, query(item({ jid: 'b@localhost', name: 'Bee' })));
      await store.apply(owner, query(item({ jid: 'b@localhost', subscription: 'remove' })));
      await store.apply(owner, query(item({ jid: 'c@localhost' })));
      assert.equal((await store.read(owner)).items.length, 2);
    });

    it('refuses a change that grows the roster past max_bytes, and lets one that shrinks it through', async () => {
      const { store } = newStore({ maxBytes: 200 });
      await store.apply(owner, query(item({ jid: 'a@localhost', name: 'x'.repeat(100) })));
      await assert.rejects(store.apply(owner, query(item({ jid: 'b@localhost', name: 'y'.repeat(100) }))), refusesWith('policy-violation', /more than the 200 allowed \(roster max_bytes\)/));
      await store.apply(owner, query(item({ jid: 'a@localhost', name: 'short' })));
      await store.apply(owner, query(item({ jid: 'b@localhost', name: 'y'.repeat(60) })));
    });

    it('a change reads and writes the same entries at 1,000 items as at 1: the item and the version, never the whole roster', async () => {
      const entriesTouched = async (size: number) => {
        const { store, calls } = newStore({ maxItems: 2000 });
        for (let i = 0; i < size; i++) await store.apply(owner, query(item({ jid: `c${i}@example.net` }, 'Friends')));
        calls.length = 0;
        await store.apply(owner, query(item({ jid: 'c0@example.net', name: 'Renamed' })));
        await store.apply(owner, query(item({ jid: 'new@example.net' })));
        await store.apply(owner, query(item({ jid: 'c0@example.net', subscription: 'remove' })));
        return calls;
      };
      const big = await entriesTouched(1000);
      assert.deepEqual(big, await entriesTouched(1));
      assert.deepEqual(big.filter((c) => c.op !== 'get'), [
        { op: 'setKeys', keys: ['c0@example.net', ''] },
        { op: 'setKeys', keys: ['new@example.net', ''] },
        { op: 'setKeys', keys: ['c0@example.net', ''] },
      ]);
      assert.equal(big.filter((c) => c.op === 'get').length, 6, 'the version and the item, per change');
    });

    it('moves a roster stored as one document (earlier versions) to the map, keeping its items and version count', async () => {
      const { store, legacy, map } = newStore();
      await legacy.set(owner, { version: 5, items: { 'bob@localhost': { jid: 'bob@localhost', subscription: 'both', groups: ['G'] } } });
      const roster = await store.read(owner);
      assert.deepEqual(roster.items, [{ jid: 'bob@localhost', subscription: 'both', groups: ['G'] }]);
      assert.match(roster.ver, /-5$/);
      assert.equal(await legacy.get(owner), undefined, 'the document is gone');
      assert.deepEqual(await map.get(owner, 'bob@localhost'), { jid: 'bob@localhost', subscription: 'both', groups: ['G'] });
      const next = await store.apply(owner, query(item({ jid: 'cy@localhost' })));
      assert.match(next.ver, /-6$/);
      assert.equal((await store.read(owner)).items.length, 2);
    });

    it('a roster deleted and begun again never repeats an earlier ver (a client cache of the old one is not current)', async () => {
      const { store } = newStore();
      const first = await store.apply(owner, query(item({ jid: 'bob@localhost' })));
      await store.delete(owner);
      assert.deepEqual(await store.read(owner), { ver: '0', items: [] });
      const again = await store.apply(owner, query(item({ jid: 'eve@localhost' })));
      assert.notEqual(again.ver, first.ver);
    });

    it('runs concurrent sets of one account one after the other: no change is lost', async () => {
      const { store } = newStore();
      const vers = await Promise.all(Array.from({ length: 20 }, (_, i) => store.apply(owner, query(item({ jid: `c${i}@localhost` })))));
      assert.equal(new Set(vers.map((v) => v.ver)).size, 20);
      const roster = await store.read(owner);
      assert.equal(roster.items.length, 20);
      assert.match(roster.ver, /-20$/);
    });
  });

  describe('RosterStore#update() (subscription changes)', () => {
    const pending = (from: string) => ({ from, stanza: `<presence type="subscribe" from="${from}"/>` });

    it('creates, changes and deletes items and pending requests in one step, a new ver only when the item changed', async () => {
      const { store } = newStore();
      const asked = await store.update(owner, 'bob@localhost', () => ({ item: { jid: 'bob@localhost', subscription: 'none', ask: 'subscribe', groups: [] } }));
      assert.deepEqual(asked.pushed?.change, { item: { jid: 'bob@localhost', subscription: 'none', ask: 'subscribe', groups: [] } });
      const waiting = await store.update(owner, 'carol@localhost', () => ({ pending: pending('carol@localhost') }));
      assert.equal(waiting.pushed, undefined, 'a pending request is not on the roster');
      assert.deepEqual(await store.pendingRequests(owner), [pending('carol@localhost')]);
      assert.deepEqual((await store.read(owner)).items.map((i) => i.jid), ['bob@localhost'], 'and not among its items');
      const same = await store.update(owner, 'bob@localhost', ({ item }) => ({ item: { ...item! } }));
      assert.equal(same.pushed, undefined, 'an unchanged item is no change');
      const approved = await store.update(owner, 'carol@localhost', ({ pending: p }) => (p ? { pending: null, item: { jid: 'carol@localhost', subscription: 'from', groups: [] } } : undefined));
      assert.match(approved.pushed!.ver, /-2$/);
      assert.deepEqual(await store.pendingRequests(owner), []);
      assert.deepEqual(await store.contact(owner, 'carol@localhost'), { item: { jid: 'carol@localhost', subscription: 'from', groups: [] }, pending: undefined });
    });

    it('holds items made by subscriptions to max_items, and pending requests to max_items and max_bytes', async () => {
      const { store } = newStore({ maxItems: 2, maxBytes: 1024 });
      const add = (jid: string) => store.update(owner, jid, () => ({ item: { jid, subscription: 'none', ask: 'subscribe', groups: [] } }));
      await add('a@localhost');
      await add('b@localhost');
      await assert.rejects(add('c@localhost'), refusesWith('policy-violation', /max_items/));
      const wait = (jid: string, size = 10) => store.update(owner, jid, () => ({ pending: { from: jid, stanza: 'x'.repeat(size) } }));
      await wait('p@localhost');
      await wait('q@localhost');
      await assert.rejects(wait('r@localhost'), refusesWith('resource-constraint'));
      await store.update(owner, 'p@localhost', () => ({ pending: null }));
      await wait('r@localhost');
      await assert.rejects(wait('s@localhost', 2000), refusesWith('resource-constraint'), 'bytes');
    });

    it('a roster remove takes the pending request with the item and says what there was (§2.5.2)', async () => {
      const { store } = newStore();
      await store.update(owner, 'bob@localhost', () => ({ item: { jid: 'bob@localhost', subscription: 'to', groups: [] }, pending: pending('bob@localhost') }));
      const removed = await store.apply(owner, query(item({ jid: 'bob@localhost', subscription: 'remove' })));
      assert.deepEqual(removed.removed, { item: { jid: 'bob@localhost', subscription: 'to', groups: [] }, pending: pending('bob@localhost') });
      assert.deepEqual(await store.pendingRequests(owner), []);
      await store.update(owner, 'x@localhost', () => ({ pending: pending('x@localhost') }));
      assert.equal((await store.pendingRequests(owner)).length, 1, 'the count stayed right');
    });
  });

  describe('subscriptions on the wire', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [], roster: { max_items: 1 } }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['carol@localhost', 'carol-pw']] });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    const online = async (user: string): Promise<RawClient> => {
      const { raw } = await rawLogin(ts.c2sPort, user, `${user}-pw`, 'r');
      clients.push(raw);
      raw.send(`<iq type='get' id='g'><query xmlns='${NS}'/></iq><presence/>`);
      await raw.waitFor(new RegExp(`<presence from="${user}@localhost/r" to="${user}@localhost/r"/>`), `${user} online`);
      return raw;
    };
    const ping = async (c: RawClient, id: string) => {
      c.send(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      return c.waitFor(new RegExp(`<iq type="result" id="${id}"`), 'ping');
    };

    it('refuses a subscription request that would pass max_items with policy-violation, and does not send it', async () => {
      const a = await online('alice');
      const c = await online('carol');
      a.send(`<presence to='bob@localhost' type='subscribe'/>`);
      await a.waitFor(/<item jid="bob@localhost" subscription="none" ask="subscribe"\/>/, 'the first contact');
      a.send(`<presence to='carol@localhost' type='subscribe' id='full'/>`);
      await a.waitFor(/<presence [^>]*type="error"[^>]*>.*<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><text [^>]*>The roster is full[^<]*max_items/s, 'policy-violation');
      await withTimeout(ping(c, 'c1'), 'carol ping');
      assert.doesNotMatch(c.text, /subscribe/, 'carol got no request');
    });

    it('removing a contact cancels the subscriptions and the request (§2.5.2)', async () => {
      const b = await online('bob');
      await b.waitFor(/<presence[^>]*type="subscribe"[^>]*from="alice@localhost"|<presence[^>]*from="alice@localhost"[^>]*type="subscribe"/, "alice's request, kept for bob");
      b.send(`<presence to='alice@localhost' type='subscribed'/>`);
      await b.waitFor(/<item jid="alice@localhost" subscription="from"\/>/, "bob's push");
      b.send(`<iq type='set' id='rm'><query xmlns='${NS}'><item jid='alice@localhost' subscription='remove'/></query></iq>`);
      await b.waitFor(/<item jid="alice@localhost" subscription="remove"\/>/, 'the removal pushed');
      const a = clients[0]!;
      await a.waitFor(/<item jid="bob@localhost" subscription="none"\/>/, "alice's subscription to bob is gone (bob sent unsubscribed)");
      await a.waitFor(/<presence[^>]*type="unsubscribed"/, 'the unsubscribed at alice');
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [], roster: { max_items: 2 } }, users: [['alice@localhost', 'alice-pw']] });
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
      let ver = '';
      for (const c of [a.raw, b.raw]) {
        const m = await c.waitFor(/<iq type="set" id="push-[^"]+" to="alice@localhost\/(one|two)"><query xmlns="jabber:iq:roster" ver="([^"]+-1)"><item jid="bob@example.net" subscription="none" name="Bob"><group>Friends<\/group><\/item><\/query><\/iq>/, 'roster push');
        ver = m[2]!;
      }
      assert.notEqual(ver, '');

      a.raw.send(`<iq type='get' id='g3'><query xmlns='${NS}' ver='${ver}'/></iq>`);
      await a.raw.waitFor(/<iq type="result" id="g3" to="alice@localhost\/one"\/>/, 'empty result for the current version (§2.6.3)');
      a.raw.send(`<iq type='get' id='g4'><query xmlns='${NS}' ver='0'/></iq>`);
      await a.raw.waitFor(new RegExp(`<iq type="result" id="g4"[^>]*><query xmlns="jabber:iq:roster" ver="${ver}"><item jid="bob@example.net"`), 'the full roster for an old version');

      a.raw.send(`<iq type='set' id='s2'><query xmlns='${NS}'><item jid='nobody@example.net' subscription='remove'/></query></iq>`);
      await a.raw.waitFor(/<iq [^>]*type="error"[^>]*>.*<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/s, 'item-not-found');
    });

    it('keeps the roster for the next login', async () => {
      const c = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'three');
      clients.push(c.raw);
      c.raw.send(`<iq type='get' id='g5'><query xmlns='${NS}'/></iq>`);
      await c.raw.waitFor(/<item jid="bob@example.net" subscription="none" name="Bob"><group>Friends<\/group><\/item>/);
    });

    it('answers a set past roster max_items with policy-violation and text saying what to do', async () => {
      const c = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'five');
      clients.push(c.raw);
      c.raw.send(`<iq type='set' id='s3'><query xmlns='${NS}'><item jid='cy@example.net'/></query></iq>`);
      await c.raw.waitFor(/<iq type="result" id="s3"/);
      c.raw.send(`<iq type='set' id='s4'><query xmlns='${NS}'><item jid='dee@example.net'/></query></iq>`);
      await c.raw.waitFor(/<iq [^>]*id="s4"[^>]*>.*<error type="modify"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><text [^>]*>Your roster is full: it has 2 items[^<]*max_items[^<]*<\/text>/s, 'policy-violation');
    });

    it('refuses a roster get for another account (not the own bare JID)', async () => {
      const c = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'four');
      clients.push(c.raw);
      c.raw.send(`<iq type='get' id='g6' to='bob@localhost'><query xmlns='${NS}'/></iq>`);
      await c.raw.waitFor(/<iq [^>]*type="error"[^>]*>.*<service-unavailable /s);
    });
  });
});
