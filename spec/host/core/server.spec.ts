// The whole server: HTTPS with the TLS pair, modules per virtual host, clean idempotent stop.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { startTestServer } from '../../helpers/server.js';

function httpsGet(port: number, path: string): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, servername: 'localhost' }, (res) => {
      const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol() ?? '';
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Server', () => {
  it('serves HTTPS on https_ports with the TLS pair, TLS 1.2 or newer', async () => {
    const t = await startTestServer({ config: { https_ports: [0], modules_enabled: [] } });
    try {
      const port = t.server.httpsPorts()[0]!;
      const res = await httpsGet(port, '/nothing');
      assert.equal(res.status, 404);
      assert.equal((JSON.parse(res.body) as { status: number }).status, 404);
      assert.match(res.protocol, /^TLSv1\.[23]$/);
    } finally {
      await t.stop();
    }
  });

  it('opens the listeners modules provide as net items; modules_disabled: [c2s] means no client listener', async () => {
    const t = await startTestServer({ config: { modules_enabled: [], modules_disabled: ['c2s'], c2s_direct_tls_ports: [0] } });
    try {
      assert.equal(t.server.modules.isLoaded('*', 'c2s'), false);
      assert.deepEqual(t.server.c2sPorts(), []);
      assert.deepEqual(t.server.c2sTlsPorts(), []);
      assert.equal(t.server.httpPorts().length, 1);
    } finally {
      await t.stop();
    }
  });

  it('loads the core modules on every virtual host, optional ones where enabled', async () => {
    const t = await startTestServer({ config: { modules_enabled: [], virtual_hosts: { 'a.test': { modules_enabled: ['post_msg'] }, 'b.test': {} }, http_default_host: 'a.test' } });
    try {
      assert.equal(t.server.modules.isLoaded('*', 'c2s'), true, 'c2s is global: one listener for the server');
      assert.equal(t.server.modules.isLoaded('*', 'http'), true);
      assert.equal(t.server.modules.isLoaded('a.test', 'c2s_host'), true);
      assert.equal(t.server.modules.isLoaded('b.test', 'c2s_host'), true);
      assert.equal(t.server.modules.isLoaded('a.test', 'post_msg'), true);
      assert.equal(t.server.modules.isLoaded('b.test', 'post_msg'), false);
    } finally {
      await t.stop();
    }
  });

  it('stops idempotently: listeners closed, modules unloaded, database closed', async () => {
    const t = await startTestServer({ config: { modules_enabled: [] } });
    const url = t.httpUrl;
    await Promise.all([t.server.stop(), t.server.stop()]);
    await assert.rejects(fetch(`${url}/`));
    assert.equal(t.server.modules.isLoaded('localhost', 'c2s'), false);
    await assert.rejects(t.server.users.exists('a@localhost'), /database connection is not open/);
    await t.stop();
    assert.match(t.logText(), /"msg":"stopped"/);
  });

  it("announces account changes made through the server as 'user-changed'", async () => {
    const t = await startTestServer({ config: { modules_enabled: [] } });
    try {
      const seen: unknown[] = [];
      t.server.globalBus.add('user-changed', (p) => void seen.push(p));
      await t.server.users.create('eve@localhost', 'eve-pw');
      await t.server.users.setPassword('eve@localhost', 'eve-pw2');
      await t.server.users.delete('eve@localhost');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(seen, [
        { jid: 'eve@localhost', change: 'created' },
        { jid: 'eve@localhost', change: 'password' },
        { jid: 'eve@localhost', change: 'deleted' },
      ]);
    } finally {
      await t.stop();
    }
  });

  it('refuses to start with an invalid config, naming the key', async () => {
    await assert.rejects(startTestServer({ config: { c2s_timeout: 'soon' } }), (err: Error & { code?: string }) => err.code === 'HOST_ERR_CONFIG_INVALID' && /c2s_timeout: expected an integer/.test(err.message));
  });
});
