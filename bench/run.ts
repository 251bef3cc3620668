// `npm run bench`: the real server as a child process on ephemeral ports, receiving XMPP clients, and
// autocannon driving authenticated POST /msg/<user> over keep-alive connections, against a bare-koa ceiling.
// Environment: BENCH_SECONDS (per sample, 10), BENCH_REPEAT (samples per row, 3), BENCH_WARMUP_SECONDS (2),
// BENCH_CONNECTIONS (1,8,32,64), BENCH_SERIES=ab with BENCH_AB_ENV=NAME=value or BENCH_AB_LOG=info (two servers sampled in turn, see abSeries), BENCH_BODIES (body sizes of the extra 32-connection rows, 1024,65536; empty: none), BENCH_IDLE (1000,10000; sampled in turn with two twin servers, see idleSeries), BENCH_SERIES (main,idle,effects,mam,smacks; mam: post_msg with the archive off and on, sampled in turn; smacks: without stream management and with 1,000 stream-management sessions connected), BENCH_TIMEOUT_SECONDS (3600),
// BENCH_RATE (requests per second in every row instead of as many as answered: the server's CPU time per request
// at a fixed load is steadier than the top rate on a shared machine), BENCH_JSON (write all samples there), BENCH_PROFILE (a folder: profile the server in one 32-connection row instead;
// BENCH_PROFILE_BODY bytes of body, BENCH_PROFILE_IDLE: the same server profiled again after opening that many idle sessions, BENCH_PROFILE_LOG=info for log_level info, BENCH_PROFILE_MODULES=post_msg,mam for another modules_enabled), BENCH_TSX=1 (children under tsx, not
// compiled), BENCH_NODE_FLAGS (extra node flags for the server children, e.g. "--log-deopt --logfile=/tmp/v8.log"), BENCH_RECEIVER=xmpp-client (receive with @xmpp/client, not raw sessions), BENCH_KEEP=1 (keep the temp folder),
// BENCH_SERIES=s2s (not in the default run; needs Debian's prosody): messages per second over s2s, xmppd and Prosody each way, bench/s2s.ts.
// BENCH_SERIES=prosody (not in the default run; needs Debian's prosody): xmppd and Prosody 0.12 in turn, post_msg and a c2s sender, mam off and on, then with BENCH_PROSODY_SMACKS (1000) stream-management sessions held (bench/prosody.ts). BENCH_QUIET_SECONDS (180): how long a sample waits for a quiet machine (0: not at all).
// BENCH_LOAD=wrk (load from Debian's wrk, 2 threads, instead of autocannon; installed with apt-get if missing; its CPU counts with the bench's).

import { cpus, release } from 'node:os';
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Child, killAllChildren } from './child.js';
import { runLoad as runAutocannon, type LoadOptions, type LoadResult } from './load.js';
import { ensureWrk, runWrk } from './wrk.js';
import { openBareTls, openIdleSessions, type IdleSession } from './raw-client.js';
import { Receivers, type ReceiverKind } from './receivers.js';
import { createAccounts, createIdleAccounts, DOMAIN, makeBenchDir, textBody, writeConfig, type Account, type BenchDir } from './setup.js';
import { fixed, integer, mebibytes } from './table.js';
import { summariseProfile } from './profile.js';
import { machineCpu } from './cpu.js';
import { compiledRuntime, tsxRuntime, type Runtime } from './build.js';
import { C2sLoad, ProsodyServer, renderProsodyTable, type SessionCost } from './prosody.js';
import { measureRoom, renderMucTable, type MucRow } from './muc.js';
import { freePort, prosodyMissing, startProsody } from '../spec/helpers/prosody.js';
import { renderS2sTable, s2sSeries } from './s2s.js';
import {
  describeSample,
  IDLE_AFTER,
  IDLE_BEFORE,
  KEY_CONNECTIONS,
  MAM_OFF,
  MAM_ON,
  OTHER_LOAD_LIMIT,
  renderReport,
  SMACKS_OFF,
  SMACKS_ON,
  SMALL_BODY,
  twinVariant,
  type IdleReport,
  type Results,
  type Row,
  type Sample,
  type TlsFloor,
} from './report.js';

const ROOT = resolve(import.meta.dirname, '..');

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw}: expected a non-negative number`);
  return n;
}

function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  return raw.split(',').filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${raw}: expected comma-separated positive integers`);
    return n;
  });
}

/** `NAME=value,NAME2=value2` (the value may hold `=`), checked before anything starts. */
function envAssignments(name: string): Record<string, string> {
  const raw = process.env[name] ?? '';
  const pairs = raw.split(',').filter((s) => s.trim() !== '').map((kv) => {
    const eq = kv.indexOf('=');
    const key = kv.slice(0, eq).trim();
    if (eq === -1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new Error(`${name}=${raw}: expected comma-separated NAME=value pairs, got ${JSON.stringify(kv)}`);
    }
    return [key, kv.slice(eq + 1)] as const;
  });
  return Object.fromEntries(pairs);
}

const settings = readSettings();

