// Deleting an account deletes its data (Prosody's user-deleted + storagemanager.purge): offline messages, roster and
// every store kept for it, whether the running server deletes it or `xmppd deluser` (another process) does; an account
// created again under that name starts empty.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { xml, type ModuleApi } from '../../../lib/host/api.js';
import { setRoster, startTestServer, testTls, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';
import type { StoredRoom } from '../../../lib/host/modules/muc/room.js';

const CLI = resolve('lib/host/cli.ts');
const TSX = import.meta.resolve('tsx');

function xmppd(args: string[], cwd: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`xmppd ${args.join(' ')} did not finish; ${stderr}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('deleting an account', () => {
  let ts: TestServer;
  let api: ModuleApi;
  const deleted: string[] = [];

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw']] });
    api = ts.server.modules.apiOf('localhost', 'message')!;
    ts.server.globalBus.add('user-deleted', (p) => void deleted.push((p as { jid: string }).jid));
  });
  after(() => ts?.stop());

  /** Offline messages, a roster and a store of another module for the account. */
  const fill = async (jid: string): Promise<void> => {
    for (const body of ['one', 'two']) {
      assert.equal(await api.send(xml('message', { to: jid, from: 'alice@localhost', type: 'chat' }, xml('body', {}, body))), 'stored');
    }
    await setRoster(ts, jid, { 'alice@localhost': 'none' });
    await api.openStore('vcard').set(jid, { fn: 'Someone' });
    await api.openArchive('mam').append(jid, { with: 'alice@localhost', value: '<message/>' });
  };
  const isEmpty = async (jid: string): Promise<void> => {
    assert.equal(await api.openArchive('offline').count(jid), 0, 'no offline messages');
    assert.equal(await ts.server.modules.apiOf('localhost', 'roster')!.openStore('roster').get(jid), undefined, 'no roster');
    assert.equal(await api.openStore('vcard').get(jid), undefined, "no other module's document");
    assert.equal(await api.openArchive('mam').count(jid), 0, "no other module's archive");
  };
  const othersStay = async (): Promise<void> => {
    assert.equal(await api.openArchive('offline').count('alice@localhost'), 1, "another account's messages stay");
  };

  before(async () => {
    assert.equal(await api.send(xml('message', { to: 'alice@localhost', from: 'carol@localhost', type: 'chat' }, xml('body', {}, 'keep'))), 'stored');
  });

  it('through the server: its data goes, user-deleted fires, and the same name starts empty', async () => {
    await ts.server.users.create('bob@localhost', 'bob-pw');
    await fill('bob@localhost');
    assert.equal(await api.openArchive('offline').count('bob@localhost'), 2);
    await ts.server.users.delete('bob@localhost');
    // Storage took the data with the account, before the event's handlers run.
    await isEmpty('bob@localhost');
    while (deleted.length === 0) await new Promise((r) => setImmediate(r));
    assert.deepEqual(deleted, ['bob@localhost']);
    await ts.server.users.create('bob@localhost', 'new-pw');
    await isEmpty('bob@localhost');
    await othersStay();
  });

  it('through xmppd deluser while the server runs: its data goes, and the same name starts empty', async () => {
    await ts.server.users.create('dora@localhost', 'dora-pw');
    await fill('dora@localhost');
    const config = join(ts.dataDir, 'xmppd.yaml');
    // JSON is YAML; the same data_dir as the running server.
    writeFileSync(config, JSON.stringify({ data_dir: ts.dataDir, pbkdf2_iterations: 4096, tls: testTls(), virtual_hosts: { localhost: {} } }));
    const run = await xmppd(['deluser', 'dora@localhost', '--config', config], ts.dataDir);
    assert.equal(run.code, 0, run.stderr);
    await isEmpty('dora@localhost');
    await ts.server.users.create('dora@localhost', 'new-pw');
    await isEmpty('dora@localhost');
    await othersStay();
  });
});

describe('deleting an account: rooms of the muc component', () => {
  const SVC = 'conference.localhost';
  let ts: TestServer;
  const clients: RawClient[] = [];
  let n = 0;
  const login = async (user: string, password: string): Promise<RawClient> => {
    const { raw } = await rawLogin(ts.c2sPort, user, password, `r${++n}`);
    clients.push(raw);
    return raw;
  };
  const iq = async (c: RawClient, type: 'get' | 'set', payload: string): Promise<string> => {
    const id = `q${++n}`;
    c.send(`<iq type='${type}' id='${id}' to='den@${SVC}'>${payload}</iq>`);
    return (await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*(?:/>|>.*?</iq>)`, 's'), `iq ${id}`))[0];
  };
  const den = (): Promise<StoredRoom | undefined> => ts.server.modules.apiOf(SVC, 'muc')!.openMap<StoredRoom>('muc_rooms').get(SVC, 'den');

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: [], s2s_ports: [], components: { [SVC]: { module: 'muc' } } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']],
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ts?.stop();
  });

  it("takes the account's affiliations and registered nicks out of every room: the same name is a stranger there", async () => {
    // alice's members-only, persistent room, in which bob is an owner with a registered nick.
    const alice = await login('alice', 'alice-pw');
    alice.send(`<presence to='den@${SVC}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await alice.waitFor(/<status code="201"\/>/);
    const form = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_persistentroom'><value>1</value></field><field var='muc#roomconfig_membersonly'><value>1</value></field></x>";
    assert.match(await iq(alice, 'set', `<query xmlns='http://jabber.org/protocol/muc#owner'>${form}</query>`), /type="result"/);
    assert.match(await iq(alice, 'set', "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid='bob@localhost'/></query>"), /type="result"/);
    const bob = await login('bob', 'bob-pw');
    assert.match(await iq(bob, 'set', "<query xmlns='jabber:iq:register'><username>Bobby</username></query>"), /type="result"/);
    assert.equal((await den())?.affiliations['bob@localhost'], 'owner');
    assert.equal((await den())?.nicks['bob@localhost'], 'Bobby');

    await ts.server.users.delete('bob@localhost');
    for (let i = 0; i < 200 && (await den())?.affiliations['bob@localhost'] !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
    const stored = (await den())!;
    assert.equal(stored.affiliations['bob@localhost'], undefined, 'no affiliation kept');
    assert.equal(stored.nicks['bob@localhost'], undefined, 'no registered nick kept');
    assert.equal(stored.affiliations['alice@localhost'], 'owner', "others' stay");

    await ts.server.users.create('bob@localhost', 'new-pw');
    const again = await login('bob', 'new-pw');
    again.send(`<presence to='den@${SVC}/Bobby'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await again.waitFor(/<presence [^>]*type="error"[^>]*>.*?<registration-required /s, 'members-only refuses the new account');
    assert.match(await iq(again, 'get', "<query xmlns='jabber:iq:register'/>"), /<registration-required /, 'no nick registered for it');
    // The nick is free again: alice may take it.
    alice.send(`<presence to='den@${SVC}/Bobby'/>`);
    await alice.waitFor(/<presence from="den@conference.localhost\/Bobby"[^>]*>.*?<status code="110"\/>/s, 'alice takes the nick');
  });
});
