// Benchmark helper: one load run with autocannon (keep-alive connections, POST, fixed duration), with latency
// taken from every response at sub-millisecond resolution (autocannon's own histogram keeps whole milliseconds).

import autocannon from 'autocannon';

export interface LoadOptions {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Request paths, used in turn by each connection (several recipients). */
  paths: readonly string[];
  connections: number;
  seconds: number;
  body: Buffer;
  headers: Record<string, string>;
  /** Requests per second over all connections; unset: as fast as the server answers. */
  rate?: number;
}

export interface LoadResult {
  seconds: number;
  responses: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  created: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  /** CPU seconds (user + system) of a load generator that runs as its own process (wrk); autocannon's is the bench's. */
  generatorCpuSeconds?: number;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let created = 0;
  const statusCounts: Record<string, number> = {};
  let settle: (value: { err: unknown; result: autocannon.Result }) => void = () => undefined;
  const finished = new Promise<{ err: unknown; result: autocannon.Result }>((resolve) => (settle = resolve));
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    method: 'POST',
    headers: opts.headers,
    body: opts.body,
    requests: opts.paths.map((path) => ({ method: 'POST', path })),
    timeout: 10,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
  }, (err: unknown, result: autocannon.Result) => settle({ err, result }));
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (count === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[count++] = responseTime;
    if (statusCode === 201) created++;
    statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
  });
  const { err, result } = await finished;
  if (err) throw err;
  const sorted = latencies.subarray(0, count).sort();
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000;
  return {
    seconds,
    responses: count,
    requestsPerSecond: count / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: count > 0 ? sorted[count - 1]! : NaN,
    created,
    non2xx: count - countRange(statusCounts, 200, 299),
    errors: result.errors,
    timeouts: result.timeouts,
    statusCounts,
  };
}

export function countRange(counts: Record<string, number>, low: number, high: number): number {
  let n = 0;
  for (const [status, c] of Object.entries(counts)) if (Number(status) >= low && Number(status) <= high) n += c;
  return n;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}