/** Every knob, read once; a malformed one stops the bench with one line saying which (no stack trace). */
function readSettings() {
  try {
    return {
      seconds: envNumber('BENCH_SECONDS', 10),
      repeat: Math.max(1, Math.round(envNumber('BENCH_REPEAT', 3))),
      warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
      connections: envList('BENCH_CONNECTIONS', [1, 8, 32, 64]),
      bodies: envList('BENCH_BODIES', [1024, 65536]),
      idle: envList('BENCH_IDLE', [1000, 10000]),
      series: new Set((process.env.BENCH_SERIES ?? 'main,idle,effects,mam,smacks').split(',').map((s) => s.trim())),
      timeoutSeconds: envNumber('BENCH_TIMEOUT_SECONDS', 3600),
      rate: envNumber('BENCH_RATE', 0),
      jsonPath: process.env.BENCH_JSON,
      profileDir: process.env.BENCH_PROFILE,
      profileBodyBytes: envNumber('BENCH_PROFILE_BODY', SMALL_BODY),
      profileIdle: envNumber('BENCH_PROFILE_IDLE', 0),
      serverNodeFlags: (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      isTsx: process.env.BENCH_TSX === '1',
      receiverKind: (process.env.BENCH_RECEIVER === 'xmpp-client' ? 'xmpp-client' : 'raw') as ReceiverKind,
      loadGenerator: process.env.BENCH_LOAD || 'autocannon',
      abEnv: envAssignments('BENCH_AB_ENV'),
    };
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

function loadGeneratorName(): string {
  return settings.loadGenerator === 'wrk' ? 'wrk (2 threads; its CPU counts with the bench)' : 'autocannon (in the bench process)';
}

function runLoad(opts: LoadOptions): Promise<LoadResult> {
  return settings.loadGenerator === 'wrk' ? runWrk(opts) : runAutocannon(opts);
}

let runtime: Runtime;

const RECEIVERS = 4;
const SENDER: Account = { username: 'sender', password: 'correct horse battery staple' };
const RECEIVER_ACCOUNTS: Account[] = Array.from({ length: RECEIVERS }, (_, i) => ({ username: `rcv${i + 1}`, password: `receiver-${i + 1}-secret` }));
const OFFLINE: Account = { username: 'offline1', password: 'offline-secret' };
const IDLE_PASSWORD = 'idle-secret';

const log = (text: string): void => void process.stderr.write(`${text}\n`);

const headers = {
  Authorization: `Basic ${Buffer.from(`${SENDER.username}@${DOMAIN}:${SENDER.password}`, 'utf8').toString('base64')}`,
  'Content-Type': 'text/plain',
};
const receiverPaths = RECEIVER_ACCOUNTS.map((a) => `/msg/${a.username}`);

/** What is under load: a child and, for the server, the clients that receive its messages. */
interface Target<C extends Child | ProsodyServer = Child> {
  child: C;
  receivers?: Receivers;
  /** The load instead of HTTP requests (a c2s sender, bench/prosody.ts); its messages are its requests. */
  drive?: (seconds: number) => Promise<LoadResult>;
  /** Request paths; default: the receivers in turn. */
  paths?: string[];
}

function newRow(target: Row['target'], connections: number, bodyBytes: number, opts: { variant?: string; idleSessions?: number } = {}): Row {
  return { target, variant: opts.variant ?? '', connections, bodyBytes, idleSessions: opts.idleSessions ?? 0, samples: [] };
}

/** Above this, wait before a sample: someone else (a test run) is using the machine. */
async function waitForQuietMachine(): Promise<void> {
  // BENCH_QUIET_SECONDS (180): how long to wait; 0 measures at once (a machine that is never quiet).
  const patienceMs = envNumber('BENCH_QUIET_SECONDS', 180) * 1000;
  if (patienceMs === 0) return;
  const started = Date.now();
  let isNoted = false;
  for (;;) {
    const before = machineCpu();
    await new Promise((r) => setTimeout(r, 2_000));
    const other = (machineCpu().busy - before.busy) / 2;
    if (other < OTHER_LOAD_LIMIT) return;
    if (Date.now() - started > patienceMs) {
      log(`  the machine stayed busy (${fixed(other, 2)} cores used by other processes); measuring anyway`);
      return;
    }
    if (!isNoted) log(`  waiting for the machine to be quiet (${fixed(other, 2)} cores used by other processes)…`);
    isNoted = true;
  }
}

/** Load the row's target once for warmupSeconds, results thrown away: JIT, caches and connections warm. */
async function warmUp(target: Target<Child | ProsodyServer>, row: Row): Promise<void> {
  if (settings.warmupSeconds <= 0) return;
  if (target.drive) await target.drive(settings.warmupSeconds);
  else await runLoad({ ...loadOf(target, row), seconds: settings.warmupSeconds });
  await target.receivers?.settle();
}

function loadOf(target: Target<Child | ProsodyServer>, row: Row): Omit<Parameters<typeof runLoad>[0], 'seconds'> {
  return {
    url: `http://127.0.0.1:${target.child.ready.http}`,
    paths: target.paths ?? receiverPaths,
    connections: row.connections,
    body: textBody(row.bodyBytes),
    headers,
    ...(settings.rate > 0 ? { rate: settings.rate } : {}),
  };
}

/** One sample of a row: fixed duration, with the child's peak RSS and everyone's CPU over exactly that time. */
async function sample(target: Target<Child | ProsodyServer>, row: Row, opts: { profilePath?: string } = {}): Promise<Sample> {
  const { child, receivers } = target;
  await waitForQuietMachine();
  receivers?.reset();
  child.resetPeak();
  if (opts.profilePath) await child.request({ msg: 'bench-profile-start' }, 'bench-profile-started');
  const machineBefore = machineCpu();
  const childBefore = child.cpuParts();
  const mainThreadBefore = child.mainThreadCpuSeconds();
  const benchBefore = process.cpuUsage();
  const load = target.drive ? await target.drive(settings.seconds) : await runLoad({ ...loadOf(target, row), seconds: settings.seconds });
  const peakRssKiB = child.peakRssKiB();
  const childAfter = child.cpuParts();
  const mainThreadCores = (child.mainThreadCpuSeconds() - mainThreadBefore) / load.seconds;
  const childSystemCores = (childAfter.system - childBefore.system) / load.seconds;
  const childCores = (childAfter.user - childBefore.user) / load.seconds + childSystemCores;
  const bench = process.cpuUsage(benchBefore);
  const machineAfter = machineCpu();
  if (opts.profilePath) await child.request({ msg: 'bench-profile-stop', path: opts.profilePath }, 'bench-profile-stopped');
  // A generator in its own process (wrk) counts with the bench, not as someone else using the machine.
  const benchCores = ((bench.user + bench.system) / 1e6 + (load.generatorCpuSeconds ?? 0)) / load.seconds;
  // Messages for requests still in flight when the load stopped arrive a little later.
  await receivers?.settle();
  const result: Sample = {
    load,
    received: receivers?.received,
    duplicates: receivers?.duplicates,
    peakRssKiB,
    childCores,
    childSystemCores,
    mainThreadCores,
    benchCores,
    otherCores: Math.max(0, (machineAfter.busy - machineBefore.busy) / load.seconds - childCores - benchCores),
    stealCores: (machineAfter.steal - machineBefore.steal) / load.seconds,
  };
  receivers?.reset();
  row.samples.push(result);
  log(`  ${describeSample(row, result)}`);
  return result;
}

/** server-child's flags, each switching off one mechanism (StartOptions). */
type ServerFlag = '--no-credential-cache' | '--pbkdf2-on-event-loop';

async function startServerChild(bench: BenchDir, opts: { name: string; logLevel?: 'warn' | 'info'; flags?: ServerFlag[]; env?: Record<string, string>; modules?: string[] }): Promise<Child> {
  const config = writeConfig(bench, opts.name, { logLevel: opts.logLevel ?? 'warn' });
  // Another modules_enabled than the bench's usual [post_msg] (the config is JSON, which YAML reads).
  if (opts.modules) writeFileSync(config, `${JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), modules_enabled: opts.modules }, null, 2)}\n`);
  return Child.start({
    name: `xmppd (${opts.name})`,
    script: runtime.file('bench/server-child'),
    args: [config, ...(opts.flags ?? [])],
    nodeFlags: settings.serverNodeFlags,
    cwd: ROOT,
    ...(opts.env ? { env: opts.env } : {}),
    // At log_level info there is a line per request: straight to a file, as a real deployment would.
    stdoutFile: opts.logLevel === 'info' ? join(bench.dir, `${opts.name}.log`) : undefined,
  });
}

/** The bare koa ceiling. */
function startCeilingChild(): Promise<Child> {
  return Child.start({
    name: 'ceiling',
    script: runtime.file('bench/ceiling'),
    cwd: ROOT,
    env: { BENCH_USER: `${SENDER.username}@${DOMAIN}`, BENCH_PASSWORD: SENDER.password },
  });
}

function connectReceivers(child: Child, bench: BenchDir): Promise<Receivers> {
  return Receivers.connect(settings.receiverKind, { port: child.ready.c2sTls!, ca: bench.ca, domain: DOMAIN, accounts: RECEIVER_ACCOUNTS, timeoutMs: 15_000 });
}

async function stopAll(children: Array<Child | undefined>, receivers: Array<Receivers | undefined>): Promise<void> {
  for (const r of receivers) await r?.stop();
  for (const child of children) {
    if (!child) continue;
    if (child.problemLines > 0) {
      log(`  ${child.name} wrote ${child.problemLines} warning/error lines; the first ones:`);
      for (const line of child.problems.slice(0, 10)) log(`    ${line.slice(0, 400)}`);
    }
    await child.stop();
  }
}

/**
 * The main series: for each connection count and body size, ceiling and server sampled in turn, so a slow drift of
 * the machine (other virtual machines on the host) hits both alike and ours/ceiling stays fair.
 */
async function mainSeries(bench: BenchDir): Promise<{ ceiling: Row[]; main: Row[] }> {
  log('main series: bare koa ceiling and xmppd (default config, log_level warn), sampled in turn');
  let ceilingChild: Child | undefined;
  let serverChild: Child | undefined;
  let receivers: Receivers | undefined;
  const ceiling: Row[] = [];
  const main: Row[] = [];
  try {
    ceilingChild = await startCeilingChild();
    serverChild = await startServerChild(bench, { name: 'default' });
    receivers = await connectReceivers(serverChild, bench);
    const ceilingTarget: Target = { child: ceilingChild };
    const serverTarget: Target = { child: serverChild, receivers };
    const shapes = [
      ...settings.connections.map((c) => ({ connections: c, bodyBytes: SMALL_BODY })),
      ...settings.bodies.map((b) => ({ connections: KEY_CONNECTIONS, bodyBytes: b })),
    ];
    for (const shape of shapes) {
      const c = newRow('ceiling', shape.connections, shape.bodyBytes);
      const ours = newRow('xmppd', shape.connections, shape.bodyBytes);
      ceiling.push(c);
      main.push(ours);
      await warmUp(ceilingTarget, c);
      await warmUp(serverTarget, ours);
      for (let i = 0; i < settings.repeat; i++) {
        await sample(ceilingTarget, c);
        await sample(serverTarget, ours);
      }
    }
  } finally {
    await stopAll([ceilingChild, serverChild], [receivers]);
  }
  return { ceiling, main };
}

/**
 * On fresh server children (so the large-body rows leave nothing in a heap), sampled in turn throughout:
 * - the server: the 32-connection row without idle sessions, with each count of them, and after closing them;
 * - a clean twin that never has any idle session;
 * - a twin with the same history: whenever the server opens idle sessions, it logs in as many and closes them at once.
 * Two processes of the same code differ by several per cent and the machine drifts, so each loss is the server's
 * rate relative to a twin, with the sessions against before them. Against the clean twin it is what a user sees
 * (a fresh server against one holding the sessions); against the history twin it is what holding them costs, without
 * what logging them in did to the process (V8 re-optimises code shared with the login path).
 */
async function idleSeries(bench: BenchDir, idleUsernames: string[]): Promise<{ rows: Row[]; reports: IdleReport[] }> {
  log('idle series: xmppd with idle authenticated c2s sessions, a clean twin and a twin with the same logins, sampled in turn');
  const rows: Row[] = [];
  const reports: IdleReport[] = [];
  const sessions: IdleSession[] = [];
  const children: Child[] = [];
  const receiverSets: Receivers[] = [];
  try {
    const startTarget = async (name: string): Promise<Target> => {
      const child = await startServerChild(bench, { name });
      children.push(child);
      const receivers = await connectReceivers(child, bench);
      receiverSets.push(receivers);
      return { child, receivers };
    };
    const target = await startTarget('idle');
    const twin = await startTarget('idle-twin');
    const historyTwin = await startTarget('idle-history-twin');
    /** One phase: the server's row and its twins', sampled in turn. */
    const phase = async (variant: string, isWarmUp = false): Promise<void> => {
      const row = newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant, idleSessions: sessions.length });
      const turns = [
        { target, row },
        { target: twin, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: twinVariant(row) }) },
        { target: historyTwin, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: twinVariant(row, 'history') }) },
      ];
      rows.push(...turns.map((t) => t.row));
      if (isWarmUp) for (const t of turns) await warmUp(t.target, t.row);
      for (let i = 0; i < settings.repeat; i++) for (const t of turns) await sample(t.target, t.row);
    };
    await phase(IDLE_BEFORE, true);
    for (const wanted of settings.idle) {
      const usernames = idleUsernames.slice(sessions.length, wanted);
      reports.push(await openIdle(target.child, bench, usernames, sessions, wanted));
      // The same logins on the history twin, closed at once.
      const passing: IdleSession[] = [];
      await openIdle(historyTwin.child, bench, usernames, passing, usernames.length);
      for (const s of passing) s.close();
      await new Promise((r) => setTimeout(r, 3_000));
      await phase('');
      const closedMeanwhile = sessions.filter((s) => !s.isOpen).length;
      if (closedMeanwhile > 0) log(`  warning: ${closedMeanwhile} idle sessions were closed during the row`);
    }
    if (sessions.length > 0) {
      const { child } = target;
      const rssBeforeKiB = child.rssKiB();
      const statsBefore = await child.query();
      for (const s of sessions) s.close();
      sessions.length = 0;
      await new Promise((r) => setTimeout(r, 3_000));
      // Whether the server let go of them: its registry count and heap after the disconnects.
      const statsAfter = await child.query();
      reports.push({
        target: 0, opened: 0, failures: 0, firstFailure: undefined, seconds: 3, serverSessions: statsAfter?.sessions,
        rssBeforeKiB, rssAfterKiB: child.rssKiB(), heapBeforeKiB: statsBefore?.heapUsedKiB, heapAfterKiB: statsAfter?.heapUsedKiB,
      });
      log(`  closed the idle sessions; server counts ${statsAfter?.sessions ?? '?'} bound sessions, heap ${mebibytes(statsAfter?.heapUsedKiB ?? NaN)} MB`);
      await phase(IDLE_AFTER);
    }
  } finally {
    for (const s of sessions) s.close();
    await stopAll(children, receiverSets);
  }
  return { rows, reports };
}

