// Small services: XEP-0199 ping, XEP-0030 disco#info/#items on the server and on accounts, iq delivery to
// full JIDs, and service-unavailable for what nobody handles.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';

describe('ping, disco and iq modules', () => {
  let ts: TestServer;
  let alice: RawClient;
  let bob: RawClient;

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']] });
    ({ raw: alice } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'a'));
    ({ raw: bob } = await rawLogin(ts.c2sPort, 'bob', 'bob-pw', 'b'));
  });

  after(async () => {
    alice?.close();
    bob?.close();
    await ts?.stop();
  });

  it('answers a ping to the server, and one without a to (XEP-0199)', async () => {
    alice.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/<iq type="result" id="p1" to="alice@localhost\/a" from="localhost"\/>/);
    alice.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/<iq type="result" id="p2" to="alice@localhost\/a"\/>/);
  });

  it('lists the server identity and every module feature (XEP-0030)', async () => {
    alice.send(`<iq type='get' id='d1' to='localhost'><query xmlns='${INFO}'/></iq>`);
    const [reply] = await alice.waitFor(/<iq type="result" id="d1".*?<\/iq>/s);
    assert.match(reply, /<identity category="server" type="im" name="xmppd"\/>/);
    for (const f of [INFO, ITEMS, 'urn:xmpp:ping', 'msgoffline']) assert.ok(reply.includes(`<feature var="${f}"/>`), f);
  });

  it('answers an unknown node with item-not-found', async () => {
    alice.send(`<iq type='get' id='d2' to='localhost'><query xmlns='${INFO}' node='nope'/></iq>`);
    await alice.waitFor(/<iq type="error" id="d2"[^>]*>.*?<item-not-found /s);
  });

  it('answers empty disco#items for the server', async () => {
    alice.send(`<iq type='get' id='d3' to='localhost'><query xmlns='${ITEMS}'/></iq>`);
    await alice.waitFor(/<iq type="result" id="d3"[^>]*><query xmlns="http:\/\/jabber.org\/protocol\/disco#items"\/><\/iq>/);
  });

  it('answers disco#info for an account, and service-unavailable for an unknown one', async () => {
    alice.send(`<iq type='get' id='d4' to='bob@localhost'><query xmlns='${INFO}'/></iq>`);
    const [reply] = await alice.waitFor(/<iq type="result" id="d4".*?<\/iq>/s);
    assert.match(reply, /<identity category="account" type="registered"\/>/);
    alice.send(`<iq type='get' id='d5' to='ghost@localhost'><query xmlns='${INFO}'/></iq>`);
    await alice.waitFor(/<iq type="error" id="d5"[^>]*>.*?<service-unavailable /s);
    alice.send(`<iq type='get' id='d6' to='bob@localhost'><query xmlns='${ITEMS}'/></iq>`);
    await alice.waitFor(/<iq type="result" id="d6"/);
  });

  it('passes an iq to a full JID to that resource, and its result back', async () => {
    alice.send("<iq type='get' id='v1' to='bob@localhost/b'><query xmlns='jabber:iq:version'/></iq>");
    await bob.waitFor(/<iq type="get" id="v1" to="bob@localhost\/b" from="alice@localhost\/a">/, 'the iq at bob');
    bob.send("<iq type='result' id='v1' to='alice@localhost/a'><query xmlns='jabber:iq:version'><name>x</name></query></iq>");
    await alice.waitFor(/<iq type="result" id="v1" to="alice@localhost\/a" from="bob@localhost\/b">/, 'the result at alice');
  });

  it('answers an iq to a resource that is not online with service-unavailable', async () => {
    alice.send("<iq type='get' id='v2' to='bob@localhost/gone'><query xmlns='jabber:iq:version'/></iq>");
    await alice.waitFor(/<iq type="error" id="v2"[^>]*>.*?<service-unavailable /s);
  });

  it('answers an unhandled iq set with service-unavailable and keeps the stream', async () => {
    alice.send("<iq type='set' id='u1' to='localhost'><thing xmlns='urn:example:unknown'/></iq>");
    await alice.waitFor(/<iq type="error" id="u1"[^>]*>.*?<service-unavailable /s);
    alice.send("<iq type='get' id='p3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/<iq type="result" id="p3"/);
  });
});
