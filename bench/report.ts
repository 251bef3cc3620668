// Benchmark helper: what a run measured (rows of repeated samples, idle-session set-up, the TLS memory floor) and
// the Markdown report: the tables, ours/ceiling per row, and each target with its status.

import type { LoadResult } from './load.js';
import { bytes, fixed, integer, markdownTable, mebibytes, percent, type Column } from './table.js';

/** One measured run of a row's load. */
export interface Sample {
  load: LoadResult;
  /** Messages with distinct ids the clients received (undefined: no receivers for this row). */
  received?: number;
  duplicates?: number;
  peakRssKiB: number;
  /** CPU used during the sample, in cores (1.0 = one core busy): the child, the bench process, everyone else. */
  childCores: number;
  /** The part of childCores spent in the kernel (syscalls, the loopback network path). */
  childSystemCores: number;
  /** The part of childCores used by the child's main thread (Node's event loop), user + system. */
  mainThreadCores: number;
  benchCores: number;
  otherCores: number;
  stealCores: number;
}

export interface Row {
  target: 'xmppd' | 'ceiling' | 'prosody';
  /** What differs from the default server, '' for none. */
  variant: string;
  connections: number;
  bodyBytes: number;
  idleSessions: number;
  samples: Sample[];
}

export interface IdleReport {
  /** Sessions wanted; 0 for the state after closing them all. */
  target: number;
  opened: number;
  failures: number;
  firstFailure: string | undefined;
  seconds: number;
  serverSessions: number | undefined;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  heapBeforeKiB: number | undefined;
  heapAfterKiB: number | undefined;
}

/** The bare node:tls server holding as many idle connections: what TLS alone costs per connection in Node. */
export interface TlsFloor {
  connections: number;
  failures: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
}

export interface Results {
  ceiling: Row[];
  main: Row[];
  idle: Row[];
  idleReports: IdleReport[];
  effects: Row[];
  floor: TlsFloor | undefined;
}

/** Above this many cores used by other processes during a sample, it is marked as disturbed. */
export const OTHER_LOAD_LIMIT = 0.15;
export const KEY_CONNECTIONS = 32;
export const SMALL_BODY = 5;
/** Variants of the idle series: the baseline measured right before opening the idle sessions, and after closing them. */
export const IDLE_BEFORE = 'no idle sessions, before';
export const IDLE_AFTER = 'no idle sessions, after closing them';
/** The rows of the mam and smacks series, each compared with the one without (target: at least 0.8 of its rate). */
export const MAM_OFF = 'mam off';
export const MAM_ON = 'mam on (archived for recipient and sender)';
export const SMACKS_OFF = 'smacks off';
export const SMACKS_ON = 'smacks on, stream-management sessions connected';
const TWIN = { clean: 'clean twin, in turn with: ', history: 'twin with the same logins, in turn with: ' };

