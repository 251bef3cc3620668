// What the http module decides for every app, here one that is not post_msg: OPTIONS and 405 from its declared
// methods before the app runs, CORS for its allowed origins, the cross-site guard; and trusted_proxies.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import pino from 'pino';
import Router from 'koa-router';
import { HttpApps, createHttpApp } from '../../../../lib/host/modules/http/apps.js';
import { clientAddress, trustedProxies } from '../../../../lib/host/modules/http/client-address.js';
import { request } from '../../../post_msg/helpers/http.js';

describe('http module', () => {
  let server: Server;
  let url: string;
  const seen: Array<{ method: string; ip: string }> = [];
  before(async () => {
    const apps = new HttpApps(() => 'a.test');
    const router = new Router();
    router.all('/*rest', (ctx) => {
      seen.push({ method: ctx.method, ip: ctx.request.ip });
      // Stands for the app's own authentication: the policy must answer before it.
      if (ctx.get('authorization') !== 'ok') {
        ctx.status = 401;
        ctx.body = 'who?';
        return;
      }
      ctx.body = { ip: ctx.request.ip };
    });
    apps.mount('a.test', 'notes', '/notes', router, {
      methods: ['GET', 'PUT'],
      optionsHeaders: { 'Accept-Patch': 'text/plain' },
      corsOrigins: ['https://app.example'],
      corsHeaders: ['Authorization'],
    });
    // An app whose only credential is in the request (http_file_share's slot token): any page may call it.
    const files = new Router();
    files.all('/*rest', (ctx) => {
      seen.push({ method: ctx.method, ip: ctx.request.ip });
      ctx.body = 'stored';
    });
    apps.mount('a.test', 'files', '/files', files, { methods: ['GET', 'PUT'], corsAnyOrigin: true });
    const koa = createHttpApp(apps, pino({ level: 'silent' }), { trustedProxies: trustedProxies(['127.0.0.1', '10.0.0.0/8']) });
    server = koa.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  describe('OPTIONS and 405', () => {
    it('answers OPTIONS with the declared methods and headers, without running the app', async () => {
      seen.length = 0;
      const res = await request(`${url}/notes/x`, { method: 'OPTIONS' });
      assert.equal(res.status, 204);
      assert.equal(res.headers.allow, 'OPTIONS, GET, PUT');
      assert.equal(res.headers['accept-patch'], 'text/plain');
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(seen.length, 0);
    });

    it('answers 405 problem+json with Allow to any other method, before the app authenticates', async () => {
      seen.length = 0;
      const res = await request(`${url}/notes/x`, { method: 'POST', body: 'x' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, 'OPTIONS, GET, PUT');
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(seen.length, 0);
    });

    it('passes a declared method to the app', async () => {
      assert.equal((await request(`${url}/notes/x`, { method: 'GET', headers: { authorization: 'ok' } })).status, 200);
    });
  });

  describe('CORS and the cross-site guard', () => {
    it('adds CORS headers to a preflight only for an allowed origin', async () => {
      const ok = await request(`${url}/notes/x`, { method: 'OPTIONS', headers: { Origin: 'https://app.example' } });
      assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(ok.headers['access-control-allow-methods'], 'OPTIONS, GET, PUT');
      assert.equal(ok.headers['access-control-allow-headers'], 'Authorization');
      assert.equal(ok.headers.vary, 'Origin');
      const other = await request(`${url}/notes/x`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
      assert.equal(other.status, 204);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    });

    it('refuses an unsafe request from a foreign origin or marked cross-site with 403, before the app', async () => {
      seen.length = 0;
      for (const headers of [{ Origin: 'https://evil.example' }, { Origin: 'null' }, { 'Sec-Fetch-Site': 'cross-site' }] as Array<Record<string, string>>) {
        const res = await request(`${url}/notes/x`, { method: 'PUT', body: 'x', headers: { authorization: 'ok', ...headers } });
        assert.equal(res.status, 403, JSON.stringify(headers));
        assert.equal(res.headers['access-control-allow-origin'], undefined);
      }
      assert.equal(seen.length, 0);
    });

    it("lets the server's own origin, an allowed origin and a safe method through; CORS headers reach the app's errors", async () => {
      const self = await request(`${url}/notes/x`, { method: 'PUT', body: 'x', headers: { authorization: 'ok', Origin: url } });
      assert.equal(self.status, 200);
      assert.equal(self.headers['access-control-allow-origin'], undefined);
      const allowed = await request(`${url}/notes/x`, { method: 'PUT', body: 'x', headers: { Origin: 'https://app.example', 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(allowed.status, 401);
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example');
      const safe = await request(`${url}/notes/x`, { method: 'GET', headers: { authorization: 'ok', Origin: 'https://evil.example' } });
      assert.equal(safe.status, 200);
      assert.equal(safe.headers['access-control-allow-origin'], undefined);
    });

    it('an app open to any origin answers the preflight and the request of any page with *, and only that app', async () => {
      const pre = await request(`${url}/files/x`, { method: 'OPTIONS', headers: { Origin: 'https://chat.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization, content-type' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers['access-control-allow-origin'], '*');
      assert.equal(pre.headers['access-control-allow-methods'], 'OPTIONS, GET, PUT');
      assert.equal(pre.headers['access-control-allow-headers'], 'Authorization, Content-Type');
      assert.equal(pre.headers['access-control-allow-credentials'], undefined);
      seen.length = 0;
      const put = await request(`${url}/files/x`, { method: 'PUT', body: 'x', headers: { Origin: 'https://chat.example', 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(put.status, 200);
      assert.equal(put.headers['access-control-allow-origin'], '*');
      assert.equal(seen.length, 1);
      // No Origin at all (curl): no CORS headers.
      assert.equal((await request(`${url}/files/x`, { method: 'GET' })).headers['access-control-allow-origin'], undefined);
      // The other app of the same host keeps its guard.
      const notes = await request(`${url}/notes/x`, { method: 'PUT', body: 'x', headers: { authorization: 'ok', Origin: 'https://chat.example' } });
      assert.equal(notes.status, 403);
      assert.equal(notes.headers['access-control-allow-origin'], undefined);
    });
  });

  describe('trusted_proxies', () => {
    it('takes the client from X-Forwarded-For when the peer is a trusted proxy: the rightmost untrusted hop', async () => {
      const res = await request(`${url}/notes/x`, { method: 'GET', headers: { authorization: 'ok', 'X-Forwarded-For': '6.6.6.6, 203.0.113.7, 10.1.2.3' } });
      assert.deepEqual(res.json(), { ip: '203.0.113.7' });
    });

    it('ignores X-Forwarded-For from a peer that is not trusted', () => {
      const trusted = trustedProxies(['10.0.0.0/8', '::1']);
      assert.equal(clientAddress('198.51.100.1', '203.0.113.7', trusted), '198.51.100.1');
      assert.equal(clientAddress('::ffff:10.0.0.1', '203.0.113.7', trusted), '203.0.113.7');
      assert.equal(clientAddress('::1', '10.0.0.2, 10.0.0.3', trusted), '10.0.0.2', 'every hop trusted: the leftmost');
      assert.equal(clientAddress('10.0.0.1', 'unknown', trusted), '10.0.0.1', 'a hop that is no address ends the chain');
      assert.equal(clientAddress('10.0.0.1', undefined, trusted), '10.0.0.1');
    });

    it('without trusted proxies, the peer address is the client', () => {
      assert.equal(clientAddress('127.0.0.1', '203.0.113.7', trustedProxies([])), '127.0.0.1');
    });
  });
});
