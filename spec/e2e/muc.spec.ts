// post_msg into rooms (post_msg.md §10) on a real server with the muc component and mam: every row of the section
// (201 posted to every occupant with no presence, history, archive; nick from the field, the registration, the
// localpart or the occupant; 403 per rule; 409; 404; 422), and slixmpp's XEP-0045 plugin as owner and members.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PYTHON, pythonModule, requires } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { rawLogin, type RawClient } from '../host/c2s/helpers.js';
import { basic, request, type SpecResponse } from '../post_msg/helpers/http.js';

const SVC = 'conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';
const OWNER = 'http://jabber.org/protocol/muc#owner';
const ADMIN = 'http://jabber.org/protocol/muc#admin';
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;
type User = (typeof USERS)[number];

const roomConfig = (fields: Record<string, string>): string =>
  `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>${Object.entries(fields)
    .map(([k, v]) => `<field var='muc#roomconfig_${k}'><value>${v}</value></field>`)
    .join('')}</x>`;

describe('post_msg into rooms (§10)', () => {
  let ts: TestServer;
  const c = {} as Record<User, RawClient>;
  let n = 0;

  const post = (user: User, to: string, fields: Record<string, string>): Promise<SpecResponse> =>
    request(`${ts.httpUrl}/msg/${encodeURIComponent(to)}`, {
      headers: { Authorization: basic(`${user}@localhost`, `${user}-pw`), 'Content-Type': 'application/json' },
      body: JSON.stringify(fields),
    });
  const iq = async (who: User, to: string, type: string, payload: string): Promise<string> => {
    const id = `e${++n}`;
    c[who].send(`<iq type='${type}' id='${id}' to='${to}'>${payload}</iq>`);
    const m = await c[who].waitFor(new RegExp(`<iq (?=[^>]*id="${id}")[^>]*(?:/>|>.*?</iq>)`, 's'));
    assert.match(m[0], /type="result"/, m[0]);
    return m[0];
  };
  const enter = async (who: User, room: string, nick: string = who, extra = ''): Promise<void> => {
    c[who].send(`<presence to='${room}@${SVC}/${nick}'><x xmlns='${MUC}'>${extra}</x></presence>`);
    await c[who].waitFor(new RegExp(`<message [^>]*from="${room}@${SVC}[^"]*"[^>]*><subject`), `${who} in ${room}`);
  };
  /** alice creates `room`, configured with `fields`. */
  const create = async (room: string, fields: Record<string, string> = {}): Promise<void> => {
    await enter('alice', room);
    await iq('alice', `${room}@${SVC}`, 'set', `<query xmlns='${OWNER}'>${roomConfig(fields)}</query>`);
  };
  const setAffiliation = (room: string, jid: string, affiliation: string) =>
    iq('alice', `${room}@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item affiliation='${affiliation}' jid='${jid}'/></query>`);

  before(async () => {
    ts = await startTestServer({
      config: { s2s_ports: [], modules_enabled: ['post_msg', 'mam'], components: { [SVC]: { module: 'muc' } } },
      users: USERS.map((u) => [`${u}@localhost`, `${u}-pw`] as [string, string]),
    });
    for (const u of USERS) {
      c[u] = (await rawLogin(ts.c2sPort, u, `${u}-pw`, 'r')).raw;
      c[u].send('<presence/>');
      await c[u].waitFor(/<presence[^>]*>/);
    }
    await create('ops', { persistentroom: '1' });
    await enter('bob', 'ops');
  });
  after(async () => {
    for (const u of USERS) c[u]?.close();
    await ts?.stop();
  });

  it('posts as the account under its localpart: 201 posted, the message in every occupant\'s stream, no presence', async () => {
    const res = await post('carol', `ops@${SVC}`, { body: 'db1 is down' });
    assert.equal(res.status, 201, res.text);
    const answer = res.json();
    assert.equal(answer.outcome, 'posted');
    assert.equal(answer.to, `ops@${SVC}`);
    assert.equal(typeof answer.id, 'string');
    for (const u of ['alice', 'bob'] as const) {
      const m = await c[u].waitFor(/<message [^>]*from="ops@conference.localhost\/carol"[^>]*>.*?<\/message>/s);
      assert.match(m[0], /type="groupchat"/);
      assert.match(m[0], /<body>db1 is down<\/body>/);
      assert.match(m[0], new RegExp(`id="${answer.id as string}"`));
      assert.doesNotMatch(m.input.slice(0, m.index), /<presence[^>]*from="ops@conference.localhost\/carol"/);
    }
    // Nothing of carol's nick is an occupant afterwards: a self-ping from her would be not-acceptable; disco items show two.
    const items = await iq('alice', `ops@${SVC}`, 'get', "<query xmlns='http://jabber.org/protocol/disco#items'/>");
    assert.doesNotMatch(items, /ops@conference.localhost\/carol/);
  });

  it('keeps the post in the history a newcomer gets and in the room archive (XEP-0313)', async () => {
    c.dave.send(`<presence to='ops@${SVC}/dave'><x xmlns='${MUC}'/></presence>`);
    const h = await c.dave.waitFor(/<message [^>]*from="ops@conference.localhost\/carol"[^>]*>.*?<\/message>/s);
    assert.match(h[0], /<body>db1 is down<\/body>/);
    assert.match(h[0], /<delay xmlns="urn:xmpp:delay"/);
    await c.dave.waitFor(/<subject/);
    c.dave.send(`<iq type='set' id='mam1' to='ops@${SVC}'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>`);
    const r = await c.dave.waitFor(/<message [^>]*from="ops@conference.localhost"[^>]*><result xmlns="urn:xmpp:mam:2" queryid="q1"[^>]*>.*?<\/message>/s);
    assert.match(r[0], /<body>db1 is down<\/body>/);
    await c.dave.waitFor(/<iq (?=[^>]*id="mam1")(?=[^>]*type="result")[^>]*>.*?<fin xmlns="urn:xmpp:mam:2"/s);
  });

  it('uses the nick field when given', async () => {
    const res = await post('erin', `ops@${SVC}`, { body: 'as ci', nick: 'ci-bot' });
    assert.equal(res.status, 201, res.text);
    await c.bob.waitFor(/<message [^>]*from="ops@conference.localhost\/ci-bot"[^>]*>.*?<body>as ci<\/body>/s);
  });

  it('uses the nick the account registered (§7.10) when no nick is given', async () => {
    await iq('erin', `ops@${SVC}`, 'set', "<query xmlns='jabber:iq:register'><username>Erin E</username></query>");
    const res = await post('erin', `ops@${SVC}`, { body: 'registered' });
    assert.equal(res.status, 201, res.text);
    await c.bob.waitFor(/<message [^>]*from="ops@conference.localhost\/Erin E"[^>]*>.*?<body>registered<\/body>/s);
  });

  it('uses the nick of the account\'s occupant, and 409 for another nick', async () => {
    const res = await post('bob', `ops@${SVC}`, { body: 'from my client\'s nick' });
    assert.equal(res.status, 201, res.text);
    await c.alice.waitFor(/<message [^>]*from="ops@conference.localhost\/bob"[^>]*>.*?<body>from my client's nick<\/body>/s);
    const other = await post('bob', `ops@${SVC}`, { body: 'x', nick: 'robert' });
    assert.equal(other.status, 409, other.text);
    assert.match(other.json<{ detail: string }>().detail, /in the room as bob/);
  });

  it('answers 409 for a nick held by another account\'s occupant or registered by another account', async () => {
    const held = await post('carol', `ops@${SVC}`, { body: 'x', nick: 'bob' });
    assert.equal(held.status, 409, held.text);
    assert.match(held.json<{ detail: string }>().detail, /in use by another account/);
    const registered = await post('carol', `ops@${SVC}`, { body: 'x', nick: 'Erin E' });
    assert.equal(registered.status, 409, registered.text);
    assert.match(registered.json<{ detail: string }>().detail, /registered by another account/);
  });

  it('answers 404 for no such room, and creates none', async () => {
    const res = await post('alice', `nowhere@${SVC}`, { body: 'x' });
    assert.equal(res.status, 404, res.text);
    const again = await post('alice', `nowhere@${SVC}`, { body: 'x' });
    assert.equal(again.status, 404);
  });

  it('answers 422 for chat, normal or headline to a room', async () => {
    for (const type of ['chat', 'normal', 'headline']) {
      const res = await post('alice', `ops@${SVC}`, { body: 'x', type });
      assert.equal(res.status, 422, `${type}: ${res.text}`);
    }
  });

  it('answers 422 for groupchat to an account', async () => {
    const res = await post('alice', 'bob@localhost', { body: 'x', type: 'groupchat' });
    assert.equal(res.status, 422, res.text);
  });

  describe('403 naming the rule that refused', () => {
    it('outcast', async () => {
      await setAffiliation('ops', 'dave@localhost', 'outcast');
      const res = await post('dave', `ops@${SVC}`, { body: 'x' });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json<{ detail: string }>().detail, /\(outcast\)/);
    });

    it('members-only, for a non-member; a member posts', async () => {
      await create('team', { membersonly: '1' });
      const res = await post('carol', `team@${SVC}`, { body: 'x' });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json<{ detail: string }>().detail, /members-only/);
      await setAffiliation('team', 'carol@localhost', 'member');
      assert.equal((await post('carol', `team@${SVC}`, { body: 'now' })).status, 201);
    });

    it('moderated, without voice; a member has voice', async () => {
      await create('stage', { moderatedroom: '1' });
      const res = await post('carol', `stage@${SVC}`, { body: 'x' });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json<{ detail: string }>().detail, /moderated/);
      await setAffiliation('stage', 'carol@localhost', 'member');
      assert.equal((await post('carol', `stage@${SVC}`, { body: 'now' })).status, 201);
    });

    it('password-protected, for an account that is not affiliated; an affiliated one posts', async () => {
      await create('vault', { passwordprotectedroom: '1', roomsecret: 'pw' });
      const res = await post('carol', `vault@${SVC}`, { body: 'x' });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json<{ detail: string }>().detail, /password-protected/);
      assert.equal((await post('alice', `vault@${SVC}`, { body: 'owner' })).status, 201);
    });
  });
});

