// ejabberd from Debian (23.01) as an s2s peer for tests: an ejabberd.yml in a temp dir (own Mnesia spool, log dir,
// loopback ports, STARTTLS required, mod_s2s_dialback), run as `erl -s ejabberd` in the foreground as a child, without
// Erlang distribution (no node name, no epmd, no cookie: nothing outlives the test or clashes with another node), and
// without ejabberdctl (which would su to the ejabberd user). Accounts are made by an -eval after start-up.
// Name resolution: Erlang's inet_res reads ERL_INETRC, which names the spec's loopback DNS server as its only
// nameserver, so ejabberd finds the test domains by SRV like our side does.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './prosody.js';

export interface EjabberdPeer {
  domain: string;
  c2sPort: number;
  s2sPort: number;
  log(): string;
  stop(): Promise<void>;
}

/** Debian's ejabberdctl: installed with the package, and it names the directory of ejabberd's beams. */
export const EJABBERDCTL = '/usr/sbin/ejabberdctl';

/** ERL_LIBS as ejabberdctl sets it (/usr/lib/<multiarch triplet>, where ejabberd-23.01/ebin lies). */
function ejabberdLibs(): string {
  const line = /^ERL_LIBS='([^']+)'/m.exec(readFileSync(EJABBERDCTL, 'utf8'));
  if (!line) throw new Error(`no ERL_LIBS line in ${EJABBERDCTL}`);
  return line[1]!;
}

/** An Erlang binary literal for a test string (user, password, domain). */
const erlBinary = (s: string): string => `<<"${s.replace(/[\\"]/g, '\\$&')}"/utf8>>`;

export async function startEjabberd(opts: {
  domain: string;
  users: Array<[user: string, password: string]>;
  /** The certificate ejabberd presents on s2s streams (certfiles). */
  tls: { cert: string; key: string };
  /** The certificate of the c2s listener, when it is not `tls` (the test clients trust testTls's localhost). */
  c2sTls?: { cert: string; key: string };
  /** The spec's DNS server (startTestDns) on 127.0.0.1, ejabberd's only nameserver. */
  dnsPort: number;
  /** s2s_cafile: the CA ejabberd checks peers' certificates against (SASL EXTERNAL). */
  caFile?: string;
  /** YAML lines appended to the top level of ejabberd.yml. */
  extraConfig?: string;
}): Promise<EjabberdPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-ejabberd-'));
  const spool = join(dir, 'spool');
  const logs = join(dir, 'logs');
  mkdirSync(spool);
  mkdirSync(logs);
  const c2sPort = await freePort();
  const s2sPort = await freePort();
  // The c2s listener's own certfile holds certificate and key in one file.
  const c2sPem = join(dir, 'c2s.pem');
  const c2sTls = opts.c2sTls ?? opts.tls;
  writeFileSync(c2sPem, readFileSync(c2sTls.cert, 'utf8') + readFileSync(c2sTls.key, 'utf8'));
  writeFileSync(
    join(dir, 'ejabberd.yml'),
    `# Written by spec/helpers/ejabberd.ts
hosts: [${JSON.stringify(opts.domain)}]
loglevel: debug
log_rotate_count: 0
certfiles: [${JSON.stringify(opts.tls.cert)}, ${JSON.stringify(opts.tls.key)}]
${opts.caFile ? `s2s_cafile: ${JSON.stringify(opts.caFile)}\n` : ''}s2s_use_starttls: required
auth_method: internal
auth_password_format: plain
acl:
  local: {user_regexp: ""}
access_rules:
  local: {allow: local}
listen:
  - {port: ${c2sPort}, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: true, certfile: ${JSON.stringify(c2sPem)}}
  - {port: ${s2sPort}, ip: "127.0.0.1", module: ejabberd_s2s_in}
modules:
  mod_roster: {}
  mod_offline: {}
  mod_disco: {}
  mod_ping: {}
  mod_s2s_dialback: {}
${opts.extraConfig ?? ''}
`,
  );
  // inet_res asks only this server (lookup dns: no hosts file, no /etc/resolv.conf's servers).
  writeFileSync(join(dir, 'inetrc'), `{lookup, [dns]}.\n{resolv_conf, ""}.\n{nameserver, {127,0,0,1}, ${opts.dnsPort}}.\n`);
  const register = opts.users
    .map(([user, password]) => `io:format("xmppd-test registered ~s: ~p~n", [${erlBinary(user)}, ejabberd_auth:try_register(${erlBinary(user)}, ${erlBinary(opts.domain)}, ${erlBinary(password)})])`)
    .join(', ');
  const child: ChildProcess = spawn('erl', ['-noinput', '-mnesia', 'dir', JSON.stringify(spool), '-s', 'ejabberd', '-eval', `${register || 'ok'}, io:format("xmppd-test accounts done~n").`], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ERL_LIBS: ejabberdLibs(),
      EJABBERD_CONFIG_PATH: join(dir, 'ejabberd.yml'),
      EJABBERD_LOG_PATH: join(logs, 'ejabberd.log'),
      ERL_INETRC: join(dir, 'inetrc'),
      ERL_CRASH_DUMP: join(logs, 'erl_crash.dump'),
      ERL_CRASH_DUMP_BYTES: '0',
    },
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // ejabberd writes its log file in batches; stop() keeps the last of it for a spec that reads it afterwards.
  let finalLog: string | undefined;
  const log = (): string => {
    if (finalLog !== undefined) return finalLog;
    try {
      return readFileSync(join(logs, 'ejabberd.log'), 'utf8');
    } catch {
      return output;
    }
  };
  // Read from the console copy of the log, written at once (the file comes in batches).
  const isStarted = (): boolean =>
    output.includes('xmppd-test accounts done') &&
    output.includes(`Start accepting TCP connections at 127.0.0.1:${s2sPort} for ejabberd_s2s_in`) &&
    output.includes(`Start accepting TCP connections at 127.0.0.1:${c2sPort} for ejabberd_c2s`);
  const deadline = Date.now() + 20_000;
  while (!isStarted()) {
    if (child.exitCode !== null) throw new Error(`ejabberd exited (${child.exitCode}):\n${(log() + output).slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ejabberd did not start within 20 s:\n${(log() + output).slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const failed = [...output.matchAll(/xmppd-test registered (\S+): (.*)/g)].filter((m) => m[2] !== 'ok');
  if (failed.length > 0) {
    child.kill('SIGKILL');
    throw new Error(`ejabberd did not register ${failed.map((m) => `${m[1]} (${m[2]})`).join(', ')}`);
  }
  return {
    domain: opts.domain,
    c2sPort,
    s2sPort,
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        // SIGTERM makes the Erlang VM run init:stop(): ejabberd stops its applications, then the VM exits.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      finalLog = log();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
