// post_msg end to end over HTTP on the real server (ephemeral ports, temporary data dir): mounting and
// http_paths, virtual host selection by Host, authentication against the real user store and its
// throttle, timing, limits and the request log line.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type Server } from '../../lib/host/core/server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { basic, request, type SpecRequest, type SpecResponse } from '../post_msg/helpers/http.js';

const TEXT = { 'Content-Type': 'text/plain' };

function post(url: string, auth: [string, string] | undefined, opts: SpecRequest = {}): Promise<SpecResponse> {
  return request(url, {
    ...opts,
    headers: { ...TEXT, ...(auth ? { Authorization: basic(...auth) } : {}), ...opts.headers },
    body: opts.body ?? (opts.chunks ? undefined : 'hello'),
  });
}

function assertProblem(res: SpecResponse, status: number): Record<string, unknown> {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['detail', 'status', 'title', 'type']);
  assert.equal(body.type, 'about:blank');
  assert.equal(body.status, status);
  return body;
}

/** A server without the helper's http_default_host (the helper always sets one). */
async function startWithoutDefaultHost(config: Record<string, unknown>, users: Array<[string, string]>): Promise<{ server: Server; url: string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-postmsg-'));
  const server = await startServer({
    config: { data_dir: dataDir, log_level: 'silent', http_ports: [0], c2s_ports: [], s2s_ports: [], pbkdf2_iterations: 4096, ...config },
  });
  for (const [jid, password] of users) await server.users.create(jid, password);
  return {
    server,
    url: `http://127.0.0.1:${server.httpPorts()[0]}`,
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('post_msg over HTTP (real server)', () => {
  describe('mounting and virtual hosts', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({
        config: {
          modules_enabled: [],
          http_paths: { post_msg: '/api/msg' },
          virtual_hosts: {
            localhost: { modules_enabled: ['post_msg'] },
            'example.org': { modules_enabled: ['post_msg'], http_paths: { post_msg: '/notify/' } },
          },
        },
        users: [
          ['bob@localhost', 'secret'],
          ['alice@localhost', 'pw'],
          ['bob@example.org', 'org-secret'],
          ['alice@example.org', 'pw'],
        ],
      });
    });
    after(async () => ts?.stop());

    it('uses the global http_paths override instead of /msg', async () => {
      const res = await post(`${ts.httpUrl}/api/msg/alice`, ['bob@localhost', 'secret']);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json().to, 'alice@localhost');
      assertProblem(await post(`${ts.httpUrl}/msg/alice`, ['bob@localhost', 'secret']), 404);
    });

    it('lets the virtual host\'s own http_paths win, picked by Host (port ignored, case-insensitive)', async () => {
      const res = await post(`${ts.httpUrl}/notify/alice`, ['bob', 'org-secret'], { headers: { Host: 'EXAMPLE.org:1234' } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json().to, 'alice@example.org', 'a bare recipient is a user of the serving host');
      const wrong = await post(`${ts.httpUrl}/notify/alice`, ['bob', 'secret'], { headers: { Host: 'example.org' } });
      assertProblem(wrong, 401);
      assert.equal(wrong.headers['www-authenticate'], 'Basic realm="example.org/post_msg", charset="UTF-8"', 'bare user bob is bob@example.org there');
    });

    it('accepts credentials of another virtual host of this server (as Prosody does)', async () => {
      const res = await post(`${ts.httpUrl}/notify/alice`, ['bob@localhost', 'secret'], { headers: { Host: 'example.org' } });
      assert.equal(res.status, 201, res.text);
    });

    it('falls back to http_default_host for a Host that names no virtual host', async () => {
      const res = await post(`${ts.httpUrl}/api/msg/alice`, ['bob', 'secret'], { headers: { Host: 'unknown.example:5280' } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json().to, 'alice@localhost');
    });

    it('answers 404 problem+json for paths no app serves', async () => {
      assertProblem(await request(`${ts.httpUrl}/nothing/here`, { method: 'GET' }), 404);
    });
  });

  describe('virtual host selection without http_default_host', () => {
    it('serves from the only virtual host that enabled post_msg', async () => {
      const srv = await startWithoutDefaultHost(
        { modules_enabled: [], virtual_hosts: { localhost: {}, 'example.org': { modules_enabled: ['post_msg'] } } },
        [['bob@example.org', 's'], ['alice@example.org', 'p']],
      );
      try {
        const res = await post(`${srv.url}/msg/alice`, ['bob', 's']);
        assert.equal(res.status, 201, res.text);
        assert.equal(res.json().to, 'alice@example.org');
      } finally {
        await srv.stop();
      }
    });

    it('answers 404 when two virtual hosts have the app and Host names neither', async () => {
      const srv = await startWithoutDefaultHost(
        { modules_enabled: ['post_msg'], virtual_hosts: { localhost: {}, 'example.org': {} } },
        [['bob@localhost', 's'], ['alice@localhost', 'p']],
      );
      try {
        assertProblem(await post(`${srv.url}/msg/alice`, ['bob@localhost', 's']), 404);
        assert.equal((await post(`${srv.url}/msg/alice`, ['bob@localhost', 's'], { headers: { Host: 'localhost' } })).status, 201);
      } finally {
        await srv.stop();
      }
    });
  });

  describe('on the default test server', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({
        config: { auth_failures_per_minute: 3, post_msg: { max_body_bytes: 4096 } },
        users: [
          ['bob@localhost', 'secret'],
          ['alice@localhost', 'pw'],
          ['colon@localhost', 'a:b:c'],
          ['jürgen@localhost', 'Päss wörd€'],
        ],
      });
    });
    after(async () => ts?.stop());

    it('answers OPTIONS without credentials and 405 for GET before authentication', async () => {
      const opt = await request(`${ts.httpUrl}/msg/alice`, { method: 'OPTIONS' });
      assert.equal(opt.status, 204);
      assert.equal(opt.headers.allow, 'OPTIONS, POST');
      // B/openapi.json is the one resource read with GET (§15).
      const doc = await request(`${ts.httpUrl}/msg/openapi.json`, { method: 'OPTIONS' });
      assert.equal(doc.headers.allow, 'OPTIONS, GET');
      assert.equal(opt.headers['accept-post'], 'text/plain, application/x-www-form-urlencoded, application/json, text/markdown');
      const get = await request(`${ts.httpUrl}/msg`, { method: 'GET' });
      assertProblem(get, 405);
      assert.equal(get.headers.allow, 'OPTIONS, POST');
    });

    it('authenticates against the real store: colon in the password, non-ASCII user and password', async () => {
      assert.equal((await post(`${ts.httpUrl}/msg/alice`, ['colon', 'a:b:c'])).status, 201);
      assert.equal((await post(`${ts.httpUrl}/msg/alice`, ['JÜRGEN@localhost', 'Päss wörd€'])).status, 201, 'the jid is normalised');
    });

    it('answers 404 for a recipient without an account', async () => {
      const res = await post(`${ts.httpUrl}/msg/alcie`, ['bob', 'secret']);
      assert.match(String(assertProblem(res, 404).detail), /alcie@localhost/);
    });

    it('answers 413 over max_body_bytes, by Content-Length and for a chunked body', async () => {
      assertProblem(await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], { body: 'x'.repeat(4097) }), 413);
      let pieces = 0;
      const res = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], {
        chunks: (async function* () {
          for (let i = 0; i < 100; i++) {
            pieces += 1;
            yield Buffer.alloc(1024, 0x61);
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
      });
      assertProblem(res, 413);
      assert.ok(pieces < 30, `answered after ${pieces} of 100 pieces`);
    });

    it('writes one info line per request with account, recipient, stanza id and ms, never secrets or the body', async () => {
      const res = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], { body: 'the-body-text-42' });
      assert.equal(res.status, 201);
      const id = res.json().id;
      const line = ts.logLines().find((l) => l.msg === 'http request' && l.stanza_id === id);
      assert.ok(line, 'a request line with the stanza id');
      assert.equal(line.method, 'POST');
      assert.equal(line.path, '/msg/alice');
      assert.equal(line.status, 201);
      assert.equal(line.account, 'bob@localhost');
      assert.equal(line.recipient, 'alice@localhost');
      assert.equal(typeof line.ms, 'number');
      assert.equal(line.level, 30);
      const lines = ts.logText().split('\n').filter(Boolean);
      const aboveDebug = lines.filter((l) => (JSON.parse(l) as { level: number }).level > 20).join('\n');
      assert.ok(!aboveDebug.includes('the-body-text-42'), 'no body above debug');
      assert.ok(!aboveDebug.includes(basic('bob', 'secret').slice(6)), 'no Authorization');
      assert.ok(!/"secret"|:secret|Päss|a:b:c/.test(aboveDebug), 'no password');
      assert.ok(
        ts.logLines().some((l) => l.level === 20 && l.body === 'the-body-text-42' && l.stanza_id === id),
        'the body only at debug',
      );
      assert.ok(!ts.logText().includes(basic('bob', 'secret').slice(6)), 'no Authorization at any level');
    });

    it('throttles failed logins per address (429 + Retry-After), not counting requests without credentials', async () => {
      for (let i = 0; i < 5; i++) assertProblem(await post(`${ts.httpUrl}/msg/alice`, undefined, { localAddress: '127.0.0.3' }), 401);
      for (let i = 0; i < 3; i++) assertProblem(await post(`${ts.httpUrl}/msg/alice`, ['bob', 'wrong'], { localAddress: '127.0.0.3' }), 401);
      const limited = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'wrong'], { localAddress: '127.0.0.3' });
      assertProblem(limited, 429);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      const fromElsewhere = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], { localAddress: '127.0.0.4' });
      assert.equal(fromElsewhere.status, 201, 'the real user is not locked out from another address');
    });
  });

  describe('options from the config, CSRF and rate limit', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({
        config: {
          post_msg: { rate_burst: 10, rate_per_second: 0.01, cors_origins: ['https://dash.example.org'] },
          virtual_hosts: { localhost: { post_msg: { rate_burst: 3 } } },
        },
        users: [['bob@localhost', 'secret'], ['alice@localhost', 'pw']],
      });
    });
    after(async () => ts?.stop());

    it('refuses a cross-site POST with 403 and accepts an origin from cors_origins with CORS headers', async () => {
      assertProblem(await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], { headers: { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' } }), 403);
      const ok = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'], { headers: { Origin: 'https://dash.example.org', 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(ok.status, 201, ok.text);
      assert.equal(ok.headers['access-control-allow-origin'], 'https://dash.example.org');
      assert.equal(ok.headers.vary, 'Origin');
    });

    it('limits each account to rate_burst, the virtual host\'s value winning over the global one', async () => {
      // One message went out in the spec above; the host's burst is 3 (the global 10 would allow more).
      assert.equal((await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'])).status, 201);
      assert.equal((await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret'])).status, 201);
      const limited = await post(`${ts.httpUrl}/msg/alice`, ['bob', 'secret']);
      assertProblem(limited, 429);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal((await post(`${ts.httpUrl}/msg/bob`, ['alice', 'pw'])).status, 201, 'another account is not limited');
    });
  });

  describe('timing', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({ config: { auth_failures_per_minute: 100000 }, users: [['bob@localhost', 'secret'], ['alice@localhost', 'pw']] });
    });
    after(async () => ts?.stop());

    it('takes the same time for an unknown user and a wrong password (means within 20% over 200 tries)', async () => {
      const time = async (user: string): Promise<number> => {
        const start = process.hrtime.bigint();
        const res = await post(`${ts.httpUrl}/msg/alice`, [user, 'not-the-password']);
        assert.equal(res.status, 401);
        return Number(process.hrtime.bigint() - start) / 1e6;
      };
      for (let i = 0; i < 10; i++) await time(i % 2 ? 'bob' : 'nobody'); // warm-up
      let unknown = 0;
      let wrong = 0;
      for (let i = 0; i < 200; i++) {
        // Interleaved, so load on the machine hits both series alike.
        unknown += await time(`nobody${i}`);
        wrong += await time('bob');
      }
      const ratio = unknown / wrong;
      assert.ok(ratio > 1 / 1.2 && ratio < 1.2, `unknown ${(unknown / 200).toFixed(2)} ms vs wrong ${(wrong / 200).toFixed(2)} ms`);
    });
  });
});
