// Personal Eventing Protocol (XEP-0163) through real client streams: publish and +notify notifications (XEP-0115
// caps, verified), access models, publish-options preconditions, retract/purge/delete, last item on available, disco,
// limits an attacker meets; and the caps verification string (XEP-0115 §5.2's example).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/xml';
import { verificationString, notifyNodes } from '../../../lib/host/modules/pep/caps.js';
import { setRoster, startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogins, type RawClient } from '../c2s/helpers.js';

const NS_CAPS_NODE = 'https://xmppd.test/client';
const DISCO = 'http://jabber.org/protocol/disco#info';

/** A client's disco#info features and the XEP-0115 ver they hash to. */
function capsOf(features: string[]): { features: string[]; ver: string } {
  const query = xml('query', { xmlns: DISCO }, xml('identity', { category: 'client', type: 'pc', name: 'spec' }), ...features.map((v) => xml('feature', { var: v })));
  return { features, ver: verificationString(query, 'sha-1')! };
}

const TUNE = capsOf([DISCO, 'urn:xmpp:tune', 'urn:xmpp:tune+notify', 'storage:bookmarks+notify']);
const PLAIN = capsOf([DISCO, 'urn:xmpp:tune']);

const presenceWithCaps = (ver: string, extra = ''): string =>
  `<presence${extra}><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='${NS_CAPS_NODE}' ver='${ver}'/></presence>`;

/** Answer the server's caps queries (from `owners`) with `features`. */
async function answerCaps(raw: RawClient, features: string[], owners: string[]): Promise<void> {
  for (let n = 0; n < owners.length; n++) {
    const m = await raw.waitFor(/<iq type="get" id="([^"]+)" from="([^"]+)" to="([^"]+)"><query xmlns="http:\/\/jabber.org\/protocol\/disco#info" node="([^"]+)"\/><\/iq>/, 'a caps query');
    assert.ok(owners.includes(m[2]!), `caps query from ${m[2]}`);
    const body = `<identity category='client' type='pc' name='spec'/>${features.map((f) => `<feature var='${f}'/>`).join('')}`;
    raw.send(`<iq type='result' id='${m[1]}' to='${m[2]}'><query xmlns='${DISCO}' node='${m[4]}'>${body}</query></iq>`);
  }
}

const publishIq = (id: string, node: string, itemId: string, payload: string, options = ''): string =>
  `<iq type='set' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${node}'><item id='${itemId}'>${payload}</item></publish>${options}</pubsub></iq>`;

const publishOptions = (fields: Record<string, string>): string =>
  `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>${Object.entries(fields)
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join('')}</x></publish-options>`;

const tune = (title: string): string => `<tune xmlns='urn:xmpp:tune'><title>${title}</title></tune>`;

