// The muc component (XEP-0045) through real client sessions: creation and configuration, join/leave/nick change,
// history, members-only, moderation and voice, passwords, kick and ban, registration, invitations, destruction,
// persistence across a restart, XEP-0410 self-ping, disco, restrict_room_creation.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../../helpers/server.js';
import { rawLogin, type RawClient } from '../../c2s/helpers.js';

const SVC = 'conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';
const USER = 'http://jabber.org/protocol/muc#user';
const OWNER = 'http://jabber.org/protocol/muc#owner';
const ADMIN = 'http://jabber.org/protocol/muc#admin';
const USERS = ['alice', 'bob', 'carol', 'dave'] as const;
type User = (typeof USERS)[number];

const config = (fields: Record<string, string>): string =>
  `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>${Object.entries(fields)
    .map(([k, v]) => `<field var='muc#roomconfig_${k}'><value>${v}</value></field>`)
    .join('')}</x>`;

let iqId = 0;
/** What arrived before the last iq answer: presences a change broadcast before its result. */
let beforeAnswer = '';

describe('muc component', () => {
  let ts: TestServer;
  const c = {} as Record<User, RawClient>;

  const join = (who: User, room: string, nick: string = who, extra = ''): void => {
    c[who].send(`<presence to='${room}@${SVC}/${nick}'><x xmlns='${MUC}'>${extra}</x></presence>`);
  };
  /** The joiner's own presence (status 110) in `room` under `nick`. */
  const joined = async (who: User, room: string, nick: string = who): Promise<string> =>
    (await c[who].waitFor(new RegExp(`<presence from="${room}@${SVC}/${nick}"[^>]*>(?:(?!</presence>).)*<status code="110"/>(?:(?!</presence>).)*</presence>`, 's'), `${who} in ${room}`))[0];
  /** The room's subject message, which ends a join (§7.2.16). */
  const subject = (who: User, room: string) => c[who].waitFor(new RegExp(`<message [^>]*from="${room}@${SVC}[^"]*"[^>]*><subject(?:/>|>[^<]*</subject>)</message>`), `${who} to get the subject of ${room}`);
  const iq = async (who: User, to: string, type: 'get' | 'set', payload: string, expect: 'result' | 'error' = 'result') => {
    const id = `q${++iqId}`;
    c[who].send(`<iq type='${type}' id='${id}' to='${to}'>${payload}</iq>`);
    const m = await c[who].waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*(?:/>|>.*?</iq>)`, 's'), `iq ${id}`);
    beforeAnswer = m.input.slice(0, m.index);
    assert.match(m[0], new RegExp(`type="${expect}"`), m[0]);
    return m[0];
  };
  /** Create `room` as alice with the MUC protocol and submit `fields` (the locked-room flow, §10.1.2). */
  const create = async (room: string, fields: Record<string, string> = {}): Promise<void> => {
    join('alice', room);
    const self = await joined('alice', room);
    assert.match(self, /<status code="201"\/>/);
    assert.match(self, /affiliation="owner" role="moderator"/);
    await subject('alice', room);
    await iq('alice', `${room}@${SVC}`, 'set', `<query xmlns='${OWNER}'>${config(fields)}</query>`);
  };
  const enter = async (who: User, room: string, nick: string = who, extra = ''): Promise<string> => {
    join(who, room, nick, extra);
    const self = await joined(who, room, nick);
    await subject(who, room);
    return self;
  };

  before(async () => {
    ts = await startTestServer({
      config: { s2s_ports: [], components: { [SVC]: { module: 'muc', max_history_messages: 50 } } },
      users: USERS.map((u) => [`${u}@localhost`, `${u}-pw`] as [string, string]),
    });
    for (const u of USERS) {
      c[u] = (await rawLogin(ts.c2sPort, u, `${u}-pw`, 'r')).raw;
      c[u].send('<presence/>');
      await c[u].waitFor(/<presence[^>]*>/);
    }
  });
  after(async () => {
    for (const u of USERS) c[u]?.close();
    await ts?.stop();
  });

  describe('creation and configuration', () => {
    it('keeps a new room locked for others until its owner submits the form, then lets them in', async () => {
      join('alice', 'ops');
      const self = await joined('alice', 'ops');
      assert.match(self, /<status code="201"\/>/);
      await subject('alice', 'ops');
      join('bob', 'ops');
      await c.bob.waitFor(/<presence [^>]*from="ops@conference.localhost\/bob"[^>]*type="error"[^>]*>.*?<item-not-found /s);
      const form = await iq('alice', `ops@${SVC}`, 'get', `<query xmlns='${OWNER}'/>`);
      assert.match(form, /var="muc#roomconfig_persistentroom"/);
      assert.match(form, /var="muc#roomconfig_membersonly"/);
      await iq('alice', `ops@${SVC}`, 'set', `<query xmlns='${OWNER}'>${config({ roomname: 'Ops', persistentroom: '1' })}</query>`);
      join('bob', 'ops');
      // The newcomer sees alice first, then itself; alice sees bob come in.
      await c.bob.waitFor(/<presence from="ops@conference.localhost\/alice"[^>]*>.*?affiliation="owner" role="moderator".*?<\/presence>/s);
      const bob = await joined('bob', 'ops');
      assert.match(bob, /affiliation="none" role="participant"/);
      await subject('bob', 'ops');
      await c.alice.waitFor(/<presence from="ops@conference.localhost\/bob"[^>]*>.*?jid="bob@localhost\/r".*?<\/presence>/s);
    });

    it('refuses a form value the field does not take with not-acceptable', async () => {
      const answer = await iq('alice', `ops@${SVC}`, 'set', `<query xmlns='${OWNER}'>${config({ maxusers: 'lots' })}</query>`, 'error');
      assert.match(answer, /<not-acceptable /);
    });

    it('lets only owners read the configuration', async () => {
      assert.match(await iq('bob', `ops@${SVC}`, 'get', `<query xmlns='${OWNER}'/>`, 'error'), /<forbidden /);
    });

    it('creates an instant room for a join without the MUC element (groupchat 1.0)', async () => {
      c.carol.send(`<presence to='quick@${SVC}/carol'/>`);
      const self = await joined('carol', 'quick', 'carol');
      assert.match(self, /<status code="201"\/>/);
      await subject('carol', 'quick');
      c.carol.send(`<presence to='quick@${SVC}/carol' type='unavailable'/>`);
      await c.carol.waitFor(/<presence from="quick@conference.localhost\/carol"[^>]*type="unavailable"/);
    });
  });

  describe('messages, history, nick changes and leaving', () => {
    it('sends a groupchat message to every occupant under the sender\'s occupant JID', async () => {
      c.bob.send(`<message to='ops@${SVC}' type='groupchat' id='g1'><body>first</body></message>`);
      c.bob.send(`<message to='ops@${SVC}' type='groupchat' id='g2'><body>second</body></message>`);
      for (const u of ['alice', 'bob'] as const) {
        await c[u].waitFor(/<message [^>]*from="ops@conference.localhost\/bob"[^>]*id="g1"[^>]*>.*?<body>first<\/body>/s);
        await c[u].waitFor(/<message [^>]*id="g2"[^>]*>.*?<body>second<\/body>/s);
      }
    });

    it('refuses a groupchat message from someone who is not in the room', async () => {
      c.dave.send(`<message to='ops@${SVC}' type='groupchat' id='g3'><body>hi</body></message>`);
      await c.dave.waitFor(/<message (?=[^>]*id="g3")(?=[^>]*type="error")[^>]*>.*?<not-acceptable /s);
    });

    it('gives history on join within maxstanzas, with a delay', async () => {
      join('carol', 'ops', 'carol', "<history maxstanzas='1'/>");
      await joined('carol', 'ops');
      const m = await c.carol.waitFor(/<message [^>]*from="ops@conference.localhost\/bob"[^>]*>.*?<\/message>/s);
      assert.match(m[0], /<body>second<\/body>/);
      assert.match(m[0], /<delay xmlns="urn:xmpp:delay" from="ops@conference.localhost" stamp="[^"]+"\/>/);
      const s = await subject('carol', 'ops');
      assert.doesNotMatch(s.input.slice(0, s.index), /<body>first<\/body>/);
    });

    it('sends no history for maxstanzas 0 nor for a since after the last message', async () => {
      c.carol.send(`<presence to='ops@${SVC}/carol' type='unavailable'/>`);
      await c.carol.waitFor(/type="unavailable"[^>]*>.*?<status code="110"\/>/s);
      join('carol', 'ops', 'carol', `<history since='${new Date(Date.now() + 60_000).toISOString()}'/>`);
      await joined('carol', 'ops');
      const s = await subject('carol', 'ops');
      assert.doesNotMatch(s.input.slice(0, s.index), /<body>/);
    });

    it('changes a nick with status 303 and the new nick, then the new presence', async () => {
      c.carol.send(`<presence to='ops@${SVC}/caro'/>`);
      await c.alice.waitFor(/<presence from="ops@conference.localhost\/carol" type="unavailable"[^>]*>.*?nick="caro".*?<status code="303"\/>/s);
      await c.carol.waitFor(/<presence from="ops@conference.localhost\/carol" type="unavailable"[^>]*>.*?<status code="303"\/><status code="110"\/>/s);
      await joined('carol', 'ops', 'caro');
      await c.alice.waitFor(/<presence from="ops@conference.localhost\/caro"[^>]*>/);
    });

    it('refuses a nick held by another account with conflict', async () => {
      c.dave.send(`<presence to='ops@${SVC}/bob'><x xmlns='${MUC}'/></presence>`);
      await c.dave.waitFor(/<presence [^>]*type="error"[^>]*>.*?<conflict /s);
    });

    it('sends private messages between occupants under their occupant JIDs', async () => {
      c.bob.send(`<message to='ops@${SVC}/caro' type='chat' id='pm1'><body>psst</body></message>`);
      const m = await c.carol.waitFor(/<message (?=[^>]*from="ops@conference.localhost\/bob")(?=[^>]*id="pm1")[^>]*>.*?<\/message>/s);
      assert.match(m[0], /<body>psst<\/body>/);
    });

    it('lets only moderators change the subject unless the room allows it', async () => {
      c.bob.send(`<message to='ops@${SVC}' type='groupchat' id='s1'><subject>mine</subject></message>`);
      await c.bob.waitFor(/<message (?=[^>]*id="s1")(?=[^>]*type="error")[^>]*>.*?<forbidden /s);
      c.alice.send(`<message to='ops@${SVC}' type='groupchat' id='s2'><subject>Incidents</subject></message>`);
      await c.bob.waitFor(/<message [^>]*from="ops@conference.localhost\/alice"[^>]*id="s2"[^>]*><subject>Incidents<\/subject>/);
    });

    it('tells everyone when an occupant leaves, the leaver with 110', async () => {
      c.carol.send(`<presence to='ops@${SVC}/caro' type='unavailable'><status>bye</status></presence>`);
      await c.bob.waitFor(/<presence from="ops@conference.localhost\/caro" type="unavailable"[^>]*>.*?<status>bye<\/status>/s);
      await c.carol.waitFor(/<presence from="ops@conference.localhost\/caro" type="unavailable"[^>]*>.*?<status code="110"\/>/s);
    });
  });

  describe('access rules', () => {
    it('members-only: refuses non-members with registration-required, admits them once members', async () => {
      await create('team', { membersonly: '1' });
      join('bob', 'team');
      await c.bob.waitFor(/<presence [^>]*from="team@conference.localhost\/bob"[^>]*type="error"[^>]*>.*?<registration-required /s);
      await iq('alice', `team@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item affiliation='member' jid='bob@localhost'/></query>`);
      const list = await iq('alice', `team@${SVC}`, 'get', `<query xmlns='${ADMIN}'><item affiliation='member'/></query>`);
      assert.match(list, /<item affiliation="member" jid="bob@localhost"\/>/);
      assert.match(await enter('bob', 'team'), /affiliation="member" role="participant"/);
    });

    it('moderated: visitors may not speak until given voice', async () => {
      await create('stage', { moderatedroom: '1' });
      assert.match(await enter('carol', 'stage'), /role="visitor"/);
      c.carol.send(`<message to='stage@${SVC}' type='groupchat' id='v1'><body>me?</body></message>`);
      await c.carol.waitFor(/<message (?=[^>]*id="v1")(?=[^>]*type="error")[^>]*>.*?<forbidden /s);
      await iq('alice', `stage@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item nick='carol' role='participant'/></query>`);
      await c.carol.waitFor(/<presence from="stage@conference.localhost\/carol"[^>]*>.*?role="participant".*?<status code="110"\/>/s);
      c.carol.send(`<message to='stage@${SVC}' type='groupchat' id='v2'><body>now</body></message>`);
      await c.alice.waitFor(/<message [^>]*from="stage@conference.localhost\/carol"[^>]*id="v2"/);
    });

    it('password-protected: not-authorized without the password, in with it', async () => {
      await create('vault', { passwordprotectedroom: '1', roomsecret: 's3cret' });
      join('bob', 'vault');
      await c.bob.waitFor(/<presence [^>]*from="vault@conference.localhost\/bob"[^>]*type="error"[^>]*>.*?<not-authorized /s);
      join('bob', 'vault', 'bob', '<password>wrong</password>');
      await c.bob.waitFor(/<presence [^>]*type="error"[^>]*>.*?<not-authorized /s);
      await enter('bob', 'vault', 'bob', '<password>s3cret</password>');
    });

    it('kicks with 307 and bans with 301; a banned account cannot come back', async () => {
      await create('bar');
      await enter('dave', 'bar');
      await iq('alice', `bar@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item nick='dave' role='none'><reason>calm down</reason></item></query>`);
      await c.dave.waitFor(/<presence from="bar@conference.localhost\/dave" type="unavailable"[^>]*>.*?<item [^>]*><reason>calm down<\/reason><\/item><status code="307"\/><status code="110"\/>/s);
      assert.match(beforeAnswer, /<presence from="bar@conference.localhost\/dave" type="unavailable"[^>]*>.*?<status code="307"\/>/s);
      await enter('dave', 'bar');
      await iq('alice', `bar@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item affiliation='outcast' jid='dave@localhost'/></query>`);
      await c.dave.waitFor(/<presence from="bar@conference.localhost\/dave" type="unavailable"[^>]*>.*?affiliation="outcast".*?<status code="301"\/>/s);
      join('dave', 'bar');
      await c.dave.waitFor(/<presence [^>]*from="bar@conference.localhost\/dave"[^>]*type="error"[^>]*>.*?<forbidden /s);
    });

    it('does not let a participant kick a moderator, nor the last owner go', async () => {
      await enter('bob', 'bar');
      assert.match(await iq('bob', `bar@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item nick='alice' role='none'/></query>`, 'error'), /<not-allowed /);
      assert.match(await iq('alice', `bar@${SVC}`, 'set', `<query xmlns='${ADMIN}'><item affiliation='none' jid='alice@localhost'/></query>`, 'error'), /<conflict /);
    });

    it('refuses room creation per restrict_room_creation', async () => {
      const strict = await startTestServer({ config: { s2s_ports: [], components: { [SVC]: { module: 'muc', restrict_room_creation: true, admins: ['alice@localhost'] } } }, users: [['bob@localhost', 'bob-pw'], ['alice@localhost', 'alice-pw']] });
      try {
        const { raw: bob } = await rawLogin(strict.c2sPort, 'bob', 'bob-pw', 'r');
        const { raw: alice } = await rawLogin(strict.c2sPort, 'alice', 'alice-pw', 'r');
        bob.send(`<presence to='new@${SVC}/bob'><x xmlns='${MUC}'/></presence>`);
        await bob.waitFor(/<presence [^>]*type="error"[^>]*>.*?<not-allowed /s);
        alice.send(`<presence to='new@${SVC}/alice'><x xmlns='${MUC}'/></presence>`);
        await alice.waitFor(/<status code="201"\/>/);
        bob.close();
        alice.close();
      } finally {
        await strict.stop();
      }
    });
  });

  describe('registration (§7.10)', () => {
    it('registers a nick, reserves it against others, and reports it as registered', async () => {
      await create('club');
      const form = await iq('bob', `club@${SVC}`, 'get', "<query xmlns='jabber:iq:register'/>");
      assert.match(form, /var="muc#register_roomnick"/);
      await iq('bob', `club@${SVC}`, 'set', "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Bobby</value></field></x></query>");
      assert.match(await iq('bob', `club@${SVC}`, 'get', "<query xmlns='jabber:iq:register'/>"), /<registered\/><username>Bobby<\/username>/);
      join('carol', 'club', 'Bobby');
      await c.carol.waitFor(/<presence [^>]*from="club@conference.localhost\/Bobby"[^>]*type="error"[^>]*>.*?<conflict /s);
      assert.match(await iq('carol', `club@${SVC}`, 'set', "<query xmlns='jabber:iq:register'><username>Bobby</username></query>", 'error'), /<conflict /);
      assert.match(await enter('bob', 'club', 'Bobby'), /affiliation="member"/);
    });
  });

  describe('invitations', () => {
    it('forwards a mediated invitation from the room with the inviter\'s bare JID (§7.8.2)', async () => {
      await iq('alice', `club@${SVC}`, 'set', `<query xmlns='${OWNER}'>${config({ allowinvites: '1' })}</query>`);
      c.alice.send(`<message to='club@${SVC}' id='inv1'><x xmlns='${USER}'><invite to='dave@localhost'><reason>join us</reason></invite></x></message>`);
      const m = await c.dave.waitFor(/<message from="club@conference.localhost"[^>]*>.*?<\/message>/s);
      assert.match(m[0], /<invite from="alice@localhost"><reason>join us<\/reason><\/invite>/);
      assert.match(m[0], /<x xmlns="jabber:x:conference" jid="club@conference.localhost"/);
    });

    it('passes a direct invitation (XEP-0249) from account to account', async () => {
      c.alice.send(`<message to='dave@localhost' id='inv2'><x xmlns='jabber:x:conference' jid='club@${SVC}' reason='hi'/></message>`);
      await c.dave.waitFor(/<message (?=[^>]*from="alice@localhost\/r")(?=[^>]*id="inv2")[^>]*>.*?<x xmlns="jabber:x:conference" jid="club@conference.localhost"/s);
    });
  });

  describe('disco, self-ping', () => {
    it('lists public rooms on the service, not hidden ones', async () => {
      await create('hidden', { publicroom: '0' });
      const items = await iq('dave', SVC, 'get', "<query xmlns='http://jabber.org/protocol/disco#items'/>");
      assert.match(items, /jid="ops@conference.localhost" name="Ops"/);
      assert.doesNotMatch(items, /hidden@/);
      const info = await iq('dave', `hidden@${SVC}`, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>");
      assert.match(info, /<identity category="conference" type="text"/);
      assert.match(info, /var="muc_hidden"/);
      assert.match(await iq('dave', SVC, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>"), /var="http:\/\/jabber.org\/protocol\/muc"/);
    });

    it('answers a self-ping for an occupant, not-acceptable for someone not in the room (XEP-0410)', async () => {
      await iq('bob', `ops@${SVC}/bob`, 'get', "<ping xmlns='urn:xmpp:ping'/>");
      assert.match(await iq('dave', `ops@${SVC}/dave`, 'get', "<ping xmlns='urn:xmpp:ping'/>", 'error'), /<not-acceptable /);
    });
  });

  describe('destruction', () => {
    it('sends occupants away with the reason and the alternate venue, and the room is gone', async () => {
      await enter('bob', 'hidden');
      await iq('alice', `hidden@${SVC}`, 'set', `<query xmlns='${OWNER}'><destroy jid='ops@${SVC}'><reason>moved</reason></destroy></query>`);
      await c.bob.waitFor(/<presence from="hidden@conference.localhost\/bob" type="unavailable"[^>]*>.*?<destroy jid="ops@conference.localhost"><reason>moved<\/reason><\/destroy>.*?<\/presence>/s);
      assert.match(await iq('dave', `hidden@${SVC}`, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>", 'error'), /<item-not-found /);
    });
  });

  describe('an occupant whose client went', () => {
    it('is taken out of the room on the next broadcast', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'dave', 'dave-pw', 'gone');
      raw.send(`<presence to='ops@${SVC}/ghost'><x xmlns='${MUC}'/></presence>`);
      await raw.waitFor(/<status code="110"\/>/);
      raw.close();
      await new Promise((r) => setTimeout(r, 200));
      c.bob.send(`<message to='ops@${SVC}' type='groupchat' id='g9'><body>anyone?</body></message>`);
      await c.bob.waitFor(/<presence from="ops@conference.localhost\/ghost" type="unavailable"/);
    });
  });
});

describe('muc persistence', () => {
  it('keeps a persistent room, its configuration and affiliations across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-muc-'));
    const opts = { dataDir, config: { s2s_ports: [], components: { [SVC]: { module: 'muc' } } } };
    try {
      let ts = await startTestServer({ ...opts, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']] });
      let { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'r');
      raw.send(`<presence to='keep@${SVC}/alice'><x xmlns='${MUC}'/></presence>`);
      await raw.waitFor(/<status code="201"\/>/);
      raw.send(`<iq type='set' id='c1' to='keep@${SVC}'><query xmlns='${OWNER}'>${config({ persistentroom: '1', roomname: 'Kept', membersonly: '1' })}</query></iq>`);
      await raw.waitFor(/<iq [^>]*id="c1"[^>]*type="result"|<iq type="result"[^>]*id="c1"/);
      raw.send(`<iq type='set' id='c2' to='keep@${SVC}'><query xmlns='${ADMIN}'><item affiliation='member' jid='bob@localhost'/></query></iq>`);
      await raw.waitFor(/id="c2"[^>]*type="result"|type="result"[^>]*id="c2"/);
      raw.close();
      await ts.stop();

      ts = await startTestServer(opts);
      try {
        ({ raw } = await rawLogin(ts.c2sPort, 'bob', 'bob-pw', 'r'));
        raw.send(`<iq type='get' id='d1' to='keep@${SVC}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
        const info = await raw.waitFor(/<iq [^>]*id="d1"[^>]*>.*?<\/iq>/s);
        assert.match(info[0], /name="Kept"/);
        assert.match(info[0], /var="muc_membersonly"/);
        assert.match(info[0], /var="muc_persistent"/);
        raw.send(`<presence to='keep@${SVC}/bob'><x xmlns='${MUC}'/></presence>`);
        const self = await raw.waitFor(/<presence from="keep@conference.localhost\/bob"[^>]*>.*?<\/presence>/s);
        assert.match(self[0], /affiliation="member" role="participant"/);
        raw.close();
      } finally {
        await ts.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
