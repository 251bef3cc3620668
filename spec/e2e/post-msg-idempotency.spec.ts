// post_msg.md §12 across a SIGKILL: an Idempotency-Key's answer is on disk before the 201 leaves, so a retry after
// kill -9 and restart is replayed and nothing is sent twice; a request whose process died between routing and
// recording (its pending record left on disk) is sent again with the same stanza id.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testTls } from '../helpers/server.js';
import { openUsers, readConfig } from '../../lib/host/core/server.js';
import { fingerprint, IDEMPOTENCY_STORE, type IdempotencyRecord } from '../../lib/post_msg/idempotency.js';

const CLI = resolve('lib/host/cli.ts');
const TSX = import.meta.resolve('tsx');
const AUTH = `Basic ${Buffer.from('bob@localhost:bob-pw').toString('base64')}`;

function startChild(configPath: string, cwd: string): Promise<{ child: ChildProcess; httpPort: number; exited: Promise<void> }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, 'start', '--config', configPath], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`xmppd did not start within 30 s: ${out}`));
    }, 30_000);
    // The HTTP port opens before the hosts' modules load: wait for the ready summary too.
    const check = (d: Buffer): void => {
      out += d.toString();
      const http = /"service":"http","address":"127\.0\.0\.1","port":(\d+),"msg":"http listening"/.exec(out);
      if (http && out.includes('xmppd is running')) {
        clearTimeout(timer);
        done({ child, httpPort: Number(http[1]), exited });
      }
    };
    child.stderr!.on('data', check);
    child.stdout!.on('data', check);
  });
}

const send = (port: number, key: string, body: string): Promise<Response> =>
  fetch(`http://127.0.0.1:${port}/msg/alice`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'text/plain', 'idempotency-key': key }, body });

describe('post_msg Idempotency-Key across kill -9 (§12)', () => {
  it('replays an answered key after a restart, and resends a pending one with its recorded stanza id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmppd-idem-'));
    const tls = testTls();
    const configPath = join(dir, 'xmppd.yaml');
    writeFileSync(
      configPath,
      ['data_dir: ./data', 'http_ports: [0]', 'c2s_ports: [0]', 's2s_ports: [0]', 'c2s_direct_tls_ports: []', 'pbkdf2_iterations: 4096', 'log_level: info', `tls: { cert: ${tls.cert}, key: ${tls.key} }`, 'modules_enabled: [post_msg]', 'virtual_hosts: { localhost: {} }', ''].join('\n'),
    );
    const { config } = readConfig({ configPath });
    const opened = await openUsers(config);
    await opened.users.create('bob@localhost', 'bob-pw');
    await opened.users.create('alice@localhost', 'alice-pw');
    opened.storage.close();

    try {
      const first = await startChild(configPath, dir);
      const answered = await send(first.httpPort, 'job-1', 'backup failed');
      assert.equal(answered.status, 201, await answered.clone().text());
      const firstBody = await answered.text();
      first.child.kill('SIGKILL');
      await first.exited;

      // As if the process had died after routing a message under job-2 and before recording its answer.
      const { storage } = await openUsers(config);
      const pending: IdempotencyRecord = { fingerprint: fingerprint('POST', '/msg/alice', 'text/plain', Buffer.from('disk full')), state: 'pending', ids: ['routed-before-crash-1'], stamp: Date.now() };
      await storage.map<IdempotencyRecord>('localhost', IDEMPOTENCY_STORE).set('bob@localhost', 'job-2', pending);
      storage.close();

      const second = await startChild(configPath, dir);
      try {
        const replay = await send(second.httpPort, 'job-1', 'backup failed');
        assert.equal(replay.status, 201);
        assert.equal(replay.headers.get('idempotent-replayed'), 'true');
        assert.equal(await replay.text(), firstBody);
        const other = await send(second.httpPort, 'job-1', 'something else');
        assert.equal(other.status, 422);

        const resent = await send(second.httpPort, 'job-2', 'disk full');
        assert.equal(resent.status, 201);
        assert.equal(resent.headers.get('idempotent-replayed'), null);
        assert.equal(((await resent.json()) as { id: string }).id, 'routed-before-crash-1', 'the same stanza id');
        const again = await send(second.httpPort, 'job-2', 'disk full');
        assert.equal(again.headers.get('idempotent-replayed'), 'true');
      } finally {
        second.child.kill('SIGKILL');
        await second.exited;
      }

      // alice was offline: her stored messages show what was sent, once each.
      const after = await openUsers(config);
      try {
        const page = await after.storage.archive('localhost', 'offline').find('alice@localhost');
        const ids = page.items.map((i) => /id=["']([^"']+)["']/.exec(i.value)?.[1]);
        const firstId = (JSON.parse(firstBody) as { id: string }).id;
        assert.equal(ids.filter((id) => id === firstId).length, 1, 'job-1 sent once');
        assert.equal(ids.filter((id) => id === 'routed-before-crash-1').length, 1, 'job-2 sent with its recorded id');
        assert.equal(page.items.length, 2);
      } finally {
        after.storage.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
