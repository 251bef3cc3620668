// Benchmark helper: Debian's Prosody 0.12 beside xmppd in the same run (BENCH_SERIES=prosody), started through the
// specs' config writer (spec/helpers/prosody.ts) with direct TLS c2s, and a closed-loop c2s sender that drives either
// server the same way: Debian ships no mod_post_msg (not in prosody-modules), so messages enter Prosody over c2s.

import { performance } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { ReadyMessage } from './child.js';
import { mainThreadCpuSeconds, processCpuParts } from './cpu.js';
import type { LoadResult } from './load.js';
import { idOf, openBoundSession, StanzaScanner } from './raw-client.js';
import { median, type Row } from './report.js';
import { fixed, integer, markdownTable, mebibytes, type Column } from './table.js';
import { freePort, prosodyMissing, startProsody, type ProsodyPeer } from '../spec/helpers/prosody.js';

export interface BenchAccount {
  username: string;
  password: string;
}

export interface ProsodyBenchOptions {
  domain: string;
  tls: { cert: string; key: string };
  /** Accounts written as internal_plain files (no hashing at set-up; PLAIN logins compare the stored password). */
  users: readonly BenchAccount[];
  /** mod_mam on (default_archive_policy and archive_expires_after at their defaults). */
  mam?: boolean;
  /**
   * Where mod_mam's archive lives: Prosody's default `internal` (a file per account and day, appended), or `sql`
   * (SQLite3 through Debian's lua-dbi-sqlite3: a transaction per message, synchronous FULL, in Prosody's only thread).
   */
  archiveStorage?: 'internal' | 'sql';
  /** mod_smacks (core in 0.12) on; the specs' config turns it off. */
  smacks?: boolean;
}

/**
 * A running Prosody for the bench, measured like bench/child.ts's Child (CPU and memory from /proc/<pid>):
 * `ready.c2sTls` is its direct TLS c2s port (XEP-0368), the one the bench's raw clients use with xmppd too.
 */
export class ProsodyServer {
  readonly problems: string[] = [];
  readonly problemLines = 0;

  private constructor(
    readonly name: string,
    readonly ready: ReadyMessage,
    private readonly peer: ProsodyPeer,
  ) {}

  get pid(): number {
    return this.peer.pid;
  }

  cpuParts(): { user: number; system: number } {
    return processCpuParts(this.pid);
  }

  /** CPU seconds of Prosody's main thread (its Lua event loop). */
  mainThreadCpuSeconds(): number {
    return mainThreadCpuSeconds(this.pid);
  }

  peakRssKiB(): number {
    return statusField(this.pid, 'VmHWM');
  }

  rssKiB(): number {
    return statusField(this.pid, 'VmRSS');
  }

