// Benchmark helper: one load run with wrk (Debian's, C, epoll) instead of autocannon, for BENCH_LOAD=wrk. The targets'
// reference figures were taken with wrk; autocannon runs on Node's event loop in the bench process, beside the
// receiving clients, so its own turns are part of the latency it reports. Running both tells the load generator's
// share of a p99 apart from the server's.
//
// A Lua script (written to a temporary file) sends the same POST as autocannon, the paths in turn per connection,
// counts the answers by status in each thread and prints one JSON line at the end; latency percentiles come from
// wrk's own per-request record (microseconds, not bucketed).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countRange, type LoadOptions, type LoadResult } from './load.js';

const RESULT_MARK = 'WRK-RESULT ';

/** wrk on the PATH, installed from Debian (apt-get, as root) when it is missing. Throws with what to do if it cannot be. */
export function ensureWrk(log: (line: string) => void): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  if (process.getuid?.() !== 0) throw new Error('BENCH_LOAD=wrk needs wrk: install it with `apt-get install wrk` (Debian), or run as root to let the bench install it.');
  log('bench: installing wrk from Debian (apt-get install wrk)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'wrk'], { env, encoding: 'utf8' });
  if (install.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, encoding: 'utf8' });
    install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'wrk'], { env, encoding: 'utf8' });
  }
  if (install.status !== 0 || spawnSync('wrk', ['--version']).error !== undefined) {
    throw new Error(`BENCH_LOAD=wrk: could not install wrk with apt-get: ${(install.stderr || install.stdout || String(install.error)).trim()}`);
  }
}

/** A Lua string literal for any bytes: every byte outside printable ASCII (and `"`, `\`) as a decimal escape. */
function luaString(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '"';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b}`;
  return `${out}"`;
}

export function wrkScript(opts: Pick<LoadOptions, 'paths' | 'body' | 'headers'>): string {
  const headers = Object.entries(opts.headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  return [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(opts.body)}`,
    ...headers,
    `local paths = { ${opts.paths.map(luaString).join(', ')} }`,
    // Each thread's connections take the paths in turn, as autocannon's request list does.
    'local next_path = 0',
    'counts = {}',
    'request = function()',
    '  next_path = next_path % #paths + 1',
    '  return wrk.format(nil, paths[next_path])',
    'end',
    'response = function(status, headers, body)',
    '  counts[status] = (counts[status] or 0) + 1',
    'end',
    'local threads = {}',
    'setup = function(thread) table.insert(threads, thread) end',
    'done = function(summary, latency, requests)',
    '  local parts = {}',
    '  for _, thread in ipairs(threads) do',
    '    for status, n in pairs(thread:get("counts")) do',
    '      parts[#parts + 1] = string.format("\\"%d\\":%d", status, n)',
    '    end',
    '  end',
    '  local e = summary.errors',
    `  io.write(string.format("${RESULT_MARK}{\\"durationUs\\":%d,\\"requests\\":%d,\\"p50Us\\":%d,\\"p99Us\\":%d,\\"maxUs\\":%d,` +
      `\\"errors\\":%d,\\"timeouts\\":%d,\\"statuses\\":[{%s}]}\\n",`,
    '    summary.duration, summary.requests, latency:percentile(50), latency:percentile(99), latency.max,',
    '    e.connect + e.read + e.write, e.timeout, table.concat(parts, "},{")))',
    'end',
    '',
  ].join('\n');
}

interface WrkReport {
  durationUs: number;
  requests: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  errors: number;
  timeouts: number;
  /** One object per thread's status (several threads may report the same status). */
  statuses: Record<string, number>[];
}

/**
 * wrk runs under `sh -c '…; times'`: the shell's `times` prints its own and then its children's user and system
 * time (`0m1.234s 0m0.567s`), so wrk's CPU is known exactly, to count it as the load generator's and not as "other".
 */
export function parseChildTimes(stdout: string): number | undefined {
  const lines = stdout.trimEnd().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1] ?? '');
  if (!m) return undefined;
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

export function parseWrkOutput(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (!line) throw new Error(`wrk printed no result line:\n${stdout.trim()}`);
  const report = JSON.parse(line.slice(RESULT_MARK.length)) as WrkReport;
  const statusCounts: Record<string, number> = {};
  for (const part of report.statuses) for (const [status, n] of Object.entries(part)) statusCounts[status] = (statusCounts[status] ?? 0) + n;
  const responses = Object.values(statusCounts).reduce((a, b) => a + b, 0);
  const seconds = report.durationUs / 1e6;
  return {
    seconds,
    responses,
    requestsPerSecond: responses / seconds,
    p50Ms: report.p50Us / 1000,
    p99Ms: report.p99Us / 1000,
    maxMs: report.maxUs / 1000,
    created: statusCounts['201'] ?? 0,
    non2xx: responses - countRange(statusCounts, 200, 299),
    errors: report.errors,
    timeouts: report.timeouts,
    statusCounts,
    generatorCpuSeconds: parseChildTimes(stdout),
  };
}

/** One run of wrk: keep-alive, one request in flight per connection, 2 threads (fewer with one connection). */
export async function runWrk(opts: LoadOptions): Promise<LoadResult> {
  if (opts.rate) throw new Error('BENCH_LOAD=wrk cannot hold a fixed rate (BENCH_RATE); use autocannon for that.');
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'));
  try {
    const script = join(dir, 'post.lua');
    writeFileSync(script, wrkScript(opts));
    const args = ['-t', String(Math.min(2, opts.connections)), '-c', String(opts.connections), '-d', `${Math.max(1, Math.round(opts.seconds))}s`,
      '--timeout', '10s', '-s', script, opts.url];
    const proc = spawn('sh', ['-c', 'wrk "$@"; code=$?; times; exit $code', 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', resolve);
    });
    if (code !== 0) throw new Error(`wrk exited with code ${code}: ${(stderr || stdout).trim()}`);
    return parseWrkOutput(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
