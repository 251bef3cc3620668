// `xmppd token add|list|revoke` as an admin runs it (a real process per command): the token printed once on the
// last line works, list never shows a secret, revoke by id or name takes effect, mistakes exit 1 or 2 with a reason.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openUsers, readConfig } from '../../../../lib/host/core/server.js';
import { TokenStore, TOKENS_STORE, TOKEN_INDEX_STORE } from '../../../../lib/host/modules/index.js';

const CLI = resolve('lib/host/cli.ts');
const TSX = import.meta.resolve('tsx');

function xmppd(args: string[], cwd: string, input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`xmppd ${args.join(' ')} took over 30 s`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('xmppd token', () => {
  let dir: string;
  const cfg = (): string[] => ['--config', join(dir, 'xmppd.yaml')];

  /** Verify a token against the data directory, as a running server would. */
  async function verify(token: string): Promise<boolean> {
    const { config } = readConfig({ configPath: join(dir, 'xmppd.yaml') });
    const { storage } = await openUsers(config);
    try {
      const store = new TokenStore({
        tokens: (h) => storage.map(h, TOKENS_STORE),
        index: (h) => storage.map(h, TOKEN_INDEX_STORE),
        accountExists: async () => true,
        hosts: () => ['localhost'],
      });
      return (await store.verify(token)).ok;
    } finally {
      storage.close();
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-token-cli-'));
    writeFileSync(join(dir, 'xmppd.yaml'), ['data_dir: ./data', 'pbkdf2_iterations: 4096', 'modules_enabled: [tokenauth]', 'virtual_hosts:', '  localhost: {}', ''].join('\n'));
    const added = await xmppd(['adduser', 'alice@localhost', '--password-stdin', ...cfg()], dir, 'alice-pw\n');
    assert.equal(added.code, 0, added.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('add prints the token once, alone on its last line; it works; list never shows it; revoke by name ends it', async () => {
    const add = await xmppd(['token', 'add', 'alice@localhost', '--name', 'cron', '--to', 'bob@localhost', '--to', 'example.org', '--expires', '90d', ...cfg()], dir);
    assert.equal(add.code, 0, add.stderr);
    const lines = add.stdout.trimEnd().split('\n');
    const token = lines.at(-1)!;
    assert.match(token, /^xmppd_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.match(add.stdout, /for alice@localhost \(to bob@localhost, example\.org\), expires 20\d\d-/);
    assert.equal(await verify(token), true);

    const list = await xmppd(['token', 'list', 'alice@localhost', ...cfg()], dir);
    assert.equal(list.code, 0, list.stderr);
    const id = token.slice(6, 22);
    assert.match(list.stdout, new RegExp(`^${id}  alice@localhost  "cron"  to=bob@localhost,example\\.org  expires=20`, 'm'));
    assert.ok(!list.stdout.includes(token.split('.')[1]!), 'never the secret');
    const all = await xmppd(['token', 'list', ...cfg()], dir);
    assert.ok(all.stdout.includes(id));

    const revoke = await xmppd(['token', 'revoke', 'cron', ...cfg()], dir);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, new RegExp(`Revoked token ${id} "cron" of alice@localhost`));
    assert.equal(await verify(token), false);
    assert.equal((await xmppd(['token', 'list', ...cfg()], dir)).stdout, 'No tokens.\n');
  });

  it('revoke by id; an unknown or ambiguous name exits 1 saying why', async () => {
    const a = (await xmppd(['token', 'add', 'alice@localhost', '--name', 'twin', ...cfg()], dir)).stdout.trimEnd().split('\n').at(-1)!;
    const b = (await xmppd(['token', 'add', 'alice@localhost', '--name', 'twin', ...cfg()], dir)).stdout.trimEnd().split('\n').at(-1)!;
    const ambiguous = await xmppd(['token', 'revoke', 'twin', ...cfg()], dir);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /2 tokens are named "twin".*revoke one by its id/);
    const unknown = await xmppd(['token', 'revoke', 'nothing', ...cfg()], dir);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no token has the id or name "nothing"/);
    const byId = await xmppd(['token', 'revoke', a.slice(6, 22), ...cfg()], dir);
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(await verify(a), false);
    assert.equal(await verify(b), true);
  });

  it('usage mistakes exit 2; an unknown account exits 1', async () => {
    for (const args of [['token'], ['token', 'add'], ['token', 'add', 'alice@localhost', '--expires', 'soon'], ['token', 'add', 'alice@localhost', '--expires', '0s'], ['token', 'list', '--name', 'x'], ['token', 'revoke']]) {
      const run = await xmppd([...args, ...cfg()], dir);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^xmppd: /);
    }
    const unknown = await xmppd(['token', 'add', 'carol@localhost', ...cfg()], dir);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /carol@localhost/);
  });
});
