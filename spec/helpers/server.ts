// Test harness: the real server on ephemeral 127.0.0.1 ports with a temporary data directory,
// its log lines captured in memory so specs can check what was (and was not) logged.

import { mkdtempSync, rmSync, existsSync, mkdirSync, appendFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type Server } from '../../lib/host/core/server.js';

export interface TestServer {
  server: Server;
  httpUrl: string;
  c2sPort: number;
  c2sTlsPort: number | undefined;
  dataDir: string;
  /** Every log line so far, newline-separated JSON. */
  logText(): string;
  /** Parsed log lines. */
  logLines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Merged over the test defaults (ephemeral ports, temp data dir, 4096 PBKDF2 iterations). */
  config?: Record<string, unknown>;
  users?: Array<[jid: string, password: string]>;
  /** Keep the data directory after stop (crash/restart specs). */
  dataDir?: string;
}

/**
 * Under `npm test` every test server's log lines (and the passwords the specs used) are also
 * appended to this folder, so scripts/check-log-secrets.ts can check the whole run's logs.
 */
const RUN_LOG_DIR = process.env.XMPPD_SPEC_LOG_DIR;

function keepForRunCheck(kind: 'jsonl' | 'secrets', text: string): void {
  if (RUN_LOG_DIR) appendFileSync(join(RUN_LOG_DIR, `${process.pid}.${kind}`), text);
}

let sharedTls: { cert: string; key: string } | undefined;

/** One self-signed pair per test process: generating one per server would only slow the specs down. */
export function testTls(): { cert: string; key: string } {
  if (sharedTls) return sharedTls;
  const dir = join(tmpdir(), `xmppd-test-tls-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  if (!existsSync(cert)) {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
  }
  sharedTls = { cert, key };
  return sharedTls;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'xmppd-spec-'));
  const lines: string[] = [];
  const destination = {
    write: (line: string) => {
      lines.push(line);
      keepForRunCheck('jsonl', line);
    },
  };
  const config = {
    data_dir: dataDir,
    // debug, so the run's log check also sees what may only appear at debug (message bodies).
    log_level: 'debug',
    http_ports: [0],
    http_interfaces: ['127.0.0.1'],
    c2s_ports: [0],
    s2s_ports: [0],
    c2s_direct_tls_ports: [0],
    c2s_interfaces: ['127.0.0.1'],
    pbkdf2_iterations: 4096,
    tls: testTls(),
    http_default_host: 'localhost',
    modules_enabled: ['post_msg'],
    virtual_hosts: { localhost: {} },
    ...opts.config,
  };
  const server = await startServer({ config, logDestination: destination });
  for (const [jid, password] of opts.users ?? []) {
    keepForRunCheck('secrets', `${JSON.stringify({ jid, password })}\n`);
    await server.users.create(jid, password);
  }
  return {
    server,
    httpUrl: `http://127.0.0.1:${server.httpPorts()[0]}`,
    c2sPort: server.c2sPorts()[0] ?? 0,
    c2sTlsPort: server.c2sTlsPorts()[0],
    dataDir,
    logText: () => lines.join(''),
    logLines: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      await server.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Write `owner`'s roster straight into the roster store of `host` (the roster module's format): contact JID →
 * subscription, no groups. For specs that need contacts without the subscription dance.
 */
export function setRoster(ts: TestServer, owner: string, items: Record<string, string>, host = 'localhost'): Promise<void> {
  return ts.server.modules.apiOf(host, 'roster')!.openStore('roster').set(owner, {
    version: 1,
    items: Object.fromEntries(Object.entries(items).map(([jid, subscription]) => [jid, { jid, subscription, groups: [] }])),
  });
}
