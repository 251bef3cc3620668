// carbons (XEP-0280) through real c2s sessions: received and sent copies to the account's other carbons-enabled
// resources, the private and no-copy hints, post_msg's messages copied as sent, and disable.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';
import { basic, request } from '../../post_msg/helpers/http.js';

/** Wait for `marker` (a regex source) and return everything received before it, to check what did not come. */
async function before_(raw: RawClient, marker: string, what: string): Promise<string> {
  const m = await raw.waitFor(new RegExp(`([\\s\\S]*?)${marker}`), what);
  return m[1]!;
}

async function online(port: number, user: string, resource: string, priority: number): Promise<RawClient> {
  const { raw } = await rawLogin(port, user, `${user}-pw`, resource);
  raw.send(`<presence><priority>${priority}</priority></presence>`);
  await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), `${user}/${resource} own presence`);
  return raw;
}

async function enable(raw: RawClient, id: string, on = true): Promise<void> {
  raw.send(`<iq type='set' id='${id}'><${on ? 'enable' : 'disable'} xmlns='urn:xmpp:carbons:2'/></iq>`);
  await raw.waitFor(new RegExp(`<iq [^>]*type="result"[^>]*id="${id}"|<iq [^>]*id="${id}"[^>]*type="result"`), `result of ${id}`);
}

