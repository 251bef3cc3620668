// A password changed or an account deleted, through the server or by the CLI (another process and database
// connection), counts from the very next HTTP request despite the in-memory caches, and client streams that logged
// in before are closed (as Prosody's mod_c2s does): at once through the server, within a second by the CLI.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../../lib/host/modules/storage_sqlite/sqlite.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rawLogin, type RawClient } from '../host/c2s/helpers.js';

const CLI = resolve(import.meta.dirname, '../../lib/host/cli.ts');
const TSX = import.meta.resolve('tsx');

function xmppd(args: string[], input: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = execFile(process.execPath, ['--import', TSX, CLI, ...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      resolvePromise({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr });
    });
    child.stdin?.end(input);
  });
}

describe('account changes made by another process while the server runs', () => {
  let t: TestServer;
  let config: string;

  before(async () => {
    t = await startTestServer({ users: [['carol@localhost', 'carol-old-pw'], ['dan@localhost', 'dan-pw']] });
    config = join(t.dataDir, 'cli.yaml');
    // The CLI's own config: the same data folder, so the same SQLite file.
    writeFileSync(config, [`data_dir: ${t.dataDir}`, 'pbkdf2_iterations: 4096', 'modules_enabled: []', 'virtual_hosts:', '  localhost: {}', ''].join('\n'));
  });
  after(() => t.stop());

  const post = (user: string, password: string, to = 'dan'): Promise<Response> =>
    fetch(`${t.httpUrl}/msg/${to}`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, 'Content-Type': 'text/plain' },
      body: 'hello',
    });

  it('a password changed with xmppd passwd: the old one is refused at once, the new one works', async () => {
    // Twice, so the account and the verified password are both in memory before the change.
    assert.equal((await post('carol', 'carol-old-pw')).status, 201);
    assert.equal((await post('carol', 'carol-old-pw')).status, 201);
    const run = await xmppd(['passwd', 'carol@localhost', '--config', config, '--password-stdin'], 'carol-new-pw\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await post('carol', 'carol-old-pw')).status, 401);
    assert.equal((await post('carol', 'carol-new-pw')).status, 201);
  });

  it('an account deleted with xmppd deluser: refused as sender and unknown as recipient at once', async () => {
    assert.equal((await post('dan', 'dan-pw', 'carol')).status, 201);
    assert.equal((await post('carol', 'carol-new-pw', 'dan')).status, 201);
    const run = await xmppd(['deluser', 'dan@localhost', '--config', config], '');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await post('dan', 'dan-pw', 'carol')).status, 401);
    assert.equal((await post('carol', 'carol-new-pw', 'dan')).status, 404);
  });

  it('an account created with xmppd adduser can receive and send at once', async () => {
    // Asked for before it exists, so "no such account" is what the server has seen last.
    assert.equal((await post('carol', 'carol-new-pw', 'erin')).status, 404);
    const run = await xmppd(['adduser', 'erin@localhost', '--config', config, '--password-stdin'], 'erin-pw\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await post('carol', 'carol-new-pw', 'erin')).status, 201);
    assert.equal((await post('erin', 'erin-pw', 'carol')).status, 201);
  });
});

describe('client streams of an account that is deleted or gets a new password', () => {
  let t: TestServer;
  let config: string;
  const open: RawClient[] = [];

  before(async () => {
    t = await startTestServer({
      users: [
        ['frank@localhost', 'frank-pw'],
        ['gina@localhost', 'gina-pw'],
        ['hal@localhost', 'hal-pw'],
        ['ivy@localhost', 'ivy-pw'],
        ['jo@localhost', 'jo-pw'],
      ],
    });
    config = join(t.dataDir, 'cli.yaml');
    writeFileSync(config, [`data_dir: ${t.dataDir}`, 'pbkdf2_iterations: 4096', 'modules_enabled: []', 'virtual_hosts:', '  localhost: {}', ''].join('\n'));
  });
  after(async () => {
    for (const raw of open) raw.close();
    await t.stop();
  });

  const login = async (user: string, password: string, resource?: string): Promise<RawClient> => {
    const { raw } = await rawLogin(t.c2sPort, user, password, resource);
    open.push(raw);
    return raw;
  };
  const STREAM_ERROR = (condition: string): RegExp =>
    new RegExp(`<stream:error><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text[^>]*>[^<]+</text></stream:error></stream:stream>`);

  it('deleted through the server: every stream of the account ends with not-authorized, other accounts keep theirs', async () => {
    const desk = await login('frank', 'frank-pw', 'desk');
    const phone = await login('frank', 'frank-pw', 'phone');
    const other = await login('gina', 'gina-pw');
    await t.server.users.delete('frank@localhost');
    for (const raw of [desk, phone]) {
      await raw.waitFor(STREAM_ERROR('not-authorized'), 'the stream error');
      await raw.waitClosed();
    }
    assert.equal(other.isClosed, false);
    assert.deepEqual(t.server.sessions.byBare('frank@localhost'), []);
    assert.equal(t.server.sessions.byBare('gina@localhost').length, 1);
  });

  it('a new password set through the server: the stream ends with reset, and the new password logs in again', async () => {
    const raw = await login('hal', 'hal-pw');
    await t.server.users.setPassword('hal@localhost', 'hal-new-pw');
    await raw.waitFor(STREAM_ERROR('reset'), 'the stream error');
    await raw.waitClosed();
    const again = await login('hal', 'hal-new-pw');
    // A commit by another connection (as the CLI makes) moves the store's outside-change count: the next poll
    // (within 1 s) rechecks every stream, and this one, logged in with the current password, stays open.
    const other = new Database(join(t.dataDir, DATABASE_FILE));
    try {
      other.prepare('UPDATE users SET created_at = created_at + 1 WHERE jid = ?').run('gina@localhost');
    } finally {
      other.close();
    }
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(again.isClosed, false);
    assert.equal(t.server.sessions.byBare('hal@localhost').length, 1);
  });

  it('xmppd passwd and deluser from another process close the streams within a few seconds', async () => {
    const ivy = await login('ivy', 'ivy-pw');
    const jo = await login('jo', 'jo-pw');
    const passwd = await xmppd(['passwd', 'ivy@localhost', '--config', config, '--password-stdin'], 'ivy-new-pw\n');
    assert.equal(passwd.code, 0, passwd.stderr);
    await ivy.waitFor(STREAM_ERROR('reset'), 'the stream error after xmppd passwd');
    await ivy.waitClosed();
    assert.equal(jo.isClosed, false);
    const deluser = await xmppd(['deluser', 'jo@localhost', '--config', config], '');
    assert.equal(deluser.code, 0, deluser.stderr);
    await jo.waitFor(STREAM_ERROR('not-authorized'), 'the stream error after xmppd deluser');
    await jo.waitClosed();
  });
});