/** A round trip: resolves to everything the server sent up to the pong. */
async function sync(raw: RawClient, id: string): Promise<string> {
  raw.send(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
  return (await raw.waitFor(new RegExp(`^[\\s\\S]*?<iq [^>]*id="${id}"`)))[0];
}

describe('pep module', () => {
  describe('verificationString()', () => {
    it('gives XEP-0115 §5.2 its ver and refuses a duplicate feature', () => {
      const query = xml(
        'query',
        { xmlns: DISCO },
        xml('identity', { category: 'client', type: 'pc', name: 'Exodus 0.9.1' }),
        ...['http://jabber.org/protocol/caps', DISCO, 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'].map((v) => xml('feature', { var: v })),
      );
      assert.equal(verificationString(query, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
      query.append(xml('feature', { var: DISCO }));
      assert.equal(verificationString(query, 'sha-1'), undefined);
      assert.deepEqual([...notifyNodes(xml('query', {}, xml('feature', { var: 'a+notify' }), xml('feature', { var: '+notify' })))], ['a']);
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const { login, closeAll } = rawLogins(() => ts.c2sPort);

    before(async () => {
      ts = await startTestServer({
        config: { modules_enabled: ['pep', 'bookmarks', 'private'], pep: { item_size_limit: 2048, max_nodes: 8 } },
        users: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'].map((u) => [`${u}@localhost`, `${u}-pw`] as [string, string]),
      });
      await setRoster(ts, 'alice@localhost', { 'bob@localhost': 'both', 'dave@localhost': 'both', 'erin@localhost': 'both' });
      for (const u of ['bob', 'dave', 'erin']) await setRoster(ts, `${u}@localhost`, { 'alice@localhost': 'both' });
    });
    after(async () => {
      closeAll();
      await ts?.stop();
    });

    let bob: RawClient;
    let dave: RawClient;
    let carol: RawClient;
    let erin: RawClient;
    let alice: RawClient;

    it('notifies a subscribed contact and the account\'s own resources that +notify, and no one else', async () => {
      bob = await login('bob', 'phone');
      bob.send(presenceWithCaps(TUNE.ver));
      await answerCaps(bob, TUNE.features, ['bob@localhost', 'alice@localhost']);
      dave = await login('dave', 'phone');
      dave.send(presenceWithCaps(PLAIN.ver));
      await answerCaps(dave, PLAIN.features, ['dave@localhost', 'alice@localhost']);
      // carol is no contact: even directed presence with +notify caps gets her nothing.
      carol = await login('carol', 'phone');
      carol.send(presenceWithCaps(TUNE.ver, " to='alice@localhost'"));
      alice = await login('alice', 'desk');
      alice.send(presenceWithCaps(TUNE.ver)); // verified already: no query
      await sync(alice, 'p0');

      alice.send(publishIq('pub1', 'urn:xmpp:tune', 't1', tune('One')));
      // The notification and the result may come in either order.
      const upToResult = await alice.waitFor(/^[\s\S]*?<iq type="result" id="pub1"[^>]*><pubsub xmlns="http:\/\/jabber.org\/protocol\/pubsub"><publish node="urn:xmpp:tune"><item id="t1"\/><\/publish><\/pubsub><\/iq>/);
      const event = /<message type="headline" from="alice@localhost" to="[^"]+" id="[^"]+"><event xmlns="http:\/\/jabber.org\/protocol\/pubsub#event"><items node="urn:xmpp:tune"><item id="t1"><tune xmlns="urn:xmpp:tune"><title>One<\/title><\/tune><\/item><\/items><\/event><\/message>/;
      await bob.waitFor(event, 'bob notified');
      if (!event.test(upToResult[0])) await alice.waitFor(event, 'alice\'s own resource notified');
      assert.doesNotMatch(await sync(dave, 'p1'), /pubsub#event/);
      assert.doesNotMatch(await sync(carol, 'p2'), /pubsub#event/);
    });

    it('rejects caps whose disco#info does not hash to their ver: neither cached nor believed', async () => {
      erin = await login('erin', 'phone');
      // erin claims the tune caps but answers with other features (cache poisoning): the answer is refused.
      erin.send(presenceWithCaps(capsOf([DISCO, 'something-else']).ver.replace(/^./, 'X')));
      await answerCaps(erin, [...TUNE.features], ['erin@localhost', 'alice@localhost']);
      await sync(erin, 'e0');
      alice.send(publishIq('pub2', 'urn:xmpp:tune', 't2', tune('Two')));
      await bob.waitFor(/<item id="t2">/, 'bob notified of t2');
      assert.doesNotMatch(await sync(erin, 'e1'), /pubsub#event/);
    });

    it('lets contacts read a presence node, not strangers; open and whitelist nodes as configured', async () => {
      bob.send("<iq type='get' id='i1' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:tune'/></pubsub></iq>");
      await bob.waitFor(/<iq type="result" id="i1"[^>]*><pubsub[^>]*><items node="urn:xmpp:tune"><item id="t2"><tune/, 'max_items 1: only the last');
      carol.send("<iq type='get' id='i2' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:tune'/></pubsub></iq>");
      await carol.waitFor(/id="i2"[^>]*type="error"|type="error"[^>]*id="i2"/);
      await carol.waitFor(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>.*<presence-subscription-required xmlns="http:\/\/jabber.org\/protocol\/pubsub#errors"\/>/);

      alice.send(publishIq('pub3', 'urn:xmpp:mood', 'current', "<mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>", publishOptions({ 'pubsub#access_model': 'open', 'pubsub#max_items': 'max' })));
      await alice.waitFor(/<iq type="result" id="pub3"/);
      carol.send("<iq type='get' id='i3' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:mood'/></pubsub></iq>");
      await carol.waitFor(/<iq type="result" id="i3"[^>]*>.*<item id="current"><mood/);

      alice.send(publishIq('pub4', 'secret', 's1', "<x xmlns='urn:example'/>", publishOptions({ 'pubsub#access_model': 'whitelist' })));
      await alice.waitFor(/<iq type="result" id="pub4"/);
      bob.send("<iq type='get' id='i4' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='secret'/></pubsub></iq>");
      await bob.waitFor(/<iq [^>]*id="i4"[^>]*>.*<not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>.*<closed-node /);
      alice.send("<iq type='get' id='i5'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='secret'/></pubsub></iq>");
      await alice.waitFor(/<iq type="result" id="i5"[^>]*>.*<item id="s1">/);
      // Only the account publishes.
      bob.send(`<iq type='set' id='i6' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:tune'><item>${tune('x')}</item></publish></pubsub></iq>`);
      await bob.waitFor(/<iq [^>]*id="i6"[^>]*>.*<forbidden /);
    });

    it('refuses publish-options an existing node does not match (precondition-not-met)', async () => {
      alice.send(publishIq('po1', 'urn:xmpp:tune', 't3', tune('Three'), publishOptions({ 'pubsub#access_model': 'open' })));
      await alice.waitFor(/<iq [^>]*id="po1"[^>]*>.*<error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>.*<precondition-not-met xmlns="http:\/\/jabber.org\/protocol\/pubsub#errors"\/><\/error>/);
      alice.send(publishIq('po2', 'urn:xmpp:tune', 't3', tune('Three'), publishOptions({ 'pubsub#access_model': 'presence', 'pubsub#persist_items': 'true' })));
      await alice.waitFor(/<iq type="result" id="po2"/);
      alice.send(publishIq('po3', 'n-bad', 'x', tune('x'), publishOptions({ 'pubsub#access_model': 'roster' })));
      await alice.waitFor(/<iq [^>]*id="po3"[^>]*>.*<not-acceptable /);
    });

    it('notifies retractions, purges and deletions', async () => {
      await sync(bob, 'b0');
      alice.send("<iq type='set' id='r1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:tune' notify='true'><item id='t3'/></retract></pubsub></iq>");
      await alice.waitFor(/<iq type="result" id="r1"/);
      await bob.waitFor(/<items node="urn:xmpp:tune"><retract id="t3"\/><\/items>/);
      alice.send("<iq type='set' id='r2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:tune'><item id='t3'/></retract></pubsub></iq>");
      await alice.waitFor(/<iq [^>]*id="r2"[^>]*>.*<item-not-found /);
      alice.send(publishIq('r3', 'urn:xmpp:tune', 't4', tune('Four')));
      await bob.waitFor(/<item id="t4">/);
      alice.send("<iq type='set' id='r4'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='urn:xmpp:tune'/></pubsub></iq>");
      await bob.waitFor(/<event xmlns="http:\/\/jabber.org\/protocol\/pubsub#event"><purge node="urn:xmpp:tune"\/><\/event>/);
      alice.send("<iq type='set' id='r5'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:xmpp:tune'/></pubsub></iq>");
      await bob.waitFor(/<event xmlns="http:\/\/jabber.org\/protocol\/pubsub#event"><delete node="urn:xmpp:tune"\/><\/event>/);
      bob.send("<iq type='get' id='r6' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:tune'/></pubsub></iq>");
      await bob.waitFor(/<iq [^>]*id="r6"[^>]*>.*<item-not-found /);
    });

    it('sends the last item to a contact coming online with +notify caps', async () => {
      alice.send(publishIq('l1', 'urn:xmpp:tune', 't5', tune('Five')));
      await bob.waitFor(/<item id="t5">/);
      const bob2 = await login('bob', 'tablet');
      bob2.send(presenceWithCaps(TUNE.ver)); // cached: no query
      await bob2.waitFor(/<message type="headline" from="alice@localhost" to="bob@localhost\/tablet"[^>]*><event [^>]*><items node="urn:xmpp:tune"><item id="t5">/);
    });

    it('answers disco with the pep identity and lists the nodes the asker may see', async () => {
      carol.send("<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      const info = (await carol.waitFor(/<iq type="result" id="d1"[^>]*>(.*?)<\/iq>/))[1]!;
      assert.match(info, /<identity category="pubsub" type="pep"\/>/);
      for (const f of ['publish', 'auto-create', 'publish-options', 'access-presence']) assert.ok(info.includes(`var="http://jabber.org/protocol/pubsub#${f}"`), f);
      assert.ok(info.includes('urn:xmpp:bookmarks:1#compat'));
      carol.send("<iq type='get' id='d2' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
      const items = (await carol.waitFor(/<iq type="result" id="d2"[^>]*>(.*?)<\/iq>/))[1]!;
      assert.match(items, /node="urn:xmpp:mood"/);
      assert.doesNotMatch(items, /node="(urn:xmpp:tune|secret)"/);
      bob.send("<iq type='get' id='d3' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
      const forBob = (await bob.waitFor(/<iq type="result" id="d3"[^>]*>(.*?)<\/iq>/))[1]!;
      assert.match(forBob, /node="urn:xmpp:tune"/);
      assert.doesNotMatch(forBob, /node="secret"/);
    });

    it('bounds what an attacker can make it keep: item size, node count, malformed requests', async () => {
      const frank = await login('frank', 'x');
      frank.send(publishIq('a1', 'big', 'b', `<big xmlns='urn:example'>${'A'.repeat(4000)}</big>`));
      await frank.waitFor(/<iq [^>]*id="a1"[^>]*>.*<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><text [^>]*>A PEP item payload takes at most 2048 bytes[^<]*<\/text><payload-too-big /);
      for (let i = 0; i < 8; i++) {
        frank.send(publishIq(`n${i}`, `node-${i}`, 'x', "<x xmlns='urn:example'/>"));
        await frank.waitFor(new RegExp(`<iq type="result" id="n${i}"`));
      }
      frank.send(publishIq('n8', 'node-8', 'x', "<x xmlns='urn:example'/>"));
      await frank.waitFor(/<iq [^>]*id="n8"[^>]*>.*<policy-violation [^>]*\/><text [^>]*>An account keeps at most 8 PEP nodes/);
      frank.send("<iq type='set' id='m1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='node-1'/></pubsub></iq>");
      await frank.waitFor(/<iq [^>]*id="m1"[^>]*>.*<bad-request .*<item-required /);
      frank.send("<iq type='set' id='m2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish><item><x xmlns='a'/></item></publish></pubsub></iq>");
      await frank.waitFor(/<iq [^>]*id="m2"[^>]*>.*<nodeid-required /);
      frank.send("<iq type='get' id='m3' to='nobody@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'/></pubsub></iq>");
      await frank.waitFor(/<iq [^>]*id="m3"[^>]*>.*<service-unavailable /);
      frank.send("<iq type='set' id='m4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='x' jid='frank@localhost'/></pubsub></iq>");
      await frank.waitFor(/<iq [^>]*id="m4"[^>]*>.*<feature-not-implemented .*<unsupported [^>]*feature="subscribe"/);
      // Many bogus caps: each asks once, none is cached, the stream stays up.
      for (let i = 0; i < 50; i++) frank.send(presenceWithCaps(`bogus${i}=`));
      await sync(frank, 'm5');
      assert.equal(frank.isClosed, false);
    });

    it('keeps XEP-0048 bookmarks in private XML and XEP-0402 in sync, both ways', async () => {
      const conf = (jid: string, name: string) => `<conference jid='${jid}' name='${name}' autojoin='true'><nick>al</nick></conference>`;
      alice.send(`<iq type='set' id='bm1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>${conf('room@conference.localhost', 'Room')}</storage></query></iq>`);
      await alice.waitFor(/<iq type="result" id="bm1"/);
      // alice's resource +notifies storage:bookmarks: XEP-0048 clients learn of the change too.
      await alice.waitFor(/<items node="storage:bookmarks"><item id="current"><storage xmlns="storage:bookmarks"><conference jid="room@conference.localhost" name="Room" autojoin="true"><nick>al<\/nick><\/conference><\/storage>/);
      alice.send("<iq type='get' id='bm2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>");
      await alice.waitFor(/<iq type="result" id="bm2"[^>]*>.*<item id="room@conference.localhost"><conference xmlns="urn:xmpp:bookmarks:1" name="Room" autojoin="true"><nick>al<\/nick><\/conference><\/item>/);
      // The XEP-0402 node is whitelist: a contact sees nothing.
      bob.send("<iq type='get' id='bm3' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>");
      await bob.waitFor(/<iq [^>]*id="bm3"[^>]*>.*<closed-node /);

      // XEP-0402 publish → private XML and legacy PEP read it.
      alice.send(publishIq('bm4', 'urn:xmpp:bookmarks:1', 'other@conference.localhost', "<conference xmlns='urn:xmpp:bookmarks:1' name='Other'/>", publishOptions({ 'pubsub#access_model': 'whitelist', 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never' })));
      await alice.waitFor(/<iq type="result" id="bm4"/);
      alice.send("<iq type='get' id='bm5'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
      await alice.waitFor(/<iq type="result" id="bm5"[^>]*><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"><conference jid="room@conference.localhost"[^>]*>.*<\/conference><conference jid="other@conference.localhost" name="Other"\/><\/storage>/);
      alice.send("<iq type='get' id='bm6'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='storage:bookmarks'/></pubsub></iq>");
      await alice.waitFor(/<iq type="result" id="bm6"[^>]*>.*<items node="storage:bookmarks"><item id="current"><storage xmlns="storage:bookmarks">.*other@conference.localhost/);

      // Legacy PEP publish replaces the list: room goes (retracted), other stays.
      alice.send(`<iq type='set' id='bm7'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'>${conf('other@conference.localhost', 'Other')}</storage></item></publish></pubsub></iq>`);
      await alice.waitFor(/<iq type="result" id="bm7"/);
      alice.send("<iq type='get' id='bm8'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>");
      const m = await alice.waitFor(/<iq type="result" id="bm8"[^>]*>(.*?)<\/iq>/);
      assert.doesNotMatch(m[1]!, /room@conference/);
      assert.match(m[1]!, /<item id="other@conference.localhost"><conference xmlns="urn:xmpp:bookmarks:1" name="Other" autojoin="true"><nick>al<\/nick><\/conference><\/item>/);
      // Other private XML still goes to private storage.
      alice.send("<iq type='set' id='bm9'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><a/></prefs></query></iq>");
      await alice.waitFor(/<iq type="result" id="bm9"/);
      alice.send("<iq type='set' id='bm10'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='not a jid'/></storage></query></iq>");
      await alice.waitFor(/<iq [^>]*id="bm10"[^>]*>.*<bad-request /);
    });

    it('deleting an account deletes its nodes and items, kept in memory too: the same name starts with none', async () => {
      const gina = await login('gina', 'x');
      gina.send(publishIq('g1', 'kept', 'k1', "<x xmlns='urn:example'>old</x>"));
      await gina.waitFor(/<iq type="result" id="g1"/);
      gina.send(publishIq('g2', 'fleeting', 'v1', "<x xmlns='urn:example'>old</x>", publishOptions({ 'pubsub#persist_items': 'false', 'pubsub#max_items': 'max' })));
      await gina.waitFor(/<iq type="result" id="g2"/);

      await ts.server.users.delete('gina@localhost');
      await ts.server.users.create('gina@localhost', 'gina-pw');
      const again = await login('gina', 'y');
      again.send("<iq type='get' id='g3'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
      assert.match((await again.waitFor(/<iq type="result" id="g3"[^>]*>(.*?)<\/iq>|<iq type="result" id="g3"[^>]*\/>/))[0], /^<iq type="result" id="g3"[^>]*(\/>|><query [^>]*\/><\/iq>|><query [^>]*><\/query><\/iq>)$/, 'no nodes');
      again.send("<iq type='get' id='g4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='kept'/></pubsub></iq>");
      await again.waitFor(/<iq [^>]*id="g4"[^>]*>.*<item-not-found /);
      // The same node made again keeps its items in memory: the old account's last item does not come back.
      const config = "<configure><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#persist_items'><value>0</value></field></x></configure>";
      again.send(`<iq type='set' id='g5'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='fleeting'/>${config}</pubsub></iq>`);
      await again.waitFor(/<iq type="result" id="g5"/);
      again.send("<iq type='get' id='g6'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='fleeting'/></pubsub></iq>");
      const items = (await again.waitFor(/<iq type="result" id="g6"[^>]*(\/>|>(.*?)<\/iq>)/))[0];
      assert.doesNotMatch(items, /<item /);
    });
  });
});
