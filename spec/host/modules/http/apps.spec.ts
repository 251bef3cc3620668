// The HTTP layer: virtual host selection by Host, app lookup by base path, problem+json 404/500, request log.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { request, type Server } from 'node:http';
import pino from 'pino';
import Router from 'koa-router';
import { HttpApps, createHttpApp, hostName } from '../../../../lib/host/modules/http/apps.js';
import type { HttpLogState } from '../../../../lib/host/api.js';

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
  });

  describe('dispatcher', () => {
    let srv: Awaited<ReturnType<typeof serve>>;
    let defaultHost: string | undefined;
    before(async () => {
      const apps = new HttpApps(() => defaultHost);
      apps.mount('a.test', 'one', '/one', app('a-one'));
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
