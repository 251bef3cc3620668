// post_msg.md §13 end to end: one JSON request to a local account, a room of the muc component and an account on
// another xmppd (s2s through the loopback DNS): 201 and each gets it; a forbidden room in the list: 403, nothing sent.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Client } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { goOnline, nextStanza, RawClient, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';
import { login } from '../helpers/s2s.js';

type Stanza = ReturnType<typeof xml>;
const OPEN_ROOM = 'ops@conference.localhost';
const CLOSED_ROOM = 'staff@conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';


/** alice creates a room and configures it with these muc#roomconfig fields (XEP-0045 §10.1.3). */
async function createRoom(alice: Client, room: string, fields: Record<string, string>): Promise<void> {
  const entered = nextStanza(alice, (el) => el.is('presence') && el.attrs.from === `${room}/alice`, `alice in ${room}`);
  await alice.send(xml('presence', { to: `${room}/alice` }, xml('x', { xmlns: MUC })));
  await entered;
  const form = xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#roomconfig')),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
  await alice.iqCaller.request(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: `${MUC}#owner` }, form)));
}

describe('post_msg several recipients: a local account, a room and another server (§13)', () => {
  let dns: TestDns;
  let ts: TestServer;
  let remote: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  const aliceMessages: Stanza[] = [];
  let carol: RawClient;
  let dave: RawClient;

  const post = async (body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${ts.httpUrl}/msg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('bob:secret').toString('base64')}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    restoreTls = trustTestCertificate();
    dns = await startTestDns();
    const s2s = { s2s_ports: [0], s2s_interfaces: ['127.0.0.1'], dns_servers: [dns.address] };
    ts = await startTestServer({
      config: { ...s2s, modules_enabled: ['post_msg'], components: { 'conference.localhost': { module: 'muc' } } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret'], ['carol@localhost', 'carol-pw']],
    });
    remote = await startTestServer({
      config: { ...s2s, virtual_hosts: { 'example.net': {} }, http_default_host: 'example.net' },
      users: [['dave@example.net', 'dave-pw']],
    });
    for (const [domain, server] of [['localhost', ts], ['example.net', remote]] as const) {
      dns.srv(`_xmpp-server._tcp.${domain}`, [{ target: `xmpp.${domain}`, port: server.server.ports.ports('s2s')[0]! }]);
      dns.a(`xmpp.${domain}`, ['127.0.0.1']);
    }
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-pw' });
    await goOnline(alice, 'alice');
    await createRoom(alice, OPEN_ROOM, {});
    // bob is not a member: the room refuses his post (members-only).
    await createRoom(alice, CLOSED_ROOM, { 'muc#roomconfig_membersonly': '1' });
    await new Promise((r) => setTimeout(r, 200));
    alice.on('stanza', (el: Stanza) => {
      if (el.is('message') && el.attrs.type === 'groupchat' && el.getChild('body')) aliceMessages.push(el);
    });
    carol = await login(ts.c2sPort, 'localhost', 'carol', 'carol-pw');
    dave = await login(remote.c2sPort, 'example.net', 'dave', 'dave-pw');
  });

  after(async () => {
    carol?.close();
    dave?.close();
    if (alice) await stopClient(alice);
    await ts?.stop();
    await remote?.stop();
    await dns?.close();
    restoreTls?.();
  });

  it('a forbidden room in the list: 403 naming it, and nothing sent to the local account, the room or the remote one', async () => {
    const res = await post({ to: ['carol', OPEN_ROOM, 'dave@example.net', CLOSED_ROOM], body: 'must not arrive' });
    assert.equal(res.status, 403, JSON.stringify(res.json));
    assert.match(String(res.json.detail), /staff@conference\.localhost/);
    assert.match(String(res.json.detail), /members-only/);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.doesNotMatch(carol.text, /must not arrive/);
    assert.doesNotMatch(dave.text, /must not arrive/);
    assert.equal(aliceMessages.length, 0, 'nothing posted to the open room');
  });

  it('201 with {"messages"} in request order, and the account, the room and the remote account each get it', async () => {
    const res = await post({ to: ['carol', OPEN_ROOM, 'dave@example.net'], body: 'to all three' });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const messages = res.json.messages as Array<{ id: string; to: string; outcome: string }>;
    assert.deepEqual(messages.map((m) => m.to), ['carol@localhost', OPEN_ROOM, 'dave@example.net']);
    assert.equal(messages[1]!.outcome, 'posted');
    assert.equal(messages[2]!.outcome, 'sent');
    assert.equal(new Set(messages.map((m) => m.id)).size, 3);
    await carol.waitFor(/<message[^>]*from=["']bob@localhost["'][^>]*>.*?to all three/s, 'carol gets it');
    await dave.waitFor(/<message[^>]*from=["']bob@localhost["'][^>]*>.*?to all three/s, 'dave on example.net gets it');
    const until = Date.now() + 5_000;
    while (aliceMessages.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.equal(aliceMessages.length, 1, 'the room got it once');
    assert.equal(aliceMessages[0]!.attrs.from, `${OPEN_ROOM}/bob`);
    assert.equal(aliceMessages[0]!.getChildText('body'), 'to all three');
  });
});
