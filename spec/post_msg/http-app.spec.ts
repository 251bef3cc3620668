// The Koa adapter of post_msg (lib/post_msg/http-app.ts) on a tiny Koa app with a fake ModuleApi:
// routes, OPTIONS/405, Basic auth, CSRF/CORS, rate limit, body limits, delivery and log state.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StanzaError } from '../../lib/host/api.js';
import { load } from '../../lib/post_msg/index.js';
import { fakeModule, type FakeModule, type FakeModuleOptions } from './helpers/fake-module.js';
import { basic, request, type SpecRequest, type SpecResponse } from './helpers/http.js';

const ACCEPT_POST = 'text/plain, application/x-www-form-urlencoded, application/json, text/markdown';
const CHALLENGE = 'Basic realm="localhost/post_msg", charset="UTF-8"';

interface Harness {
  fake: FakeModule;
  url: string;
  server: Server;
  post(path: string, opts?: SpecRequest): Promise<SpecResponse>;
  close(): Promise<void>;
}

async function harness(opts: FakeModuleOptions = {}): Promise<Harness> {
  const fake = fakeModule(opts);
  load(fake.api);
  const server = fake.app().listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    fake,
    url,
    server,
    post: (path, o = {}) =>
      request(`${url}${path}`, {
        ...o,
        headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain', ...o.headers },
        body: o.body ?? (o.chunks ? undefined : 'hello'),
      }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function assertProblem(res: SpecResponse, status: number): Record<string, unknown> {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.type, 'about:blank');
  assert.equal(body.status, status);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  return body;
}

describe('post_msg HTTP adapter', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => h.close());

  describe('mounting', () => {
    it('provides one http app with default path /msg', () => {
      assert.equal(h.fake.basePath(), '/msg');
    });

    it('serves under an overridden base path', async () => {
      const other = await harness({ basePath: '/api/send' });
      try {
        assert.equal((await other.post('/api/send/alice')).status, 201);
        assert.equal((await other.post('/msg/alice')).status, 404);
      } finally {
        await other.close();
      }
    });
  });

  describe('routes', () => {
    it('POST B/<recipient> and POST B (recipient from the payload) and B/ like B', async () => {
      assert.equal((await h.post('/msg/alice')).status, 201);
      const json = { 'Content-Type': 'application/json' };
      assert.equal((await h.post('/msg', { headers: json, body: '{"to":"alice","body":"x"}' })).status, 201);
      assert.equal((await h.post('/msg/', { headers: json, body: '{"to":"alice","body":"x"}' })).status, 201);
      const missing = await h.post('/msg/', { headers: json, body: '{"body":"x"}' });
      assertProblem(missing, 422);
    });

    it('takes the raw path capture: "+" stays "+", a full JID keeps its "/"', async () => {
      await h.post('/msg/alice+tag');
      assert.equal(h.fake.sent.length > 0, true);
      const res = await h.post('/msg/alice+tag');
      assertProblem(res, 404);
      assert.match(String(res.json().detail), /alice\+tag@localhost/);
      const full = await h.post('/msg/alice@localhost/phone');
      assert.equal(full.status, 201);
      assert.equal(full.json().to, 'alice@localhost/phone');
    });

    for (const path of ['/msg', '/msg/', '/msg/alice', '/msg/alice@localhost/x']) {
      it(`OPTIONS ${path}: 204 with Allow and Accept-Post, no authentication needed`, async () => {
        const res = await request(`${h.url}${path}`, { method: 'OPTIONS' });
        assert.equal(res.status, 204);
        assert.equal(res.headers.allow, 'OPTIONS, POST');
        assert.equal(res.headers['accept-post'], ACCEPT_POST);
        assert.equal(res.headers['access-control-allow-origin'], undefined);
        assert.equal(res.headers['vary'], undefined);
      });
    }

    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'PROPFIND']) {
      it(`${method} → 405 with Allow, decided before authentication`, async () => {
        const res = await request(`${h.url}/msg/alice`, { method, headers: { Authorization: basic('bob', 'wrong') } });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'OPTIONS, POST');
        assert.equal(res.headers['www-authenticate'], undefined);
        if (method !== 'HEAD') assertProblem(res, 405);
      });
    }
  });

  describe('authentication', () => {
    it('accepts user@host and bare user (meaning user@<serving host>)', async () => {
      assert.equal((await h.post('/msg/alice', { headers: { Authorization: basic('bob@localhost', 'secret') } })).status, 201);
      assert.equal((await h.post('/msg/alice', { headers: { Authorization: basic('bob', 'secret') } })).status, 201);
      assert.equal((await h.post('/msg/alice', { headers: { Authorization: basic('BOB@LocalHost', 'secret') } })).status, 201, 'normalised before lookup');
    });

    it('passes the bare normalised jid, the password and the client address to users.authenticate', async () => {
      h.fake.authCalls.length = 0;
      await h.post('/msg/alice', { headers: { Authorization: basic('Bob@localhost/ci', 'secret') } });
      assert.deepEqual(h.fake.authCalls, [{ jid: 'bob@localhost', password: 'secret', address: '127.0.0.1' }]);
    });

    it('sends from the bare JID, or with the resource from the credentials', async () => {
      h.fake.sent.length = 0;
      await h.post('/msg/alice', { headers: { Authorization: basic('bob@localhost', 'secret') } });
      await h.post('/msg/alice', { headers: { Authorization: basic('bob@localhost/ci', 'secret') } });
      assert.deepEqual(h.fake.sent.map((s) => s.attrs.from), ['bob@localhost', 'bob@localhost/ci']);
    });

    it('splits at the first colon (passwords may contain ":") and decodes UTF-8', async () => {
      const other = await harness({ users: [['bob@localhost', 'a:b:c'], ['jürgen@localhost', 'pässwörd€'], ['alice@localhost', 'x']] });
      try {
        assert.equal((await other.post('/msg/alice', { headers: { Authorization: basic('bob', 'a:b:c') } })).status, 201);
        assert.equal((await other.post('/msg/alice', { headers: { Authorization: basic('Jürgen', 'pässwörd€') } })).status, 201);
        const latin1 = `Basic ${Buffer.from('jürgen:pässwörd€', 'latin1').toString('base64')}`;
        assertProblem(await other.post('/msg/alice', { headers: { Authorization: latin1 } }), 401);
      } finally {
        await other.close();
      }
    });

    const failures: Array<[string, Record<string, string>]> = [
      ['no header', {}],
      ['another scheme', { Authorization: 'Digest username="bob"' }],
      ['Bearer with base64 user:pw (as Prosody accepts)', { Authorization: `Bearer ${Buffer.from('bob:secret').toString('base64')}` }],
      ['bad base64', { Authorization: 'Basic !!!notbase64' }],
      ['no colon', { Authorization: `Basic ${Buffer.from('bobsecret').toString('base64')}` }],
      ['invalid jid', { Authorization: basic('a@b@c', 'secret') }],
      ['a host not served', { Authorization: basic('bob@elsewhere.example', 'secret') }],
      ['unknown user', { Authorization: basic('nobody', 'secret') }],
      ['wrong password', { Authorization: basic('bob', 'wrong') }],
      ['empty password', { Authorization: basic('bob', '') }],
    ];
    for (const [what, headers] of failures) {
      it(`answers 401 with WWW-Authenticate for ${what}, not saying which part was wrong`, async () => {
        const before = h.fake.sent.length;
        const res = await request(`${h.url}/msg/alice`, { headers: { 'Content-Type': 'text/plain', ...headers }, body: 'x' });
        const body = assertProblem(res, 401);
        assert.equal(res.headers['www-authenticate'], CHALLENGE);
        assert.equal(body.detail, 'Authenticate with HTTP Basic as an account of this server: user (or user@host) and its password.');
        assert.equal(h.fake.sent.length, before);
      });
    }

    it('does not count a request without Authorization as a failed check', async () => {
      h.fake.authCalls.length = 0;
      await request(`${h.url}/msg/alice`, { headers: { 'Content-Type': 'text/plain' }, body: 'x' });
      assert.equal(h.fake.authCalls.length, 0);
    });

    it('answers 429 with Retry-After when the host throttles the address', async () => {
      const other = await harness();
      try {
        other.fake.throttle(42);
        const res = await other.post('/msg/alice');
        assertProblem(res, 429);
        assert.equal(res.headers['retry-after'], '42');
      } finally {
        await other.close();
      }
    });
  });

  describe('payload and limits', () => {
    it('answers 415 with Accept-Post for an unsupported Content-Type, after authentication', async () => {
      const res = await h.post('/msg/alice', { headers: { 'Content-Type': 'text/html' } });
      assertProblem(res, 415);
      assert.equal(res.headers['accept-post'], ACCEPT_POST);
      assert.match(String(res.json().detail), /text\/plain, application\/x-www-form-urlencoded or application\/json/);
      const unauth = await request(`${h.url}/msg/alice`, { headers: { 'Content-Type': 'text/html' }, body: 'x' });
      assert.equal(unauth.status, 401);
    });

    it('answers 415 for a Content-Encoding', async () => {
      assertProblem(await h.post('/msg/alice', { headers: { 'Content-Encoding': 'gzip' } }), 415);
    });

    it('answers 413 by Content-Length without reading the body', async () => {
      const other = await harness({ options: { max_body_bytes: 1024 } });
      try {
        assertProblem(await other.post('/msg/alice', { body: 'x'.repeat(1025) }), 413);
        assert.equal((await other.post('/msg/alice', { body: 'x'.repeat(1024) })).status, 201);
        // A Content-Length far over the limit with no body sent at all: answered at once.
        const res = await request(`${other.url}/msg/alice`, {
          headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain', 'Content-Length': String(1 << 30) },
          chunks: (async function* () {
            await new Promise((r) => setTimeout(r, 5000));
            yield Buffer.alloc(0);
          })(),
          timeoutMs: 3000,
        });
        assertProblem(res, 413);
        assert.equal(res.headers.connection, 'close');
      } finally {
        await other.close();
      }
    });

    it('answers 413 for a chunked body once over the limit, without reading the rest', async () => {
      const other = await harness({ options: { max_body_bytes: 1024 } });
      let sent = 0;
      try {
        const res = await request(`${other.url}/msg/alice`, {
          headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain' },
          chunks: (async function* () {
            for (let i = 0; i < 200; i++) {
              sent += 1;
              yield Buffer.alloc(512, 0x61);
              await new Promise((r) => setTimeout(r, 20));
            }
          })(),
        });
        assertProblem(res, 413);
        assert.ok(sent < 50, `the answer came after ${sent} chunks of 200`);
        assert.equal(other.fake.sent.length, 0);
      } finally {
        await other.close();
      }
    });
  });

  describe('delivery', () => {
    it('answers 201 with {id, to, outcome} and sends the stanza', async () => {
      const before = h.fake.sent.length;
      const res = await h.post('/msg/alice', { body: 'db1 is down' });
      assert.equal(res.status, 201);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['id', 'outcome', 'to']);
      assert.equal(body.to, 'alice@localhost');
      assert.equal(body.outcome, 'delivered');
      const stanza = h.fake.sent[before]!;
      assert.equal(stanza.attrs.id, body.id);
      assert.equal(stanza.getChildText('body'), 'db1 is down');
    });

    it('gives every message a fresh id', async () => {
      const ids = new Set<unknown>();
      for (let i = 0; i < 5; i++) ids.add((await h.post('/msg/alice')).json().id);
      assert.equal(ids.size, 5);
    });

    it('passes the routing outcome on (stored, discarded)', async () => {
      const other = await harness();
      try {
        other.fake.setSendResult('stored');
        assert.equal((await other.post('/msg/alice')).json().outcome, 'stored');
        other.fake.setSendResult('discarded');
        assert.equal((await other.post('/msg/alice', { headers: { 'Content-Type': 'application/json' }, body: '{"type":"headline","body":"x"}' })).json().outcome, 'discarded');
      } finally {
        await other.close();
      }
    });

    it('answers 404 for a local recipient without an account, sending nothing', async () => {
      const before = h.fake.sent.length;
      const res = await h.post('/msg/alcie');
      assertProblem(res, 404);
      assert.match(String(res.json().detail), /alcie@localhost/);
      assert.equal(h.fake.sent.length, before);
    });

    it('maps routing errors: service-unavailable 403, internal ones 500 with a generic detail and a log line', async () => {
      const other = await harness();
      try {
        other.fake.setSendResult(new StanzaError('service-unavailable'));
        assertProblem(await other.post('/msg/alice'), 403);
        other.fake.setSendResult(new StanzaError('internal-server-error', 'sqlite: disk I/O error'));
        const res = await other.post('/msg/alice');
        const body = assertProblem(res, 500);
        assert.doesNotMatch(String(body.detail), /sqlite|disk/);
        assert.ok(other.fake.logs.some((l) => l.level === 50 && JSON.stringify(l).includes('disk I/O error')));
      } finally {
        await other.close();
      }
    });

    it('lets other errors reach the host (which answers 500 and logs with the module name)', async () => {
      const other = await harness();
      try {
        other.fake.setSendResult(new Error('boom'));
        const res = await other.post('/msg/alice');
        assert.equal(res.status, 500);
      } finally {
        await other.close();
      }
    });
  });

  describe('CSRF and CORS', () => {
    it('refuses a POST from a foreign Origin with 403 and sends nothing', async () => {
      const before = h.fake.sent.length;
      const res = await h.post('/msg/alice', { headers: { Origin: 'https://evil.example' } });
      assertProblem(res, 403);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(h.fake.sent.length, before);
    });

    it('refuses Origin: null and Sec-Fetch-Site: cross-site without an allowed Origin', async () => {
      assertProblem(await h.post('/msg/alice', { headers: { Origin: 'null' } }), 403);
      assertProblem(await h.post('/msg/alice', { headers: { 'Sec-Fetch-Site': 'cross-site' } }), 403);
    });

    it('accepts the server\'s own origin and requests without Origin (curl)', async () => {
      const host = new URL(h.url).host;
      const res = await h.post('/msg/alice', { headers: { Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' } });
      assert.equal(res.status, 201);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
    });

    it('checks the Origin before the credentials (no auth attempt is made)', async () => {
      h.fake.authCalls.length = 0;
      await h.post('/msg/alice', { headers: { Origin: 'https://evil.example' } });
      assert.equal(h.fake.authCalls.length, 0);
    });

    it('accepts an Origin listed in cors_origins and echoes it, with Vary: Origin', async () => {
      const other = await harness({ options: { cors_origins: ['https://dash.example.org'] } });
      try {
        const res = await other.post('/msg/alice', { headers: { Origin: 'https://dash.example.org', 'Sec-Fetch-Site': 'cross-site' } });
        assert.equal(res.status, 201);
        assert.equal(res.headers['access-control-allow-origin'], 'https://dash.example.org');
        assert.equal(res.headers.vary, 'Origin');
        const denied = await other.post('/msg/alice', { headers: { Origin: 'https://dash.example.org', Authorization: basic('bob', 'no') } });
        assert.equal(denied.status, 401);
        assert.equal(denied.headers['access-control-allow-origin'], 'https://dash.example.org', 'the page can read the error');
        const pre = await request(`${other.url}/msg/alice`, { method: 'OPTIONS', headers: { Origin: 'https://dash.example.org', 'Access-Control-Request-Method': 'POST' } });
        assert.equal(pre.status, 204);
        assert.equal(pre.headers['access-control-allow-origin'], 'https://dash.example.org');
        assert.equal(pre.headers['access-control-allow-methods'], 'OPTIONS, POST');
        assert.equal(pre.headers['access-control-allow-headers'], 'Authorization, Content-Type');
        assert.equal(pre.headers.vary, 'Origin');
        const other2 = await request(`${other.url}/msg/alice`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
        assert.equal(other2.status, 204, 'OPTIONS is never refused');
        assert.equal(other2.headers['access-control-allow-origin'], undefined);
      } finally {
        await other.close();
      }
    });
  });

  describe('rate limit', () => {
    it('answers 429 with Retry-After once an account used its burst, other accounts unaffected', async () => {
      const other = await harness({ options: { rate_burst: 3, rate_per_second: 0.01 } });
      try {
        for (let i = 0; i < 3; i++) assert.equal((await other.post('/msg/alice')).status, 201);
        const res = await other.post('/msg/alice');
        assertProblem(res, 429);
        assert.ok(Number(res.headers['retry-after']) >= 1);
        assert.equal((await other.post('/msg/bob', { headers: { Authorization: basic('alice', 'pw') } })).status, 201);
      } finally {
        await other.close();
      }
    });
  });

  describe('log state', () => {
    it('sets account, recipient and stanza id for the host\'s request line, never secrets or the body', async () => {
      h.fake.states.length = 0;
      const res = await h.post('/msg/alice', { body: 'top secret body' });
      const state = h.fake.states[0]!;
      assert.equal(state.account, 'bob@localhost');
      assert.equal(state.log?.recipient, 'alice@localhost');
      assert.equal(state.log?.stanza_id, res.json().id);
      assert.equal(state.log?.outcome, 'delivered');
      const text = JSON.stringify(state);
      assert.doesNotMatch(text, /secret|top secret body|Basic /);
      const infoLogs = h.fake.logs.filter((l) => (l.level as number) >= 30);
      assert.doesNotMatch(JSON.stringify(infoLogs), /top secret body|secret/);
      assert.ok(h.fake.logs.some((l) => l.level === 20 && l.body === 'top secret body'), 'the body only at debug');
    });
  });
});