/** The variant of an idle-series twin row sampled in turn with `row`. */
export function twinVariant(row: Row, kind: keyof typeof TWIN = 'clean'): string {
  return `${TWIN[kind]}${row.variant || `${integer(row.idleSessions)} idle`}`;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** A throughput loss against a twin: the medians' estimate, and the range the samples taken in turn allow. */
export interface Loss {
  loss: number;
  low: number;
  high: number;
}

/**
 * Bounds for the median of `sorted` (ascending) that hold with at least 90 % confidence whatever the distribution:
 * the k-th lowest and k-th highest values, k as large as the binomial law allows (n = 5: the extremes; n = 10: the
 * second ones; n = 20: the sixth). The bounds close in as samples are added. Below 5 samples even the extremes hold
 * with less (75 % at the default 3), which is why the recorded runs use BENCH_REPEAT=5 or more.
 */
export function medianBounds(sorted: readonly number[]): [number, number] {
  const n = sorted.length;
  let k = 1;
  for (let candidate = 2; candidate <= Math.ceil(n / 2); candidate++) {
    // P(fewer than `candidate` of n samples below the median) for a fair coin.
    let tail = 0;
    for (let i = 0; i < candidate; i++) tail += binomial(n, i) / 2 ** n;
    if (1 - 2 * tail < 0.9) break;
    k = candidate;
  }
  return [sorted[k - 1]!, sorted[n - k]!];
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/**
 * Loss of `row` against its twin, relative to the phase before: 1 − (row / twin) / (before / twin before), from the
 * medians. The range comes from the samples taken in turn: each sample over its twin's sample of the same turn, and
 * each phase's median of those ratios bounded with `medianBounds`; the loss's range combines the two phases' bounds.
 * Undefined without samples.
 */
export function lossAgainstTwin(before: Row, twinBefore: Row, row: Row, twinWith: Row): Loss | undefined {
  const ratios = (a: Row, b: Row): number[] => {
    const n = Math.min(a.samples.length, b.samples.length);
    const out = [];
    for (let i = 0; i < n; i++) out.push(a.samples[i]!.load.requestsPerSecond / b.samples[i]!.load.requestsPerSecond);
    return out.sort((x, y) => x - y);
  };
  const was = ratios(before, twinBefore);
  const now = ratios(row, twinWith);
  if (was.length === 0 || now.length === 0) return undefined;
  const [wasLow, wasHigh] = medianBounds(was);
  const [nowLow, nowHigh] = medianBounds(now);
  return {
    loss: 1 - (stats(row).rps / stats(twinWith).rps) / (stats(before).rps / stats(twinBefore).rps),
    low: 1 - nowHigh / wasLow,
    high: 1 - nowLow / wasHigh,
  };
}

/** MET when even the high end of the range is within the limit, NOT MET when even the low end is over it. */
export function lossStatus(loss: Loss, limit: number): string {
  if (loss.high <= limit) return 'MET';
  if (loss.low > limit) return 'NOT MET';
  return `NOT RESOLVED: the samples allow ${percent(loss.low)} to ${percent(loss.high)}, across ${percent(limit)}; take more samples (BENCH_REPEAT) or a quieter time`;
}

export interface RowStats {
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p50: number;
  p99: number;
  failures: number;
  created: number;
  received: number | undefined;
  duplicates: number;
  peakRssKiB: number;
  childCores: number;
  /** The event loop's CPU per request in µs (its thread alone). */
  mainThreadUsPerRequest: number;
  benchCores: number;
  otherCores: number;
}

/** Medians over a row's samples (max for memory and other load, sums for counts). */
export function stats(row: Row): RowStats {
  const s = row.samples;
  const rps = s.map((x) => x.load.requestsPerSecond);
  const hasReceivers = s.every((x) => x.received !== undefined);
  return {
    rps: median(rps),
    rpsMin: Math.min(...rps),
    rpsMax: Math.max(...rps),
    p50: median(s.map((x) => x.load.p50Ms)),
    p99: median(s.map((x) => x.load.p99Ms)),
    failures: sum(s.map((x) => x.load.non2xx + x.load.errors)),
    created: sum(s.map((x) => x.load.created)),
    received: hasReceivers ? sum(s.map((x) => x.received ?? 0)) : undefined,
    duplicates: sum(s.map((x) => x.duplicates ?? 0)),
    peakRssKiB: Math.max(...s.map((x) => x.peakRssKiB)),
    childCores: median(s.map((x) => x.childCores)),
    mainThreadUsPerRequest: median(s.map((x) => (x.mainThreadCores * 1e6) / Math.max(1, x.load.requestsPerSecond))),
    benchCores: median(s.map((x) => x.benchCores)),
    otherCores: Math.max(...s.map((x) => x.otherCores)),
  };
}

export function describeSample(row: Row, sample: Sample): string {
  const parts = [row.target, `${row.connections} conns`, bytes(row.bodyBytes)];
  if (row.idleSessions > 0) parts.push(`${integer(row.idleSessions)} idle`);
  if (row.variant) parts.push(row.variant);
  const l = sample.load;
  return `${parts.join(', ')}: ${integer(l.requestsPerSecond)} req/s, p50 ${fixed(l.p50Ms, 2)} ms, p99 ${fixed(l.p99Ms, 2)} ms, ` +
    `201 ${l.created}, non-2xx ${l.non2xx}, errors ${l.errors}, received ${sample.received ?? '–'}, peak RSS ${mebibytes(sample.peakRssKiB)} MB, ` +
    `CPU ${fixed(sample.childCores, 2)} (child) + ${fixed(sample.benchCores, 2)} (bench) + ${fixed(sample.otherCores, 2)} (other) cores, ` +
    `child CPU per request ${fixed((sample.childCores * 1e6) / Math.max(1, l.requestsPerSecond), 1)} µs ` +
    `(user ${fixed(((sample.childCores - sample.childSystemCores) * 1e6) / Math.max(1, l.requestsPerSecond), 1)}), ` +
    `main thread ${fixed(sample.mainThreadCores, 2)} cores, ${fixed((sample.mainThreadCores * 1e6) / Math.max(1, l.requestsPerSecond), 1)} µs per request` +
    (sample.stealCores > 0.05 ? `, steal ${fixed(sample.stealCores, 2)}` : '');
}

/** The ceiling row of the same shape: the bare koa app. */
function ceilingOf(results: Results, row: Row): Row | undefined {
  return results.ceiling.find((c) => c.connections === row.connections && c.bodyBytes === row.bodyBytes && c.variant === '');
}

export function renderReport(results: Results, header: string[]): string {
  const ceilingFor = (row: Row): Row | undefined => ceilingOf(results, row);
  const ratio = (row: Row): number => stats(row).rps / (ceilingFor(row) ? stats(ceilingFor(row)!).rps : NaN);
  const received = (row: Row): string => {
    const s = stats(row);
    if (s.received === undefined) return 'n/a';
    return `${s.received} / ${s.created}${s.duplicates ? ` (${s.duplicates} dup)` : ''}`;
  };
  const common: Column<Row>[] = [
    { title: 'conns', value: (r) => String(r.connections) },
    { title: 'body', value: (r) => bytes(r.bodyBytes) },
    { title: 'idle c2s', value: (r) => integer(r.idleSessions) },
    { title: 'req/s (median)', value: (r) => integer(stats(r).rps) },
    { title: 'min–max', value: (r) => `${integer(stats(r).rpsMin)}–${integer(stats(r).rpsMax)}` },
  ];
  const tail: Column<Row>[] = [
    { title: 'p50 ms', value: (r) => fixed(stats(r).p50, 2) },
    { title: 'p99 ms', value: (r) => fixed(stats(r).p99, 2) },
    { title: 'non-2xx', value: (r) => String(stats(r).failures) },
    { title: 'received / 201', value: received },
    { title: 'peak RSS MB', value: (r) => mebibytes(stats(r).peakRssKiB) },
    {
      title: 'CPU server+bench+other',
      value: (r) => {
        const s = stats(r);
        return `${fixed(s.childCores, 2)}+${fixed(s.benchCores, 2)}+${fixed(s.otherCores, 2)}${s.otherCores > OTHER_LOAD_LIMIT ? ' (!)' : ''}`;
      },
    },
  ];
  const label = (r: Row): string => r.variant || (r.idleSessions > 0 ? 'idle sessions' : 'default');
  const ours: Column<Row>[] = [
    { title: 'row', align: 'left', value: label },
    ...common,
    { title: 'ceiling req/s', value: (r) => integer(ceilingFor(r) ? stats(ceilingFor(r)!).rps : NaN) },
    { title: 'ours/ceiling', value: (r) => percent(ratio(r)) },
    ...tail,
  ];
  const ceilingColumns: Column<Row>[] = [
    { title: 'row', align: 'left', value: (r) => (r.variant ? `ceiling (bare koa, ${r.variant})` : 'ceiling (bare koa)') },
    ...common,
    ...tail,
  ];
  const idleColumns: Column<IdleReport>[] = [
    { title: 'idle sessions wanted', value: (r) => (r.target === 0 ? 'all closed' : integer(r.target)) },
    { title: 'opened', value: (r) => integer(r.opened) },
    { title: 'failed', value: (r) => integer(r.failures) },
    { title: 'server counts', value: (r) => (r.serverSessions === undefined ? '?' : integer(r.serverSessions)) },
    { title: 'seconds', value: (r) => fixed(r.seconds, 1) },
    { title: 'RSS before → after MB', value: (r) => `${mebibytes(r.rssBeforeKiB)} → ${mebibytes(r.rssAfterKiB)}` },
    { title: 'JS heap before → after MB', value: (r) => `${mebibytes(r.heapBeforeKiB ?? NaN)} → ${mebibytes(r.heapAfterKiB ?? NaN)}` },
  ];
  const floorColumns: Column<TlsFloor>[] = [
    { title: 'bare node:tls server: idle connections', value: (r) => integer(r.connections) },
    { title: 'failed', value: (r) => integer(r.failures) },
    { title: 'RSS before → after MB', value: (r) => `${mebibytes(r.rssBeforeKiB)} → ${mebibytes(r.rssAfterKiB)}` },
    { title: 'KiB per connection', value: (r) => fixed((r.rssAfterKiB - r.rssBeforeKiB) / Math.max(1, r.connections), 1) },
  ];
  const parts = [...header, '', markdownTable(ours, [...results.main, ...results.idle, ...results.effects])];
  if (results.ceiling.length > 0) parts.push('', markdownTable(ceilingColumns, results.ceiling));
  if (results.idleReports.length > 0) parts.push('', markdownTable(idleColumns, results.idleReports));
  if (results.floor) parts.push('', markdownTable(floorColumns, [results.floor]));
  parts.push('', targets(results, ratio));
  return parts.join('\n');
}

function targets(results: Results, ratio: (row: Row) => number): string {
  const key = results.main.find((r) => r.connections === KEY_CONNECTIONS && r.bodyBytes === SMALL_BODY && r.idleSessions === 0 && r.variant === '');
  const before = results.idle.find((r) => r.variant === IDLE_BEFORE);
  const after = results.idle.find((r) => r.variant === IDLE_AFTER);
  const maxIdle = results.idle.filter((r) => r.idleSessions > 0).at(-1);
  const status = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
  const lines = [`Targets (${KEY_CONNECTIONS} connections, ${SMALL_BODY}-byte body, medians):`];
  if (key) {
    const r = ratio(key);
    lines.push(`- ≥ 50% of the ceiling: ${percent(r)} — ${status(r >= 0.5)}`);
    lines.push(`- p99 ≤ 5 ms: ${fixed(stats(key).p99, 2)} ms — ${status(stats(key).p99 <= 5)}`);
  }
  if (before && maxIdle) {
    // Relative to a twin sampled in turn: the drift of the machine between the phases cancels.
    const lossAgainst = (kind: 'clean' | 'history', row: Row): { loss: Loss; text: string } | undefined => {
      const twinOf = (r: Row): Row | undefined => results.idle.find((t) => t.variant === twinVariant(r, kind));
      const twinBefore = twinOf(before);
      const twinWith = twinOf(row);
      if (!twinBefore || !twinWith) return undefined;
      const loss = lossAgainstTwin(before, twinBefore, row, twinWith);
      if (!loss) return undefined;
      return { loss, text: `${percent(loss.loss)} (before ${integer(stats(before).rps)} req/s, twin ${integer(stats(twinBefore).rps)} → ` +
        `then ${integer(stats(row).rps)}, twin ${integer(stats(twinWith).rps)}; the samples in turn allow ${percent(loss.low)} to ${percent(loss.high)})` };
    };
    const clean = lossAgainst('clean', maxIdle);
    const held = lossAgainst('history', maxIdle);
    if (clean) {
      lines.push(`- ≤ 10% throughput loss with ${integer(maxIdle.idleSessions)} idle sessions, against a clean twin: ${clean.text} — ${lossStatus(clean.loss, 0.1)}`);
    }
    if (held) lines.push(`  - against a twin that logged in and closed as many sessions (what holding them costs): ${held.text}`);
    const afterClean = after ? lossAgainst('clean', after) : undefined;
    if (afterClean) lines.push(`  - after closing them, against the clean twin: ${afterClean.text}`);
    for (const row of results.idle.filter((r) => r.idleSessions > 0 && r !== maxIdle)) {
      const c = lossAgainst('clean', row);
      const h = lossAgainst('history', row);
      if (c) lines.push(`  - with ${integer(row.idleSessions)}: ${c.text} against the clean twin${h ? `; ${h.text} against the history twin` : ''}`);
    }
    lines.push(`- peak RSS ≤ 150 MB with ${integer(maxIdle.idleSessions)} sessions: ${mebibytes(stats(maxIdle).peakRssKiB)} MB — ${status(stats(maxIdle).peakRssKiB <= 150 * 1024)}`);
    const opened = results.idleReports.filter((r) => r.target > 0);
    const first = opened[0];
    const last = opened.at(-1);
    if (first && last && last.opened > 0 && results.floor && results.floor.connections > 0) {
      const floor = results.floor;
      lines.push(`  - what a session costs: the server's RSS grew ${fixed((last.rssAfterKiB - first.rssBeforeKiB) / last.opened, 1)} KiB per idle session; ` +
        `a bare node:tls server's grew ${fixed((floor.rssAfterKiB - floor.rssBeforeKiB) / floor.connections, 1)} KiB per connection (${integer(floor.connections)} of them)`);
    }
  }
  // The issue "Phones": with the archive on, and with 1,000 stream-management sessions held, at least 0.8 of the rate
  // without. The event loop's CPU per request moves less with the host's noise than the rate does.
  for (const [off, on] of [[MAM_OFF, MAM_ON], [SMACKS_OFF, SMACKS_ON]] as const) {
    const without = results.effects.find((r) => r.variant === off);
    const withIt = results.effects.find((r) => r.variant === on);
    if (!without || !withIt) continue;
    const r = stats(withIt).rps / stats(without).rps;
    lines.push(`- ${on} ≥ 0.8 of ${off}: ${fixed(r, 2)} (${integer(stats(withIt).rps)} against ${integer(stats(without).rps)} req/s; ` +
      `event loop ${fixed(stats(withIt).mainThreadUsPerRequest, 1)} against ${fixed(stats(without).mainThreadUsPerRequest, 1)} µs of CPU per request) — ${status(r >= 0.8)}`);
  }
  const all = [...results.ceiling, ...results.main, ...results.idle, ...results.effects];
  const disturbed = all.filter((r) => stats(r).otherCores > OTHER_LOAD_LIMIT).length;
  if (disturbed > 0) lines.push(`- ${disturbed} row(s) marked (!) had a sample during which other processes used > ${OTHER_LOAD_LIMIT} cores: take them with care.`);
  return lines.join('\n');
}