async function openIdle(child: Child, bench: BenchDir, usernames: string[], sessions: IdleSession[], wanted: number): Promise<IdleReport> {
  const rssBeforeKiB = child.rssKiB();
  const statsBefore = await child.query();
  log(`  opening ${integer(usernames.length)} idle sessions (to ${integer(wanted)})…`);
  const opened = await openIdleSessions({
    port: child.ready.c2sTls!,
    ca: bench.ca,
    domain: DOMAIN,
    password: IDLE_PASSWORD,
    usernames,
    concurrency: 50,
    timeoutMs: 30_000,
    deadlineMs: 240_000,
  });
  sessions.push(...opened.sessions);
  const stats = await child.query();
  const report: IdleReport = {
    target: wanted,
    opened: sessions.length,
    failures: opened.failures.length,
    firstFailure: opened.failures[0],
    seconds: opened.seconds,
    serverSessions: stats?.sessions,
    rssBeforeKiB,
    rssAfterKiB: child.rssKiB(),
    heapBeforeKiB: statsBefore?.heapUsedKiB,
    heapAfterKiB: stats?.heapUsedKiB,
  };
  log(`  ${integer(sessions.length)} idle sessions open (${opened.failures.length} failed${report.firstFailure ? `: ${report.firstFailure}` : ''}) ` +
    `in ${fixed(opened.seconds, 1)} s; server counts ${stats?.sessions ?? '?'} bound sessions; RSS ${mebibytes(rssBeforeKiB)} → ${mebibytes(report.rssAfterKiB)} MB`);
  return report;
}

