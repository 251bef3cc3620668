// Prosody from Debian as an s2s peer for tests: a prosody.cfg.lua in a temp dir (own data dir, pidfile, loopback
// ports, dialback, s2s_secure_auth false unless `secureAuth`, accounts in internal_plain files), started with --config
// as a child. `caFile` makes Prosody trust a test CA for peers' certificates (SASL EXTERNAL, mod_s2s_auth_certs);
// `smacks` loads mod_smacks, which Prosody 0.12 uses on s2s only after SASL EXTERNAL.
// Name resolution: Prosody 0.12 resolves with its own net.dns, hard-wired to port 53 of /etc/resolv.conf's servers,
// so it cannot ask the spec's loopback DNS server. A tiny plugin (mod_xmppd_test_dns) replaces
// net.resolvers.service.new for the test domains with a manual resolver (127.0.0.1 and the peer's port) — a hosts
// file for SRV; every other name goes to Prosody's own resolver. Our side still resolves through the DNS server.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProsodyPeer {
  domain: string;
  c2sPort: number;
  s2sPort: number;
  /** The prosody process, for its CPU time (the bench). */
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

/** Why Prosody cannot run here, or undefined when it can. */
export function prosodyMissing(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v prosody'], { encoding: 'utf8' });
  return found.status === 0 ? undefined : 'prosody is not installed (apt-get install prosody)';
}

/** A port free on 127.0.0.1 now, for a peer that must be named in another's config before it starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Prosody's storage escaping of a host or user name in file paths (util.datamanager encode). */
const encode = (s: string): string => s.replace(/[^a-zA-Z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export async function startProsody(opts: {
  domain: string;
  users: Array<[user: string, password: string]>;
  tls: { cert: string; key: string };
  /** Domains Prosody must find, and the s2s port each listens on (127.0.0.1). */
  peers: Record<string, number>;
  /** Ports chosen beforehand (freePort), when two Prosody instances must name each other. */
  c2sPort?: number;
  s2sPort?: number;
  /** Prosody's log level for its file: debug (default, for failing specs) or info (the bench). */
  logLevel?: 'debug' | 'info';
  /** A CA (PEM file) Prosody trusts for peers' certificates, besides the system's (ssl.cafile). */
  caFile?: string;
  /** s2s_secure_auth: peers must authenticate by certificate, no dialback (default false). */
  secureAuth?: boolean;
  /** Load mod_smacks (XEP-0198), disabled by default (default false). */
  smacks?: boolean;
  /** Lua lines after the defaults, before the VirtualHost: a global set again here wins (the bench's modules, ports). */
  extraConfig?: string;
}): Promise<ProsodyPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-prosody-'));
  const data = join(dir, 'data');
  const plugins = join(dir, 'plugins');
  mkdirSync(plugins, { recursive: true });
  for (const [user, password] of opts.users) {
    const accounts = join(data, encode(opts.domain), 'accounts');
    mkdirSync(accounts, { recursive: true });
    writeFileSync(join(accounts, `${encode(user)}.dat`), `return {\n\t["password"] = ${JSON.stringify(password)};\n};\n`);
  }
  const peers = Object.entries(opts.peers).map(([d, port]) => `[${JSON.stringify(d)}] = ${port};`).join(' ');
  writeFileSync(
    join(plugins, 'mod_xmppd_test_dns.lua'),
    `-- Test only: where the spec's domains listen, in place of SRV lookups (see spec/helpers/prosody.ts).
local service = require "net.resolvers.service";
local manual = require "net.resolvers.manual";
local peers = { ${peers} };
local original = service.new;
service.new = function (hostname, service_name, proto, extra)
\tlocal port = peers[hostname];
\tif port and service_name == "xmpp-server" then return manual.new({ { "tcp4", "127.0.0.1", port, extra } }, "tcp", extra); end
\tif port then return manual.new({}, "tcp", extra); end
\treturn original(hostname, service_name, proto, extra);
end
module:hook_global("server-stopped", function () service.new = original; end);
`,
  );
  const c2sPort = opts.c2sPort ?? (await freePort());
  const s2sPort = opts.s2sPort ?? (await freePort());
  const cert = opts.tls.cert;
  const modules = ['roster', 'saslauth', 'tls', 'dialback', 'disco', 'ping', 'presence', 'offline', 'xmppd_test_dns', ...(opts.smacks ? ['smacks'] : [])];
  const disabled = ['s2s_bidi', ...(opts.smacks ? [] : ['smacks']), 'posix'];
  const lua = (list: string[]): string => list.map((m) => JSON.stringify(m)).join('; ');
  const cafile = opts.caFile ? `; cafile = ${JSON.stringify(opts.caFile)}` : '';
  writeFileSync(
    join(dir, 'prosody.cfg.lua'),
    `-- Written by spec/helpers/prosody.ts
run_as_root = true
daemonize = false
pidfile = ${JSON.stringify(join(dir, 'prosody.pid'))}
data_path = ${JSON.stringify(data)}
plugin_paths = { ${JSON.stringify(plugins)} }
log = { ${opts.logLevel ?? 'debug'} = ${JSON.stringify(join(dir, 'prosody.log'))} }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
s2s_ports = { ${s2sPort} }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
admin_socket = ${JSON.stringify(join(dir, 'admin.sock'))}
authentication = "internal_plain"
storage = "internal"
s2s_secure_auth = ${opts.secureAuth === true}
s2s_require_encryption = true
c2s_require_encryption = true
modules_enabled = { ${lua(modules)} }
modules_disabled = { ${lua(disabled)} }
ssl = { certificate = ${JSON.stringify(cert)}; key = ${JSON.stringify(opts.tls.key)}${cafile} }
${opts.extraConfig ?? ''}
VirtualHost ${JSON.stringify(opts.domain)}
`,
  );
  const child: ChildProcess = spawn('prosody', ['--config', join(dir, 'prosody.cfg.lua')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const log = (): string => {
    try {
      return readFileSync(join(dir, 'prosody.log'), 'utf8') + output;
    } catch {
      return output;
    }
  };
  const deadline = Date.now() + 15_000;
  while (!/Activated service 's2s' on/.test(log()) || !/Activated service 'c2s' on/.test(log())) {
    if (child.exitCode !== null) throw new Error(`prosody exited (${child.exitCode}):\n${log().slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prosody did not start within 15 s:\n${log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    domain: opts.domain,
    c2sPort,
    s2sPort,
    pid: child.pid!,
    log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
