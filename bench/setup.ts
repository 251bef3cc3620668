// Benchmark helper: a temporary directory with a self-signed TLS pair, the server's config file, and the accounts
// (sender, receivers, idle ones) created in its data directory before the server child starts.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moduleCatalog, openUsers, readConfig } from '../lib/host/core/server.js';
import { loadStorage } from '../lib/host/core/storage/manager.js';
import { scramRecord } from '../lib/host/core/users.js';

export interface BenchDir {
  dir: string;
  dataDir: string;
  cert: string;
  key: string;
  /** The certificate's PEM: the clients trust it and nothing else. */
  ca: string;
}

export function makeBenchDir(): BenchDir {
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-bench-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  // Same pair as the specs' testTls(): P-256, CN and SAN localhost / 127.0.0.1.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { dir, dataDir: join(dir, 'data'), cert, key, ca: readFileSync(cert, 'utf8') };
}

export const DOMAIN = 'localhost';

/**
 * Write a config file for the server child. No pbkdf2_iterations: the default (10000) is what is measured.
 * post_msg's per-account rate limit is raised out of the way, since one sender account drives all the load
 * (Prosody's mod_post_msg has no rate limit).
 */
export function writeConfig(bench: BenchDir, name: string, opts: { logLevel: 'warn' | 'info' }): string {
  const path = join(bench.dir, `${name}.yaml`);
  const config = {
    data_dir: bench.dataDir,
    log_level: opts.logLevel,
    http_ports: [0],
    http_interfaces: ['127.0.0.1'],
    c2s_ports: [0],
    s2s_ports: [0],
    c2s_direct_tls_ports: [0],
    c2s_interfaces: ['127.0.0.1'],
    tls: { cert: bench.cert, key: bench.key },
    http_default_host: DOMAIN,
    modules_enabled: ['post_msg'],
    post_msg: { rate_per_second: 100000, rate_burst: 1000000 },
    // The offline row stores every message for one account: the per-account quota would answer 507 after 10,000.
    message: { storage_archive_item_limit: 100_000_000 },
    virtual_hosts: { [DOMAIN]: {} },
  };
  // YAML is a superset of JSON.
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

export interface Account {
  username: string;
  password: string;
}

/** Create accounts the ordinary way (UserService.create: SASLprep, two PBKDF2 derivations each). */
export async function createAccounts(configPath: string, accounts: readonly Account[]): Promise<void> {
  const { config } = readConfig({ configPath });
  const { storage, users } = await openUsers(config);
  try {
    for (const a of accounts) await users.create(`${a.username}@${DOMAIN}`, a.password);
  } finally {
    storage.close();
  }
}

/**
 * Create many idle accounts sharing one derived credential (same salt and password), through the storage
 * interface: 10,000 accounts the ordinary way cost 20,000 PBKDF2 runs (~50 s here) and measure nothing.
 * Logging in still costs one PBKDF2 each, since the credential cache is keyed by JID.
 */
export async function createIdleAccounts(configPath: string, usernames: readonly string[], password: string): Promise<void> {
  const { config } = readConfig({ configPath });
  const storage = await loadStorage(config, moduleCatalog(config.plugin_paths));
  try {
    const record = await scramRecord('', password, randomBytes(16), config.pbkdf2_iterations);
    for (const username of usernames) await storage.users.create({ ...record, jid: `${username}@${DOMAIN}` });
  } finally {
    storage.close();
  }
}

/** Printable text of exactly `size` bytes (ASCII, no XML-special characters). */
export function textBody(size: number): Buffer {
  const phrase = 'The quick brown fox jumps over the lazy dog. ';
  return Buffer.from(phrase.repeat(Math.ceil(size / phrase.length)).slice(0, size), 'ascii');
}