/** One 32-connection row per variant, each on a fresh server child: what each optimisation is worth. */
async function effectSeries(bench: BenchDir): Promise<Row[]> {
  const variants: Array<{ variant: string; name: string; logLevel?: 'warn' | 'info'; flags?: ServerFlag[]; paths?: string[] }> = [
    { variant: 'default (fresh server, baseline of this series)', name: 'effect-default' },
    { variant: 'recipient offline (stored)', name: 'offline', paths: [`/msg/${OFFLINE.username}`] },
    { variant: 'log_level info', name: 'log-info', logLevel: 'info' },
    { variant: 'credential cache off', name: 'no-cache', flags: ['--no-credential-cache'] },
    { variant: 'cache off + PBKDF2 on the event loop', name: 'no-cache-sync', flags: ['--no-credential-cache', '--pbkdf2-on-event-loop'] },
  ];
  const rows: Row[] = [];
  for (const v of variants) {
    log(`effect: ${v.variant}`);
    let child: Child | undefined;
    let receivers: Receivers | undefined;
    try {
      child = await startServerChild(bench, v);
      receivers = await connectReceivers(child, bench);
      // The offline row's recipient has no session: nothing to receive, every message goes to SQLite.
      const target: Target = v.paths ? { child, paths: v.paths } : { child, receivers };
      const row = newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: v.variant });
      rows.push(row);
      await warmUp(target, row);
      for (let i = 0; i < settings.repeat; i++) await sample(target, row);
    } finally {
      await stopAll([child], [receivers]);
    }
  }
  return rows;
}