describe('slixmpp (XEP-0045 plugin) in rooms', { skip: requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0045')]) }, () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({
      config: { s2s_ports: [], components: { [SVC]: { module: 'muc' } } },
      users: [['owner@localhost', 'owner-pw'], ['member@localhost', 'member-pw'], ['poster@localhost', 'poster-pw']],
    });
  });
  after(() => ts?.stop());

  it('owner creates and configures a members-only room, a member joins, a post arrives at both', async () => {
    const script = fileURLToPath(new URL('./slixmpp_muc.py', import.meta.url));
    const child = spawn(PYTHON, [script, String(ts.c2sPort), `lab@${SVC}`, '--ca', testTls().cert], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('READY') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(out.includes('READY'), `slixmpp did not get ready: ${out}\n${err}`);
      const refused = await request(`${ts.httpUrl}/msg/${encodeURIComponent(`lab@${SVC}`)}`, {
        headers: { Authorization: basic('poster@localhost', 'poster-pw'), 'Content-Type': 'text/plain' },
        body: 'not a member',
      });
      assert.equal(refused.status, 403, refused.text);
      const res = await request(`${ts.httpUrl}/msg/${encodeURIComponent(`lab@${SVC}`)}`, {
        headers: { Authorization: basic('member@localhost', 'member-pw'), 'Content-Type': 'text/plain' },
        body: 'build 42 passed',
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(await exited, 0, `${out}\n${err}`);
      assert.match(out, /owner GOT member: build 42 passed/);
      assert.match(out, /member GOT member: build 42 passed/);
    } finally {
      child.kill();
    }
  });
});
