// A remote entity is never a local account (RFC 6120 §8.1.2.1, §13.7.2.3): iqs a remote user sends over s2s to
// our server or to one of our accounts get what Prosody gives a stranger (service-unavailable or forbidden; a vCard
// can be read) and write nothing to any store. Also: with `modules_disabled: [s2s]` there is no s2s listener and a
// stanza for another server bounces remote-server-not-found at once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { RawClient } from '../host/c2s/helpers.js';
import { federatedServer, login } from '../helpers/s2s.js';



let nextId = 0;

/** Send an iq and wait for the answer with its id: its type, the error condition if any, and its text. */
async function ask(client: RawClient, to: string, type: 'get' | 'set', payload: string): Promise<{ type: string; condition: string | undefined; text: string }> {
  const id = `q${++nextId}`;
  client.send(`<iq to='${to}' type='${type}' id='${id}'>${payload}</iq>`);
  const m = await client.waitFor(new RegExp(`<iq\\b[^>]*\\bid=["']${id}["'][^>]*?(?:/>|>[\\s\\S]*?</iq>)`), `the answer to ${id} (${payload.slice(0, 60)})`);
  const text = m[0];
  const answerType = /\btype=["']([a-z]+)["']/.exec(text)?.[1] ?? '';
  const condition = /<([a-z-]+) xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/.exec(text)?.[1];
  return { type: answerType, condition, text };
}

const PRIVATE_SET = "<query xmlns='jabber:iq:private'><note xmlns='x:notes'>from far away</note></query>";
const PRIVATE_GET = "<query xmlns='jabber:iq:private'><note xmlns='x:notes'/></query>";
const ROSTER_SET = "<query xmlns='jabber:iq:roster'><item jid='mallory@a.test' name='friend'/></query>";
const ROSTER_GET = "<query xmlns='jabber:iq:roster'/>";
const BLOCK = "<block xmlns='urn:xmpp:blocking'><item jid='alice@a.test'/></block>";
const BLOCKLIST = "<blocklist xmlns='urn:xmpp:blocking'/>";
const VCARD_SET = "<vCard xmlns='vcard-temp'><FN>Not Bob</FN></vCard>";
const VCARD_GET = "<vCard xmlns='vcard-temp'/>";
const MAM_QUERY = "<query xmlns='urn:xmpp:mam:2' queryid='x'/>";
const CARBONS = "<enable xmlns='urn:xmpp:carbons:2'/>";
const LAST = "<query xmlns='jabber:iq:last'/>";

const MODULES = ['carbons', 'mam', 'private', 'blocklist', 'vcard_legacy', 'lastactivity'];

const federated = (domain: string, dns: TestDns): Promise<TestServer> => federatedServer(domain, dns, { modules_enabled: MODULES });

/** Every per-account row of the server's stores (key-value, map and archive), as `store user`. */
function storedRows(ts: TestServer): string[] {
  const db = new Database(join(ts.dataDir, 'xmppd.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const rows = [
      ...(db.prepare('SELECT store, user FROM keyval').all() as Array<{ store: string; user: string }>),
      ...(db.prepare('SELECT store, user FROM keymap').all() as Array<{ store: string; user: string }>),
      ...(db.prepare('SELECT store, user FROM archive').all() as Array<{ store: string; user: string }>),
    ];
    return rows.map((r) => `${r.store} ${r.user}`).sort();
  } finally {
    db.close();
  }
}

describe('s2s: a remote entity is not a local account', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  let alice: RawClient;
  const clients: RawClient[] = [];

  before(async () => {
    dns = await startTestDns();
    a = await federated('a.test', dns);
    b = await federated('b.test', dns);
    alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
  });

  after(async () => {
    for (const c of clients) c.close();
    await a?.stop();
    await b?.stop();
    await dns?.close();
  });

  const cases: Array<{ what: string; to: string; type: 'get' | 'set'; payload: string; expect: string }> = [
    { what: 'private storage set on the remote server', to: 'b.test', type: 'set', payload: PRIVATE_SET, expect: 'service-unavailable' },
    { what: 'private storage get on the remote server', to: 'b.test', type: 'get', payload: PRIVATE_GET, expect: 'service-unavailable' },
    { what: 'private storage set on a remote account', to: 'bob@b.test', type: 'set', payload: PRIVATE_SET, expect: 'forbidden' },
    { what: 'private storage get on a remote account', to: 'bob@b.test', type: 'get', payload: PRIVATE_GET, expect: 'forbidden' },
    { what: 'roster set on the remote server', to: 'b.test', type: 'set', payload: ROSTER_SET, expect: 'service-unavailable' },
    { what: 'roster get on the remote server', to: 'b.test', type: 'get', payload: ROSTER_GET, expect: 'service-unavailable' },
    { what: 'roster set on a remote account', to: 'bob@b.test', type: 'set', payload: ROSTER_SET, expect: 'service-unavailable' },
    { what: 'roster get on a remote account', to: 'bob@b.test', type: 'get', payload: ROSTER_GET, expect: 'service-unavailable' },
    { what: 'block on the remote server', to: 'b.test', type: 'set', payload: BLOCK, expect: 'service-unavailable' },
    { what: 'block on a remote account', to: 'bob@b.test', type: 'set', payload: BLOCK, expect: 'service-unavailable' },
    { what: 'blocklist of a remote account', to: 'bob@b.test', type: 'get', payload: BLOCKLIST, expect: 'service-unavailable' },
    { what: 'vCard set on the remote server', to: 'b.test', type: 'set', payload: VCARD_SET, expect: 'service-unavailable' },
    { what: 'vCard set on a remote account', to: 'bob@b.test', type: 'set', payload: VCARD_SET, expect: 'forbidden' },
    { what: 'archive query on the remote server', to: 'b.test', type: 'set', payload: MAM_QUERY, expect: 'service-unavailable' },
    { what: 'archive query on a remote account', to: 'bob@b.test', type: 'set', payload: MAM_QUERY, expect: 'forbidden' },
    { what: 'carbons on the remote server', to: 'b.test', type: 'set', payload: CARBONS, expect: 'service-unavailable' },
    { what: 'last activity of a remote account it is not subscribed to', to: 'bob@b.test', type: 'get', payload: LAST, expect: 'forbidden' },
  ];

  for (const c of cases) {
    it(`refuses ${c.what}: ${c.expect}`, async () => {
      const answer = await ask(alice, c.to, c.type, c.payload);
      assert.equal(answer.type, 'error', answer.text);
      assert.equal(answer.condition, c.expect, answer.text);
    });
  }

  it('answers a vCard get on a remote account, as for any stranger', async () => {
    const answer = await ask(alice, 'bob@b.test', 'get', VCARD_GET);
    assert.equal(answer.type, 'result', answer.text);
    assert.match(answer.text, /<vCard xmlns=["']vcard-temp["']/);
    assert.doesNotMatch(answer.text, /Not Bob/);
  });

  it('stored nothing on the remote server for the remote user or for the account it addressed', () => {
    const rows = storedRows(b);
    assert.deepEqual(rows.filter((r) => r.includes('a.test')), [], 'nothing in the name of alice@a.test');
    assert.deepEqual(rows.filter((r) => r.endsWith(' bob@b.test')), [], 'nothing written for bob@b.test');
  });

  it('leaves the addressed account\'s own view untouched', async () => {
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(bob);
    const privateData = await ask(bob, 'bob@b.test', 'get', PRIVATE_GET);
    assert.equal(privateData.type, 'result', privateData.text);
    assert.doesNotMatch(privateData.text, /far away/);
    const roster = await ask(bob, 'bob@b.test', 'get', ROSTER_GET);
    assert.doesNotMatch(roster.text, /mallory/);
    const blocklist = await ask(bob, 'bob@b.test', 'get', BLOCKLIST);
    assert.equal(blocklist.type, 'result', blocklist.text);
    assert.doesNotMatch(blocklist.text, /<item/);
    const vcard = await ask(bob, 'bob@b.test', 'get', VCARD_GET);
    assert.doesNotMatch(vcard.text, /Not Bob/);
  });
});

describe('s2s disabled (modules_disabled: [s2s])', () => {
  let ts: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    ts = await startTestServer({
      config: { virtual_hosts: { 'a.test': {} }, http_default_host: 'a.test', modules_enabled: [], modules_disabled: ['s2s'], s2s_ports: [0], s2s_interfaces: ['127.0.0.1'] },
      users: [['alice@a.test', 'alice-pw']],
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    await ts?.stop();
  });

  it('opens no s2s listener', () => {
    assert.deepEqual(ts.server.ports.ports('s2s'), []);
    assert.deepEqual(ts.server.ports.ports('s2s_direct_tls'), []);
    assert.ok(!ts.logText().includes('s2s listening'), 'no s2s listener was logged');
  });

  it('bounces a stanza for another server remote-server-not-found at once', async () => {
    const alice = await login(ts.c2sPort, 'a.test', 'alice', 'alice-pw');
    clients.push(alice);
    const started = Date.now();
    alice.send("<message to='bob@b.test' type='chat' id='m1'><body>anyone?</body></message>");
    const m = await alice.waitFor(/<message[^>]*type=["']error["'][^>]*>.*?<\/message>/s, 'the bounce');
    assert.match(m[0], /remote-server-not-found/);
    assert.match(m[0], /server-to-server routing is not enabled/);
    assert.ok(Date.now() - started < 1000, 'without trying to connect');
  });
});