/**
 * A/B: two servers at once, B with the extra environment of BENCH_AB_ENV (`NAME=value,...`), sampled in turn
 * (A, B, A, B, ...) so a drift of the host hits both alike. For trying a change behind an environment switch.
 */
async function abSeries(bench: BenchDir): Promise<Row[]> {
  const env = settings.abEnv;
  log(`A/B: A = default, B = default with ${JSON.stringify(env)}`);
  const children: Child[] = [];
  const receiverSets: Receivers[] = [];
  try {
    const targets: Array<{ target: Target; row: Row }> = [];
    for (const [name, extra] of [['ab-a', {}], ['ab-b', env]] as const) {
      // BENCH_AB_LOG=info: B at log_level info (the default for users), A at warn.
      const logLevel = name === 'ab-b' && process.env.BENCH_AB_LOG === 'info' ? 'info' : 'warn';
      const child = await startServerChild(bench, { name, env: extra, logLevel });
      children.push(child);
      const receivers = await connectReceivers(child, bench);
      receiverSets.push(receivers);
      targets.push({ target: { child, receivers }, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: name === 'ab-a' ? 'A' : 'B' }) });
    }
    for (const t of targets) await warmUp(t.target, t.row);
    for (let i = 0; i < settings.repeat; i++) for (const t of targets) await sample(t.target, t.row);
    return targets.map((t) => t.row);
  } finally {
    await stopAll(children, receiverSets);
  }
}

/**
 * post_msg at 32 connections with mam off and on (one archive write for the recipient and one for the sender per
 * message, on disk before each 201), two servers sampled in turn so a drift of the host hits both alike.
 */
async function mamSeries(bench: BenchDir): Promise<Row[]> {
  log('mam: post_msg with the message archive off, then on');
  const children: Child[] = [];
  const receiverSets: Receivers[] = [];
  try {
    const targets: Array<{ target: Target; row: Row }> = [];
    for (const [name, modules, variant] of [
      ['mam-off', ['post_msg'], MAM_OFF],
      ['mam-on', ['post_msg', 'mam'], MAM_ON],
    ] as const) {
      const child = await startServerChild(bench, { name, modules: [...modules] });
      children.push(child);
      const receivers = await connectReceivers(child, bench);
      receiverSets.push(receivers);
      targets.push({ target: { child, receivers }, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant }) });
    }
    for (const t of targets) await warmUp(t.target, t.row);
    for (let i = 0; i < settings.repeat; i++) for (const t of targets) await sample(t.target, t.row);
    return targets.map((t) => t.row);
  } finally {
    await stopAll(children, receiverSets);
  }
}

/** Stream-management sessions open beside the load in the smacks series. */
const SMACKS_SESSIONS = 1000;

/**
 * post_msg at 32 connections without smacks, and with smacks and SMACKS_SESSIONS sessions that enabled stream
 * management (with resumption) connected: two servers sampled in turn. The receivers do not enable it themselves.
 */
async function smacksSeries(bench: BenchDir, idleUsernames: string[]): Promise<Row[]> {
  log(`smacks: post_msg without stream management, then with ${integer(SMACKS_SESSIONS)} stream-management sessions connected`);
  const children: Child[] = [];
  const receiverSets: Receivers[] = [];
  const sessions: IdleSession[] = [];
  try {
    const off = await startServerChild(bench, { name: 'smacks-off', modules: ['post_msg'] });
    children.push(off);
    const on = await startServerChild(bench, { name: 'smacks-on', modules: ['post_msg', 'smacks'] });
    children.push(on);
    const opened = await openIdleSessions({
      port: on.ready.c2sTls!, ca: bench.ca, domain: DOMAIN, password: IDLE_PASSWORD, usernames: idleUsernames.slice(0, SMACKS_SESSIONS),
      concurrency: 50, timeoutMs: 30_000, deadlineMs: 240_000, smacks: true,
    });
    sessions.push(...opened.sessions);
    log(`  ${integer(sessions.length)} stream-management sessions open (${opened.failures.length} failed${opened.failures[0] ? `: ${opened.failures[0]}` : ''})`);
    const targets: Array<{ target: Target; row: Row }> = [];
    for (const [child, variant, idle] of [[off, SMACKS_OFF, 0], [on, SMACKS_ON, sessions.length]] as const) {
      const receivers = await connectReceivers(child, bench);
      receiverSets.push(receivers);
      targets.push({ target: { child, receivers }, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant, idleSessions: idle }) });
    }
    for (const t of targets) await warmUp(t.target, t.row);
    for (let i = 0; i < settings.repeat; i++) for (const t of targets) await sample(t.target, t.row);
    return targets.map((t) => t.row);
  } finally {
    for (const s of sessions) s.close();
    await stopAll(children, receiverSets);
  }
}

