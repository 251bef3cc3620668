// post_msg.md §11 on the real server: app tokens as Bearer and as Basic with an empty user, the token's account as
// sender, the --to scope (403 naming it), 401 with both challenges for unknown/revoked/expired tokens, the login
// throttle counting failed token checks, post_msg without tokenauth; and the README's token curl lines, run as written.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';
import type { TokenService } from '../../lib/host/api.js';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function post(url: string, auth: string | undefined, body = 'hello', type = 'text/plain'): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': type, ...(auth ? { authorization: auth } : {}) }, body });
}

function tokensOf(ts: TestServer): TokenService {
  return ts.server.modules.apiOf('localhost', 'tokenauth')!.depends('tokenauth');
}

/** The README's token examples: curl lines of its ```shell blocks. */
function readmeTokenLines(): string[] {
  const text = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  return [...text.matchAll(/```shell\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).filter((l) => l.startsWith('curl '));
}

function runCurl(line: string, httpUrl: string, env: Record<string, string>): Promise<{ status: number; body: string }> {
  const command = `${line.replaceAll('http://localhost:5280', httpUrl)} -sS -w '\\n%{http_code}'`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', command], { timeout: 10_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${command}: ${err.message} ${stderr}`));
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

describe('post_msg app tokens (§11)', () => {
  let ts: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  let msg: string;

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({ config: { modules_enabled: ['tokenauth', 'post_msg'] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret'], ['carol@localhost', 'carol-pw']] });
    msg = `${ts.httpUrl}/msg`;
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-pw' });
    await goOnline(alice, 'alice');
  });
  after(async () => {
    if (alice) await stopClient(alice);
    await ts?.stop();
    restoreTls?.();
  });

  it('Bearer and Basic with an empty user send as the token\'s account', async () => {
    const { token } = await tokensOf(ts).create('bob@localhost', { name: 'cron' });
    for (const auth of [`Bearer ${token}`, basic('', token)]) {
      const received = nextStanza(alice, (el) => el.is('message'), auth.slice(0, 6));
      const res = await post(`${msg}/alice`, auth, 'via token');
      assert.equal(res.status, 201, await res.clone().text());
      const answer = (await res.json()) as { id: string };
      const stanza = await received;
      assert.equal(stanza.attrs.from, 'bob@localhost');
      assert.equal(stanza.attrs.id, answer.id);
      assert.equal(stanza.getChildText('body'), 'via token');
    }
  });

  it('a scoped token sends only to its JIDs or domains; anything else 403 naming the scope', async () => {
    const { token } = await tokensOf(ts).create('bob@localhost', { name: 'alerts', to: ['alice@localhost'] });
    assert.equal((await post(`${msg}/alice`, `Bearer ${token}`)).status, 201);
    const res = await post(`${msg}/carol`, `Bearer ${token}`);
    assert.equal(res.status, 403);
    const detail = ((await res.json()) as { detail: string }).detail;
    assert.match(detail, /"alerts" may send only to alice@localhost; carol@localhost is outside its scope/);
    const json = await post(msg, `Bearer ${token}`, JSON.stringify({ to: 'carol@localhost', body: 'x' }), 'application/json');
    assert.equal(json.status, 403, 'the JSON "to" is checked too');
    const domain = await tokensOf(ts).create('bob@localhost', { name: 'host', to: ['localhost'] });
    assert.equal((await post(`${msg}/carol`, `Bearer ${domain.token}`)).status, 201);
  });

  it('unknown, revoked and expired tokens: 401 with both challenges (RFC 6750 invalid_token)', async () => {
    const service = tokensOf(ts);
    const revoked = await service.create('bob@localhost', { name: 'gone' });
    assert.equal(await service.revoke('bob@localhost', revoked.info.id), true);
    const expiring = await service.create('bob@localhost', { name: 'short', expiresInSeconds: 1 });
    assert.equal((await post(`${msg}/alice`, `Bearer ${expiring.token}`)).status, 201);
    await new Promise((r) => setTimeout(r, 1100));
    const unknown = `xmppd_0123456789abcdef.${'A'.repeat(43)}`;
    for (const token of [revoked.token, expiring.token, unknown, 'not-a-token']) {
      for (const auth of [`Bearer ${token}`, basic('', token)]) {
        const res = await post(`${msg}/alice`, auth);
        assert.equal(res.status, 401, `${auth}`);
        const challenge = res.headers.get('www-authenticate') ?? '';
        assert.match(challenge, /^Basic realm="localhost\/post_msg", charset="UTF-8", Bearer realm="localhost\/post_msg", error="invalid_token"$/);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      }
    }
  });

  it('the README token examples run as written', async () => {
    const lines = readmeTokenLines();
    assert.ok(lines.length >= 4, `${lines.length} token curl lines`);
    const env: Record<string, string> = {};
    for (const line of lines) {
      const res = await runCurl(line, ts.httpUrl, env);
      assert.ok(res.status >= 200 && res.status < 300, `${line}\n${res.status} ${res.body}`);
      if (line.includes('-X POST') && line.includes('/tokens')) {
        const created = JSON.parse(res.body) as { id: string; token: string };
        env.TOKEN = created.token;
        env.ID = created.id;
      }
    }
    assert.equal((await tokensOf(ts).verify(env.TOKEN!)).ok, false, 'the last example revoked it');
  });
});

describe('post_msg token checks and the login throttle', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['tokenauth', 'post_msg'], auth_failures_per_minute: 3 }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret']] });
  });
  after(async () => ts?.stop());

  it('failed token checks count like wrong passwords: then 429, even for a good token', async () => {
    const { token } = await tokensOf(ts).create('bob@localhost', { name: 'ok' });
    for (let i = 0; i < 3; i++) assert.equal((await post(`${ts.httpUrl}/msg/alice`, `Bearer xmppd_0123456789abcdef.${'B'.repeat(43)}`)).status, 401);
    const res = await post(`${ts.httpUrl}/msg/alice`, `Bearer ${token}`);
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.equal((await post(`${ts.httpUrl}/msg/alice`, basic('bob', 'secret'))).status, 429, 'passwords share the limit');
  });
});

describe('post_msg without tokenauth', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['post_msg'] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret']] });
  });
  after(async () => ts?.stop());

  it('loads, sends with passwords, and answers a Bearer token 401 with the Basic challenge only; no /tokens', async () => {
    assert.equal((await post(`${ts.httpUrl}/msg/alice`, basic('bob', 'secret'))).status, 201);
    const res = await post(`${ts.httpUrl}/msg/alice`, `Bearer xmppd_0123456789abcdef.${'A'.repeat(43)}`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="localhost/post_msg", charset="UTF-8"');
    assert.equal((await fetch(`${ts.httpUrl}/tokens`, { headers: { authorization: basic('bob', 'secret') } })).status, 404);
  });
});
