// The server keeps accounts and verified passwords in memory (issue 5). An admin who changes a password or
// deletes an account with the CLI — another process, another database connection — must see it count from
// the very next request, not after a cache expires.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';

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