/**
 * BENCH_SERIES=muc (not in the default run): one room of BENCH_MUC_OCCUPANTS (100,1000) occupants on xmppd's muc
 * component, then on Debian's Prosody with mod_muc (spec/helpers/prosody.ts, when installed), the owner sending
 * groupchat messages (bench/muc.ts).
 */
async function mucSeries(bench: BenchDir): Promise<MucRow[]> {
  const counts = envList('BENCH_MUC_OCCUPANTS', [100, 1000]);
  const usernames = Array.from({ length: Math.max(...counts) }, (_, i) => `occ${String(i + 1).padStart(5, '0')}`);
  const password = 'occupant-secret';
  await createIdleAccounts(writeConfig(bench, 'muc-setup', { logLevel: 'warn' }), usernames, password);
  const config = writeConfig(bench, 'muc', { logLevel: 'warn' });
  writeFileSync(config, `${JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), components: { 'conference.localhost': { module: 'muc' } } }, null, 2)}\n`);
  const child = await Child.start({ name: 'xmppd (muc)', script: runtime.file('bench/server-child'), args: [config], nodeFlags: settings.serverNodeFlags, cwd: ROOT });
  const rows: MucRow[] = [];
  try {
    for (const n of counts) {
      log(`muc: a room with ${n} occupants`);
      rows.push(await measureRoom('xmppd muc', {
        port: child.ready.c2sTls!, ca: bench.ca, domain: DOMAIN, service: 'conference.localhost', usernames: usernames.slice(0, n), password,
        seconds: settings.seconds, window: 16, log,
      }));
    }
  } finally {
    await stopAll([child], []);
  }
  const missing = prosodyMissing();
  if (missing) {
    log(`muc: no Prosody row: ${missing}`);
    return rows;
  }
  const port = await freePort();
  const prosody = await startProsody({
    domain: DOMAIN, users: usernames.map((u) => [u, password] as [string, string]), tls: { cert: bench.cert, key: bench.key }, peers: {}, logLevel: 'info',
    extraConfig: `c2s_direct_tls_ports = { ${port} }\nComponent "conference.localhost" "muc"\n`,
  });
  try {
    for (const n of counts) {
      log(`muc: Prosody, a room with ${n} occupants`);
      rows.push(await measureRoom('Prosody mod_muc', {
        port, ca: bench.ca, domain: DOMAIN, service: 'conference.localhost', usernames: usernames.slice(0, n), password,
        seconds: settings.seconds, window: 16, log,
      }));
    }
  } finally {
    await prosody.stop();
  }
  return rows;
}

const PROSODY_SMACKS = envNumber('BENCH_PROSODY_SMACKS', 1000);

/**
 * BENCH_SERIES=prosody: xmppd and Debian's Prosody 0.12 in the same run, every server sampled in turn at 32
 * connections. Debian ships no mod_post_msg, so the like-for-like rows drive both servers through the same c2s
 * sender (32 sessions of the sender account, one message in flight each until a receiver got it); xmppd's post_msg
 * row is beside them. mam off, then on (Prosody's archive in its default internal storage, and in SQLite); then the
 * mam-off c2s rows again while each server holds PROSODY_SMACKS sessions with stream management enabled.
 */
