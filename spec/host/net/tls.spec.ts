// loadOrCreateTls (lib/host/tls.ts): the configured pair, or a self-signed one generated once under data_dir.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadOrCreateTls } from '../../../lib/host/net/tls.js';
import { HostError } from '../../../lib/host/util/errors.js';
import { testTls } from '../../helpers/server.js';

function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void out.push(l) });
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('loadOrCreateTls()', () => {
  it('generates a self-signed P-256 pair for localhost once, logs it, and reuses it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-tls-'));
    try {
      const { log, lines } = capture();
      const first = await loadOrCreateTls({ dataDir, log });
      assert.equal(first.selfSigned, true);
      const x509 = new X509Certificate(first.cert);
      assert.equal(x509.checkHost('localhost'), 'localhost');
      assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
      assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(lines().some((l) => l.level === 40 && /generated a self-signed/.test(String(l.msg))), 'warns that it generated one');
      assert.equal(statSync(join(dataDir, 'tls')).mode & 0o777, 0o700);
      assert.equal(statSync(join(dataDir, 'tls', 'localhost.key')).mode & 0o777, 0o600, 'the key is private');

      const second = await loadOrCreateTls({ dataDir, log });
      assert.equal(second.cert, first.cert, 'reused, not regenerated');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('reads the configured pair', async () => {
    const { log } = capture();
    const pair = await loadOrCreateTls({ tls: testTls(), dataDir: '/nonexistent', log });
    assert.equal(pair.selfSigned, false);
    assert.match(pair.cert, /BEGIN CERTIFICATE/);
  });

  it('names the unreadable file in a HOST_ERR_TLS error', async () => {
    const { log } = capture();
    await assert.rejects(
      loadOrCreateTls({ tls: { cert: '/nonexistent/cert.pem', key: testTls().key }, dataDir: '/tmp', log }),
      (err: unknown) => err instanceof HostError && err.code === 'HOST_ERR_TLS' && err.message.includes('/nonexistent/cert.pem'),
    );
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmppd-tls-bad-'));
    try {
      const { log } = capture();
      const other = await loadOrCreateTls({ dataDir: dir, log });
      const keyFile = join(dir, 'other.key');
      writeFileSync(keyFile, other.key);
      await assert.rejects(
        loadOrCreateTls({ tls: { cert: testTls().cert, key: keyFile }, dataDir: dir, log }),
        (err: unknown) => err instanceof HostError && err.code === 'HOST_ERR_TLS' && /does not belong/.test(err.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
