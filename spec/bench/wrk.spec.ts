// The bench's wrk runner (bench/wrk.ts, BENCH_LOAD=wrk): Debian's wrk against a real node:http server on 127.0.0.1,
// checking that the requests are the bench's (method, paths in turn, headers, body bytes) and that the counts and
// latencies it reports are the server's. Needs `apt-get install wrk` (`.ci/run` installs it); skipped locally
// without it, failed in CI (spec/helpers/requires.ts).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { program, requires } from '../helpers/requires.js';
import { parseChildTimes, parseWrkOutput, runWrk } from '../../bench/wrk.js';

const skip = requires([program('wrk', 'wrk')]);

describe('bench: wrk as the load generator', () => {
  describe('against a real HTTP server', { skip }, () => {
    let server: Server;
    let url = '';
    const answered: Record<string, number> = {};
    const seen = { paths: new Map<string, number>(), bodies: new Set<string>(), auth: new Set<string>(), types: new Set<string>(), methods: new Set<string>() };

    before(async () => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.methods.add(req.method ?? '');
          seen.paths.set(req.url ?? '', (seen.paths.get(req.url ?? '') ?? 0) + 1);
          seen.bodies.add(Buffer.concat(chunks).toString('hex'));
          seen.auth.add(req.headers.authorization ?? '');
          seen.types.add(req.headers['content-type'] ?? '');
          // One path is refused, so the non-2xx count has something to count.
          const status = req.url === '/msg/refused' ? 400 : 201;
          answered[status] = (answered[status] ?? 0) + 1;
          res.writeHead(status, { 'Content-Type': 'text/plain' }).end('ok');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('sends the bench POST, the paths in turn, and reports what the server answered', { timeout: 30_000 }, async () => {
      // Quotes, a backslash, a newline and UTF-8 must reach the server byte for byte through the Lua script.
      const body = Buffer.from('db1 "is" \\ down\nß ✓', 'utf8');
      const auth = `Basic ${Buffer.from('bob@localhost:pa"ss\\word').toString('base64')}`;
      const result = await runWrk({
        url,
        paths: ['/msg/a', '/msg/b', '/msg/refused'],
        connections: 2,
        seconds: 1,
        body,
        headers: { Authorization: auth, 'Content-Type': 'text/plain; charset=utf-8' },
      });

      assert.deepEqual([...seen.methods], ['POST']);
      assert.deepEqual([...seen.bodies], [body.toString('hex')]);
      assert.deepEqual([...seen.auth], [auth]);
      assert.deepEqual([...seen.types], ['text/plain; charset=utf-8']);
      assert.deepEqual([...seen.paths.keys()].sort(), ['/msg/a', '/msg/b', '/msg/refused']);
      const counts = [...seen.paths.values()];
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 2, `paths in turn: ${JSON.stringify(Object.fromEntries(seen.paths))}`);

      // wrk stops counting at the deadline: requests still in flight then (at most one per connection) were
      // answered by the server but are not in wrk's counts.
      assert.ok(result.created > 100, `201s counted: ${result.created}`);
      assert.ok(answered[201]! - result.created >= 0 && answered[201]! - result.created <= 2, `201: server ${answered[201]}, wrk ${result.created}`);
      assert.ok(answered[400]! - result.non2xx >= 0 && answered[400]! - result.non2xx <= 2, `400: server ${answered[400]}, wrk ${result.non2xx}`);
      assert.equal(result.responses, result.created + result.non2xx);
      assert.deepEqual(Object.keys(result.statusCounts).sort(), ['201', '400']);
      assert.equal(result.errors, 0);
      assert.ok(result.seconds > 0.9 && result.seconds < 2, `duration ${result.seconds} s`);
      assert.ok(Math.abs(result.requestsPerSecond - result.responses / result.seconds) < 1e-6);
      // wrk's own CPU, from the shell's `times`: some, and no more than its two threads could use.
      assert.ok(result.generatorCpuSeconds !== undefined && result.generatorCpuSeconds > 0 && result.generatorCpuSeconds < 2 * result.seconds + 0.5,
        `wrk CPU ${result.generatorCpuSeconds} s`);
      assert.ok(result.p50Ms > 0 && result.p50Ms <= result.p99Ms && result.p99Ms <= result.maxMs, `p50 ${result.p50Ms}, p99 ${result.p99Ms}, max ${result.maxMs}`);
    });

    it('refuses a fixed rate, which wrk cannot hold', async () => {
      await assert.rejects(
        runWrk({ url, paths: ['/msg/a'], connections: 1, seconds: 1, body: Buffer.from('x'), headers: {}, rate: 100 }),
        /cannot hold a fixed rate/,
      );
    });
  });
});

describe('bench: reading wrk\'s result line', () => {
  it('adds up the statuses of every thread and converts microseconds', () => {
    const line = 'WRK-RESULT {"durationUs":2000000,"requests":7,"p50Us":1500,"p99Us":4200,"maxUs":9000,"errors":1,"timeouts":0,' +
      '"statuses":[{"201":3,"503":1},{"201":2,"204":1}]}';
    const result = parseWrkOutput(`Running 2s test @ http://127.0.0.1:1\n${line}\n`);
    assert.deepEqual(result.statusCounts, { 201: 5, 503: 1, 204: 1 });
    assert.equal(result.responses, 7);
    assert.equal(result.created, 5);
    assert.equal(result.non2xx, 1);
    assert.equal(result.requestsPerSecond, 3.5);
    assert.equal(result.p50Ms, 1.5);
    assert.equal(result.p99Ms, 4.2);
    assert.equal(result.maxMs, 9);
    assert.equal(result.errors, 1);
  });

  it('takes wrk\'s CPU from the children line of the shell\'s `times`', () => {
    assert.equal(parseChildTimes('WRK-RESULT {}\n0m0.000000s 0m0.004000s\n0m1.250000s 1m2.500000s\n'), 1.25 + 62.5);
    assert.equal(parseChildTimes('WRK-RESULT {}\n'), undefined);
  });

  it('says so when wrk printed no result', () => {
    assert.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n'), /no result line/);
  });
});