async function prosodySeries(bench: BenchDir, smacksUsernames: string[]): Promise<{ rows: Row[]; costs: SessionCost[] }> {
  log('prosody: xmppd and Prosody 0.12, post_msg and a c2s sender, mam off and on, sampled in turn');
  const children: Child[] = [];
  const prosodies: ProsodyServer[] = [];
  const receiverSets: Receivers[] = [];
  const loads: C2sLoad[] = [];
  const sessions: IdleSession[] = [];
  const body = textBody(SMALL_BODY).toString('ascii');
  const c2sLoad = async (port: number): Promise<C2sLoad> => {
    const load = await C2sLoad.open({ port, ca: bench.ca, domain: DOMAIN, sender: SENDER, receivers: RECEIVER_ACCOUNTS, connections: KEY_CONNECTIONS, timeoutMs: 15_000 });
    loads.push(load);
    return load;
  };
  try {
    const turns: Array<{ target: Target<Child | ProsodyServer>; row: Row }> = [];
    const prosodyAccounts = [SENDER, ...RECEIVER_ACCOUNTS, ...smacksUsernames.map((username) => ({ username, password: IDLE_PASSWORD }))];
    for (const mam of [false, true]) {
      // smacks loaded on every server (as in both defaults); only the held sessions below enable it.
      const modules = ['post_msg', 'smacks', ...(mam ? ['mam'] : [])];
      const state = mam ? 'mam on' : 'mam off';
      const http = await startServerChild(bench, { name: `vs-post-msg-${mam ? 'mam' : 'plain'}`, modules });
      children.push(http);
      const receivers = await connectReceivers(http, bench);
      receiverSets.push(receivers);
      turns.push({ target: { child: http, receivers }, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: `xmppd post_msg (HTTP), ${state}` }) });
      const c2s = await startServerChild(bench, { name: `vs-c2s-${mam ? 'mam' : 'plain'}`, modules });
      children.push(c2s);
      const ours = await c2sLoad(c2s.ready.c2sTls!);
      turns.push({ target: { child: c2s, drive: (s) => ours.run(s, body) }, row: newRow('xmppd', KEY_CONNECTIONS, SMALL_BODY, { variant: `xmppd c2s sender, ${state}` }) });
      for (const archiveStorage of mam ? (['internal', 'sql'] as const) : [undefined]) {
        const p = await ProsodyServer.start(`prosody (${state}${archiveStorage ? `, ${archiveStorage}` : ''})`, {
          domain: DOMAIN, tls: { cert: bench.cert, key: bench.key }, users: prosodyAccounts, mam, smacks: true, ...(archiveStorage ? { archiveStorage } : {}),
        });
        prosodies.push(p);
        const theirs = await c2sLoad(p.ready.c2sTls!);
        const where = archiveStorage === 'sql' ? ', archive in SQLite' : archiveStorage ? ', archive internal (default)' : '';
        turns.push({ target: { child: p, drive: (s) => theirs.run(s, body) }, row: newRow('prosody', KEY_CONNECTIONS, SMALL_BODY, { variant: `Prosody 0.12 c2s sender, ${state}${where}` }) });
      }
    }
    for (const t of turns) await warmUp(t.target, t.row);
    for (let i = 0; i < settings.repeat; i++) for (const t of turns) await sample(t.target, t.row);

    // The mam-off c2s rows again, each server holding the stream-management sessions.
    const costs: SessionCost[] = [];
    const held = turns.filter((t) => t.target.drive && t.row.variant.includes('mam off'));
    if (smacksUsernames.length > 0) {
      for (const t of held) {
        const server = t.target.child;
        const rssBeforeKiB = server.rssKiB();
        log(`  ${server.name}: opening ${integer(smacksUsernames.length)} sessions with stream management…`);
        const opened = await openIdleSessions({
          port: server.ready.c2sTls!, ca: bench.ca, domain: DOMAIN, password: IDLE_PASSWORD, usernames: smacksUsernames,
          concurrency: 50, timeoutMs: 30_000, deadlineMs: 240_000, smacks: true,
        });
        sessions.push(...opened.sessions);
        await new Promise((r) => setTimeout(r, 2_000));
        costs.push({ server: server.name, sessions: opened.sessions.length, failures: opened.failures.length, rssBeforeKiB, rssAfterKiB: server.rssKiB() });
        if (opened.failures.length > 0) log(`  ${opened.failures.length} failed: ${opened.failures[0]}`);
      }
      const withSessions = held.map((t) => ({
        target: t.target,
        row: newRow(t.row.target, KEY_CONNECTIONS, SMALL_BODY, { variant: `${t.row.variant}, ${integer(smacksUsernames.length)} smacks sessions held`, idleSessions: smacksUsernames.length }),
      }));
      for (let i = 0; i < settings.repeat; i++) for (const t of withSessions) await sample(t.target, t.row);
      turns.push(...withSessions);
    }
    return { rows: turns.map((t) => t.row), costs };
  } finally {
    for (const s of sessions) s.close();
    for (const l of loads) l.close();
    await stopAll(children, receiverSets);
    for (const p of prosodies) await p.stop();
  }
}

async function tlsFloor(bench: BenchDir, count: number): Promise<TlsFloor> {
  log(`memory floor: bare node:tls server, ${integer(count)} idle connections`);
  const child = await Child.start({
    name: 'tls-floor',
    script: runtime.file('bench/tls-floor'),
    cwd: ROOT,
    env: { BENCH_TLS_CERT: bench.cert, BENCH_TLS_KEY: bench.key },
  });
  const sockets: TLSSocket[] = [];
  let failures = 0;
  try {
    const rssBeforeKiB = child.rssKiB();
    const started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < count && Date.now() - started < 240_000) {
        next++;
        try {
          sockets.push(await openBareTls({ port: child.ready.c2sTls!, ca: bench.ca, servername: DOMAIN, timeoutMs: 30_000 }));
        } catch {
          failures++;
        }
      }
    }));
    await new Promise((r) => setTimeout(r, 1_000));
    const floor: TlsFloor = { connections: sockets.length, failures, rssBeforeKiB, rssAfterKiB: child.rssKiB() };
    log(`  ${integer(floor.connections)} connections: RSS ${mebibytes(rssBeforeKiB)} → ${mebibytes(floor.rssAfterKiB)} MB ` +
      `(${fixed((floor.rssAfterKiB - rssBeforeKiB) / Math.max(1, floor.connections), 1)} KiB each)`);
    return floor;
  } finally {
    for (const s of sockets) s.destroy();
    await stopAll([child], []);
  }
}

/**
 * BENCH_PROFILE: one 32-connection row with the server's CPU profiled (the measured time only), then the top
 * functions. With BENCH_PROFILE_IDLE the same server is profiled twice, before and after opening the idle sessions,
 * so the two profiles differ only by them (two server processes differ by several per cent on their own).
 */
