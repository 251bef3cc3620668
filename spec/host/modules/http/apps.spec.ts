// The HTTP layer: virtual host selection by Host, app lookup by base path, problem+json 404/500, request log.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { request, type Server } from 'node:http';
import pino from 'pino';
import Router from 'koa-router';
import { HttpApps, createHttpApp, hostName } from '../../../../lib/host/modules/http/apps.js';
import type { HttpLogState } from '../../../../lib/host/api.js';
import { sendProblem } from '../../../../lib/host/util/problem.js';

function app(name: string): Router {
  const r = new Router();
  r.all('/*rest', (ctx) => {
    (ctx.state as HttpLogState).account = `${name}-user`;
    ctx.body = { app: name, path: ctx.path };
  });
  r.get('/', (ctx) => {
    ctx.body = { app: name, path: ctx.path };
  });
  return r;
}

async function serve(apps: HttpApps): Promise<{ url: string; lines: string[]; close: () => Promise<void> }> {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const server: Server = createHttpApp(apps, log).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, lines, close: () => new Promise((r) => server.close(() => r())) };
}

/** fetch() drops a custom Host header, so the dispatcher specs use node:http. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: () => Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: async () => JSON.parse(text) as unknown });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP', () => {
  describe('hostName()', () => {
    it('drops the port and lowercases', () => {
      assert.equal(hostName('Example.ORG:5280'), 'example.org');
      assert.equal(hostName('[::1]:5280'), '[::1]');
      assert.equal(hostName('localhost'), 'localhost');
    });

    it('normalises like a JID domain: trailing dot, A-label and U-label, any case, IPv6 canonical', () => {
      assert.equal(hostName('example.org.'), 'example.org');
      assert.equal(hostName('EXAMPLE.org.:80'), 'example.org');
      assert.equal(hostName('xn--bcher-kva.example'), 'bücher.example');
      assert.equal(hostName('XN--BCHER-KVA.Example.:8080'), 'bücher.example');
      assert.equal(hostName('BÜCHER.example'), 'bücher.example');
      assert.equal(hostName('[0:0::1]:5280'), '[::1]');
      assert.equal(hostName('[2001:DB8::1]'), '[2001:db8::1]');
      assert.equal(hostName('127.0.0.1:5280'), '127.0.0.1');
    });

    it('answers undefined for what names no domain', () => {
      for (const bad of ['', ':80', 'alice@example.org', 'example.org/x', '[::1', '[::1]x', 'a:b:c', 'a b', 'exa_mple.org', '[zz]']) {
        assert.equal(hostName(bad), undefined, bad);
      }
    });

    it('reads Object.prototype names as plain domains, not as keys of anything', () => {
      assert.equal(hostName('constructor'), 'constructor');
      assert.equal(hostName('__proto__'), undefined, 'an underscore is not LDH');
    });
  });

  describe('dispatcher', () => {
    let srv: Awaited<ReturnType<typeof serve>>;
    let defaultHost: string | undefined;
    before(async () => {
      // c.test is served but has no app; bücher.example is an IDN host.
      const apps = new HttpApps(() => defaultHost, ['a.test', 'b.test', 'c.test', 'bücher.example']);
      apps.mount('a.test', 'one', '/one', app('a-one'));
      apps.mount('bücher.example', 'idn', '/idn', app('idn'));
      apps.mount('b.test', 'one', '/one', app('b-one'));
      apps.mount('b.test', 'two', '/two', app('b-two'));
      const boom = new Router();
      boom.get('/', () => {
        throw new Error('secret internal detail');
      });
      apps.mount('b.test', 'boom', '/boom', boom);
      // A careless module: log fields that must never reach a line as they are.
      const careless = new Router();
      careless.get('/', (ctx) => {
        (ctx.state as { log?: unknown }).log = { note: 'kept', password: 'hunter2', authorization: 'Basic aHVudGVyMg==', nested: { password: 'deep-secret' } };
        ctx.body = { ok: true };
      });
      apps.mount('b.test', 'careless', '/careless', careless);
      // A detail that quotes input, as apps' details do (a name from the query, decoded).
      const echo = new Router();
      echo.get('/', (ctx) => sendProblem(ctx, { status: 400, detail: `There is no ${String(ctx.query.name)}; check the name.` }));
      apps.mount('b.test', 'echo', '/echo', echo);
      srv = await serve(apps);
    });
    after(() => srv.close());

    const getOn = (path: string, host: string) => get(`${srv.url}${path}`, { host });

    it('picks the virtual host named by Host, port ignored, case-insensitive', async () => {
      assert.deepEqual(await (await getOn('/one/x', 'A.TEST:8080')).json(), { app: 'a-one', path: '/one/x' });
      assert.deepEqual(await (await getOn('/one/x', 'b.test')).json(), { app: 'b-one', path: '/one/x' });
    });

    it('falls back to http_default_host for an unknown Host', async () => {
      defaultHost = 'a.test';
      assert.deepEqual(await (await getOn('/one/x', '127.0.0.1')).json(), { app: 'a-one', path: '/one/x' });
      defaultHost = undefined;
    });

    it('without a default, uses the only host that has the app, else 404', async () => {
      assert.deepEqual(await (await getOn('/two/x', '127.0.0.1')).json(), { app: 'b-two', path: '/two/x' });
      const res = await getOn('/one/x', '127.0.0.1');
      assert.equal(res.status, 404);
      assert.equal(res.headers['content-type'], 'application/problem+json');
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.title, 'Not Found');
      assert.equal(body.status, 404);
      assert.match(String(body.detail), /Nothing is served at \/one\/x/);
    });

    it('finds a virtual host by any spelling of its name: A-label, case, trailing dot, port', async () => {
      for (const host of ['xn--bcher-kva.example', 'XN--BCHER-KVA.EXAMPLE.:8080', 'A.Test.:1']) {
        const res = await getOn(host.startsWith('A') ? '/one/x' : '/idn/x', host);
        assert.equal(res.status, 200, host);
      }
    });

    it("a served virtual host without the app answers 404, never another host's app, with or without a default", async () => {
      for (const fallback of [undefined, 'a.test']) {
        defaultHost = fallback;
        assert.equal((await getOn('/one/x', 'c.test')).status, 404, 'a.test and b.test have /one');
        assert.equal((await getOn('/two/x', 'C.TEST.')).status, 404, 'only b.test has /two');
        assert.equal((await getOn('/two/x', 'a.test')).status, 404, 'a.test has /one only');
      }
      defaultHost = undefined;
    });

    it('treats Host: constructor, __proto__ and toString as unknown hosts (default host, or the only one with the app)', async () => {
      for (const host of ['constructor', '__proto__', 'toString', 'hasOwnProperty:80']) {
        assert.deepEqual(await (await getOn('/two/x', host)).json(), { app: 'b-two', path: '/two/x' }, host);
        assert.equal((await getOn('/one/x', host)).status, 404, host);
        defaultHost = 'a.test';
        assert.deepEqual(await (await getOn('/one/x', host)).json(), { app: 'a-one', path: '/one/x' }, host);
        defaultHost = undefined;
      }
    });

    it('escapes bidi and invisible characters of quoted input in a problem detail (sendProblem)', async () => {
      const res = await getOn('/echo?name=nothing%E2%80%AEtxt.exe%E2%81%A6%E2%80%8B', 'b.test');
      assert.equal(res.status, 400);
      const detail = String(((await res.json()) as Record<string, unknown>).detail);
      assert.ok(!/[\u202e\u2066\u200b]/u.test(detail), detail);
      assert.match(detail, /nothing\\u202etxt\.exe\\u2066\\u200b/);
    });

    it('does not match a path that only starts like the base path', async () => {
      assert.equal((await getOn('/onex', 'a.test')).status, 404);
    });

    it('answers 500 problem+json for a throwing handler, and logs the module, not the client', async () => {
      const res = await getOn('/boom', 'b.test');
      assert.equal(res.status, 500);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.title, 'Internal Server Error');
      assert.ok(!JSON.stringify(body).includes('secret internal detail'));
      const line = srv.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'HTTP handler failed');
      assert.equal(line?.module, 'boom');
      assert.match(JSON.stringify(line?.err), /secret internal detail/);
    });

    it('logs one line per request with method, path, status, ms and account, never Authorization', async () => {
      await get(`${srv.url}/one/logged`, { host: 'a.test', authorization: 'Basic c2VjcmV0OnBhc3N3b3Jk' });
      const line = srv.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.path === '/one/logged');
      assert.ok(line);
      assert.equal(line.method, 'GET');
      assert.equal(line.status, 200);
      assert.equal(typeof line.ms, 'number');
      assert.equal(line.account, 'a-one-user');
      assert.ok(!srv.lines.join('').includes('c2VjcmV0OnBhc3N3b3Jk'));
    });

    it("redacts a module's password or authorization log field and drops fields that are not strings or numbers", async () => {
      assert.equal((await getOn('/careless', 'b.test')).status, 200);
      const line = srv.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.path === '/careless');
      assert.ok(line);
      assert.equal(line.note, 'kept');
      assert.equal(line.password, '[redacted]');
      assert.equal(line.authorization, '[redacted]');
      assert.equal('nested' in line, false);
      for (const secret of ['hunter2', 'aHVudGVyMg==', 'deep-secret']) assert.ok(!srv.lines.join('').includes(secret), secret);
    });
  });

  describe('HttpApps#mount()', () => {
    it('refuses a second app on the same base path of a host', () => {
      const apps = new HttpApps(() => undefined);
      apps.mount('h', 'one', '/x', new Router());
      assert.throws(() => apps.mount('h', 'two', '/x', new Router()), { code: 'HOST_ERR_HTTP_PATH_TAKEN' });
    });
  });
});