  resetPeak(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  /** Only xmppd's children answer IPC requests (profiles). */
  request(): Promise<void> {
    return Promise.reject(new Error(`${this.name}: no IPC (Prosody)`));
  }

  log(): string {
    return this.peer.log();
  }

  stop(): Promise<void> {
    return this.peer.stop();
  }

  static async start(name: string, opts: ProsodyBenchOptions): Promise<ProsodyServer> {
    const missing = prosodyMissing();
    if (missing) throw new Error(`BENCH_SERIES=prosody needs Debian's prosody: ${missing}`);
    const directTls = await freePort();
    const modules = ['roster', 'saslauth', 'tls', 'disco', 'ping', 'presence', 'offline', 'xmppd_test_dns', ...(opts.mam ? ['mam'] : []), ...(opts.smacks ? ['smacks'] : [])];
    const extraConfig = [
      '-- The bench (bench/prosody.ts): direct TLS c2s as xmppd is measured, the modules of the row.',
      `c2s_direct_tls_ports = { ${directTls} }`,
      `modules_enabled = { ${modules.map((m) => JSON.stringify(m)).join('; ')} }`,
      `modules_disabled = { "s2s_bidi"; "posix"${opts.smacks ? '' : '; "smacks"'} }`,
      ...(opts.mam && opts.archiveStorage === 'sql' ? ['storage = { archive = "sql" }', 'default_storage = "internal"', 'sql = { driver = "SQLite3"; database = "archive.sqlite" }'] : []),
    ].join('\n');
    const peer = await startProsody({
      domain: opts.domain,
      users: opts.users.map((u) => [u.username, u.password]),
      tls: opts.tls,
      peers: {},
      logLevel: 'info',
      extraConfig,
    });
    const server = new ProsodyServer(name, { msg: 'bench-ready', http: 0, c2sTls: directTls }, peer);
    const deadline = Date.now() + 15_000;
    while (!/Activated service 'c2s_direct_tls'/.test(peer.log())) {
      if (Date.now() > deadline) {
        await peer.stop();
        throw new Error(`${name}: no direct TLS c2s port within 15 s:\n${peer.log().slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return server;
  }
}

/** Start Prosody for a bench series (the muc and s2s series may call it too). */
export function startProsodyForBench(name: string, opts: ProsodyBenchOptions): Promise<ProsodyServer> {
  return ProsodyServer.start(name, opts);
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]);
}

export interface C2sLoadOptions {
  port: number;
  ca: string;
  domain: string;
  sender: BenchAccount;
  receivers: readonly BenchAccount[];
  /** Sender sessions (resources of the sender account), each with one message in flight, as autocannon's connections. */
  connections: number;
  timeoutMs: number;
}

/**
 * A closed loop over c2s: each sender session sends a chat message to the next receiver's bare JID and sends the
 * next one when a receiver got it (matched by id), so a message's latency is from the sender's write to the
 * receiver's read. Same sessions for every sample of a row; the receivers are online (initial presence).
 */
export class C2sLoad {
  private readonly senders: tls.TLSSocket[] = [];
  private readonly receiverSockets: tls.TLSSocket[] = [];
  private readonly pending = new Map<string, { start: number; sender: number }>();
  private running = false;
  private sequence = 0;
  private turn = 0;
  private body = '';
  private onReceived: (sender: number, latencyMs: number) => void = () => undefined;

  private constructor(private readonly opts: C2sLoadOptions) {}

  static async open(opts: C2sLoadOptions): Promise<C2sLoad> {
    const load = new C2sLoad(opts);
    try {
      for (const account of opts.receivers) {
        const socket = await openBoundSession({ ...opts, ...account, resource: 'c2s-bench' });
        load.receiverSockets.push(socket);
        let onOwnPresence: () => void = () => undefined;
        const available = new Promise<void>((resolve) => (onOwnPresence = resolve));
        const scanner = new StanzaScanner((name, tag) => {
          if (name === 'message') load.received(idOf(tag));
          else onOwnPresence();
        });
        socket.on('data', (text: string) => scanner.write(text));
        socket.write('<presence/>');
        await available;
      }
      for (let i = 0; i < opts.connections; i++) {
        const socket = await openBoundSession({ ...opts, ...opts.sender, resource: `c2s-load-${i}` });
        socket.on('data', () => undefined);
        load.senders.push(socket);
      }
    } catch (err) {
      load.close();
      throw err;
    }
    return load;
  }

  private received(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.onReceived(p.sender, performance.now() - p.start);
  }

  private send(sender: number): void {
    if (!this.running) return;
    const id = `c2s-${sender}-${this.sequence++}`;
    const to = this.opts.receivers[this.turn++ % this.opts.receivers.length]!;
    this.pending.set(id, { start: performance.now(), sender });
    this.senders[sender]!.write(`<message type='chat' to='${to.username}@${this.opts.domain}' id='${id}'><body>${this.body}</body></message>`);
  }

  /** One sample: `seconds` of the loop; messages still in flight at the end get up to 5 s to arrive, else count as lost. */
  async run(seconds: number, body: string): Promise<LoadResult> {
    this.body = body;
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    let late = 0;
    const started = performance.now();
    const stopAt = started + seconds * 1000;
    this.onReceived = (sender, latencyMs) => {
      if (performance.now() > stopAt) {
        late++;
        return;
      }
      if (count === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[count++] = latencyMs;
      this.send(sender);
    };
    this.running = true;
    for (let i = 0; i < this.senders.length; i++) this.send(i);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    this.running = false;
    const drainUntil = Date.now() + 5_000;
    while (this.pending.size > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    const lost = this.pending.size;
    this.pending.clear();
    const sorted = latencies.subarray(0, count).sort();
    const at = (q: number): number => (count === 0 ? NaN : sorted[Math.max(1, Math.ceil(q * count)) - 1]!);
    const elapsed = seconds;
    return {
      seconds: elapsed,
      responses: count,
      requestsPerSecond: count / elapsed,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: count > 0 ? sorted[count - 1]! : NaN,
      created: count + late,
      non2xx: lost,
      errors: 0,
      timeouts: 0,
      statusCounts: {},
    };
  }

  close(): void {
    for (const s of [...this.senders, ...this.receiverSockets]) s.destroy();
  }
}

/** Memory per held session, measured when they were opened. */
export interface SessionCost {
  server: string;
  sessions: number;
  failures: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
}

/** The comparison table: each row's median rate, latency, messages lost, and the server's CPU per message. */
export function renderProsodyTable(rows: Row[], costs: SessionCost[]): string {
  const perMessage = (r: Row): number => median(r.samples.map((s) => (s.childCores * 1e6) / Math.max(1, s.load.requestsPerSecond)));
  const columns: Column<Row>[] = [
    { title: 'row (32 connections, 5-byte body)', align: 'left', value: (r) => r.variant },
    { title: 'msg/s (median)', value: (r) => integer(median(r.samples.map((s) => s.load.requestsPerSecond))) },
    { title: 'min–max', value: (r) => `${integer(Math.min(...r.samples.map((s) => s.load.requestsPerSecond)))}–${integer(Math.max(...r.samples.map((s) => s.load.requestsPerSecond)))}` },
    { title: 'p50 ms', value: (r) => fixed(median(r.samples.map((s) => s.load.p50Ms)), 2) },
    { title: 'p99 ms', value: (r) => fixed(median(r.samples.map((s) => s.load.p99Ms)), 2) },
    { title: 'lost / failed', value: (r) => integer(r.samples.reduce((n, s) => n + s.load.non2xx + s.load.errors, 0)) },
    { title: 'server CPU µs/msg', value: (r) => fixed(perMessage(r), 0) },
    { title: 'server cores', value: (r) => fixed(median(r.samples.map((s) => s.childCores)), 2) },
    { title: 'peak RSS MB', value: (r) => mebibytes(Math.max(...r.samples.map((s) => s.peakRssKiB))) },
  ];
  const costColumns: Column<SessionCost>[] = [
    { title: 'server', align: 'left', value: (c) => c.server },
    { title: 'smacks sessions opened', value: (c) => integer(c.sessions) },
    { title: 'failed', value: (c) => integer(c.failures) },
    { title: 'RSS before → after MB', value: (c) => `${mebibytes(c.rssBeforeKiB)} → ${mebibytes(c.rssAfterKiB)}` },
    { title: 'KiB per session', value: (c) => fixed((c.rssAfterKiB - c.rssBeforeKiB) / Math.max(1, c.sessions), 1) },
  ];
  const parts = [markdownTable(columns, rows)];
  if (costs.length > 0) parts.push('', markdownTable(costColumns, costs));
  return parts.join('\n');
}