async function profileRun(bench: BenchDir, dir: string, idleUsernames: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const pathFor = (idle: number): string => join(resolve(dir), `xmppd-${settings.profileBodyBytes}B-${idle}idle-${Date.now()}.cpuprofile`);
  const paths: string[] = [];
  const sessions: IdleSession[] = [];
  let child: Child | undefined;
  let receivers: Receivers | undefined;
  try {
    const modules = process.env.BENCH_PROFILE_MODULES?.split(',').map((m) => m.trim()).filter(Boolean);
    child = await startServerChild(bench, { name: 'profile', logLevel: process.env.BENCH_PROFILE_LOG === 'info' ? 'info' : 'warn', ...(modules?.length ? { modules } : {}) });
    receivers = await connectReceivers(child, bench);
    const target: Target = { child, receivers };
    const profiled = async (isFirst: boolean): Promise<void> => {
      const row = newRow('xmppd', KEY_CONNECTIONS, settings.profileBodyBytes, { variant: 'profiled', idleSessions: sessions.length });
      if (isFirst) await warmUp(target, row);
      const path = pathFor(sessions.length);
      await sample(target, row, { profilePath: path });
      paths.push(path);
    };
    await profiled(true);
    if (settings.profileIdle > 0) {
      await openIdle(child, bench, idleUsernames.slice(0, settings.profileIdle), sessions, settings.profileIdle);
      await profiled(false);
    }
  } finally {
    for (const s of sessions) s.close();
    await stopAll([child], [receivers]);
  }
  for (const path of paths) process.stdout.write(`${summariseProfile(path)}\n`);
}

function machine(): Record<string, string> {
  const cpu = cpus();
  return { cores: String(cpu.length), cpu: cpu[0]?.model ?? 'unknown', node: process.version, kernel: release(), date: new Date().toISOString() };
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    log(`bench: global timeout of ${settings.timeoutSeconds} s reached; stopping`);
    killAllChildren();
    process.exit(1);
  }, settings.timeoutSeconds * 1000);
  deadline.unref();

  if (settings.loadGenerator !== 'autocannon' && settings.loadGenerator !== 'wrk') {
    throw new Error(`BENCH_LOAD must be autocannon or wrk, not ${JSON.stringify(settings.loadGenerator)}.`);
  }
  if (settings.loadGenerator === 'wrk') ensureWrk(log);
  runtime = settings.isTsx ? tsxRuntime(ROOT) : compiledRuntime(ROOT, log);
  const bench = makeBenchDir();
  log(`bench: ${bench.dir}; ${settings.repeat} × ${settings.seconds} s per row, connections ${settings.connections.join('/')}, ` +
    `idle ${settings.idle.join('/') || 'none'}, children ${runtime.kind}, receivers ${settings.receiverKind}, load ${settings.loadGenerator}`);
  try {
    const setupConfig = writeConfig(bench, 'setup', { logLevel: 'warn' });
    await createAccounts(setupConfig, [SENDER, ...RECEIVER_ACCOUNTS, OFFLINE]);
    const idleCount = Math.max(0, ...settings.idle, settings.profileDir ? settings.profileIdle : 0, settings.series.has('smacks') ? SMACKS_SESSIONS : 0, settings.series.has('prosody') ? PROSODY_SMACKS : 0);
    const idleUsernames = Array.from({ length: idleCount }, (_, i) => `idle${String(i + 1).padStart(5, '0')}`);
    if (idleCount > 0) await createIdleAccounts(setupConfig, idleUsernames, IDLE_PASSWORD);

    if (settings.profileDir) {
      await profileRun(bench, settings.profileDir, idleUsernames);
      return;
    }
    const { ceiling, main } = settings.series.has('main') ? await mainSeries(bench) : { ceiling: [], main: [] };
    const hasIdle = settings.series.has('idle') && settings.idle.length > 0;
    const idle = hasIdle ? await idleSeries(bench, idleUsernames) : { rows: [], reports: [] };
    const effects = [
      ...(settings.series.has('effects') ? await effectSeries(bench) : []),
      ...(settings.series.has('ab') ? await abSeries(bench) : []),
      ...(settings.series.has('mam') ? await mamSeries(bench) : []),
      ...(settings.series.has('smacks') ? await smacksSeries(bench, idleUsernames) : []),
    ];
    const floor = hasIdle ? await tlsFloor(bench, idleCount) : undefined;
    const muc = settings.series.has('muc') ? await mucSeries(bench) : [];
    const s2s = settings.series.has('s2s')
      ? await s2sSeries({ bench, runtime, nodeFlags: settings.serverNodeFlags, root: ROOT, seconds: settings.seconds, repeat: settings.repeat, log })
      : [];
    const prosody = settings.series.has('prosody') ? await prosodySeries(bench, idleUsernames.slice(0, PROSODY_SMACKS)) : undefined;
    const results: Results = { ceiling, main, idle: idle.rows, idleReports: idle.reports, effects, floor };
    const m = machine();
    const header = [
      `Machine: ${m.cores} cores, ${m.cpu}, Node ${m.node}, Linux ${m.kernel}; ${m.date}`,
      `Each row: median of ${settings.repeat} samples of ${settings.seconds} s after a ${settings.warmupSeconds} s warm-up; ${loadGeneratorName()}, keep-alive, ` +
        `1 request in flight per connection; POST text/plain with Basic auth as ${SENDER.username}@${DOMAIN} to ${RECEIVERS} receivers ` +
        `(${settings.receiverKind} c2s sessions, direct TLS) in turn; children ${runtime.kind}; log_level warn unless stated.`,
    ];
    process.stdout.write(`\n${renderReport(results, header)}\n`);
    if (muc.length > 0) process.stdout.write(`\n${renderMucTable(muc)}\n`);
    if (s2s.length > 0) process.stdout.write(`\n${renderS2sTable(s2s)}\n`);
    if (prosody) process.stdout.write(`\n${renderProsodyTable(prosody.rows, prosody.costs)}\n`);
    if (settings.jsonPath) writeFileSync(settings.jsonPath, `${JSON.stringify({ machine: m, settings, results }, null, 2)}\n`);
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(bench.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench failed: ${(err as Error).stack ?? String(err)}`);
    killAllChildren();
    process.exit(1);
  },
);