describe('carbons', () => {
  let ts: TestServer;
  let a: RawClient;
  let b: RawClient;
  let c: RawClient;
  let bob: RawClient;

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['post_msg', 'carbons'] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']] });
    // a is alice's top resource; b enables carbons; c does not.
    a = await online(ts.c2sPort, 'alice', 'a', 5);
    b = await online(ts.c2sPort, 'alice', 'b', 1);
    c = await online(ts.c2sPort, 'alice', 'c', 1);
    bob = await online(ts.c2sPort, 'bob', 'x', 0);
    await enable(a, 'ea');
    await enable(b, 'eb');
  });

  after(async () => {
    for (const r of [a, b, c, bob]) r?.close();
    await ts?.stop();
  });

  it('announces urn:xmpp:carbons:2 on the server', async () => {
    bob.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const m = await bob.waitFor(/<iq [^>]*id="d1"[\s\S]*?<\/iq>/, 'disco#info result');
    assert.match(m[0], /<feature var="urn:xmpp:carbons:2"\/>/);
  });

  it('copies a chat to the bare JID as received to the other enabled resources, not to the top one or a non-enabled one', async () => {
    bob.send("<message to='alice@localhost' type='chat' id='r1'><body>hi alice</body></message>");
    const atA1 = await before_(a, '<message [^>]*id="r1"[^>]*><body>hi alice</body></message>', 'the message itself at a');
    const m = await b.waitFor(/<message [^>]*><received [\s\S]*?<\/received><\/message>/, 'the received carbon at b');
    const whole = m[0];
    assert.match(whole, /^<message from="alice@localhost" type="chat" to="alice@localhost\/b">/);
    assert.match(whole, /<received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message [^>]*xmlns="jabber:client"/);
    assert.match(whole, /from="bob@localhost\/x"/);
    assert.match(whole, /id="r1"/);
    // A full-JID chat to a: b gets a copy; a never gets a copy of what it received itself.
    bob.send("<message to='alice@localhost/a' type='chat' id='r2'><body>to a</body></message>");
    await b.waitFor(/<received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message [^>]*id="r2"/, 'carbon of r2 at b');
    const atA = await before_(a, '<message [^>]*id="r2"[^>]*><body>to a</body></message>', 'r2 at a');
    assert.doesNotMatch(atA1 + atA, /carbons/);
    // c never enabled carbons; bob's marker message shows nothing came before it.
    bob.send("<message to='alice@localhost/c' type='chat' id='r3'><body>marker</body></message>");
    assert.doesNotMatch(await before_(c, 'id="r3"', 'marker at c'), /carbons:2/);
  });

  it('copies what a resource sends as sent to the other enabled resources, from the bare JID', async () => {
    a.send("<message to='bob@localhost' type='chat' id='s1'><body>hi bob</body></message>");
    await bob.waitFor(/id="s1"/, 's1 at bob');
    const m = await b.waitFor(/<message [^>]*><sent xmlns="urn:xmpp:carbons:2">[\s\S]*?<\/sent><\/message>/, 'sent carbon at b');
    assert.match(m[0], /^<message from="alice@localhost" type="chat" to="alice@localhost\/b"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message /);
    assert.match(m[0], /from="alice@localhost\/a"/);
    assert.match(m[0], /to="bob@localhost"/);
    // Nothing back to the sender: its next incoming message comes with nothing before it.
    bob.send("<message to='alice@localhost/a' type='chat' id='s2'><body>marker</body></message>");
    assert.doesNotMatch(await before_(a, 'id="s2"', 'marker at a'), /<sent /);
  });

  it('copies normal messages with a body, not headlines, groupchat, bodiless normal ones or carbons themselves', async () => {
    a.send("<message to='bob@localhost' id='n1'><body>normal</body></message>");
    await b.waitFor(/<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message [^>]*id="n1"/, 'carbon of a normal message with body');
    a.send("<message to='bob@localhost' type='headline' id='n2'><body>headline</body></message>");
    a.send("<message to='bob@localhost' id='n3'><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
    // A forged carbon from bob is delivered as it is, never copied again.
    bob.send("<message to='alice@localhost' type='chat' id='n4'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='eve@localhost' to='alice@localhost' type='chat'><body>forged</body></message></forwarded></received></message>");
    await a.waitFor(/id="n4"/, 'the forged one at a');
    a.send("<message to='bob@localhost' type='chat' id='n5'><body>marker</body></message>");
    const seen = await before_(b, '<message [^>]*id="n5"', 'marker carbon at b');
    assert.doesNotMatch(seen, /id="n2"|id="n3"|id="n4"|forged/);
  });

  it('respects <private/> (and strips it on delivery) and the no-copy hint, in both directions', async () => {
    a.send("<message to='bob@localhost' type='chat' id='p1'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>");
    a.send("<message to='bob@localhost' type='chat' id='p2'><body>secret</body><no-copy xmlns='urn:xmpp:hints'/></message>");
    bob.send("<message to='alice@localhost/a' type='chat' id='p3'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>");
    bob.send("<message to='alice@localhost' type='chat' id='p4'><body>secret</body><no-copy xmlns='urn:xmpp:hints'/></message>");
    const atA = await a.waitFor(/<message [^>]*id="p3"[\s\S]*?<\/message>/, 'p3 at a');
    assert.doesNotMatch(atA[0], /private/);
    await a.waitFor(/id="p4"/, 'p4 at a');
    bob.send("<message to='alice@localhost' type='chat' id='p5'><body>marker</body></message>");
    const seen = await before_(b, '<message [^>]*id="p5"', 'marker carbon at b');
    assert.doesNotMatch(seen, /secret/);
  });

  it("copies post_msg's message as sent by the account to all its enabled resources", async () => {
    const res = await request(`${ts.httpUrl}/msg/bob`, { headers: { Authorization: basic('alice@localhost', 'alice-pw'), 'Content-Type': 'text/plain' }, body: 'disk full on db1' });
    assert.equal(res.status, 201, res.text);
    await bob.waitFor(/disk full on db1/, 'the alert at bob');
    for (const [raw, who] of [[a, 'a'], [b, 'b']] as const) {
      const m = await raw.waitFor(/<message from="alice@localhost" type="chat" to="alice@localhost\/([ab])"><sent xmlns="urn:xmpp:carbons:2">([\s\S]*?)<\/sent><\/message>/, `sent carbon at ${who}`);
      assert.equal(m[1], who);
      assert.match(m[2]!, /^<forwarded xmlns="urn:xmpp:forward:0"><message from="alice@localhost" to="bob@localhost" type="chat" id="[^"]+" xmlns="jabber:client"><body>disk full on db1<\/body><\/message><\/forwarded>$/);
    }
  });

  it('stops the copies after disable', async () => {
    await enable(b, 'db', false);
    bob.send("<message to='alice@localhost' type='chat' id='x1'><body>after disable</body></message>");
    await a.waitFor(/id="x1"/, 'x1 at a');
    bob.send("<message to='alice@localhost/b' type='chat' id='x2'><body>marker</body></message>");
    assert.doesNotMatch(await before_(b, '<message [^>]*id="x2"', 'marker at b'), /after disable/);
  });
});
