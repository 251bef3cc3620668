// Load without loss: 100,000 POSTs at 64 connections to two online receivers; no 5xx, the
// receivers' count equals the 201 answers, no duplicate ids. Bounded: LOSS_TOTAL, LOSS_SECONDS.
// Run: node --import tsx bench/nothing-lost.ts   (npm test runs the 5,000-message version)

import { cpus } from 'node:os';
import { startTestServer } from '../spec/helpers/server.js';
import { stopClient } from '../spec/host/c2s/helpers.js';
import { online, runLoad } from '../spec/helpers/load.js';

const total = Number(process.env.LOSS_TOTAL ?? 100_000);
const seconds = Number(process.env.LOSS_SECONDS ?? 300);

const ts = await startTestServer({
  config: { log_level: 'warn', pbkdf2_iterations: 10000, post_msg: { rate_per_second: 100000, rate_burst: 1000000 } },
  users: [['bob@localhost', 'bob-pw'], ['alice@localhost', 'alice-pw'], ['carol@localhost', 'carol-pw']],
});
const alice = await online(ts, 'alice', 'alice-pw');
const carol = await online(ts, 'carol', 'carol-pw');
try {
  const r = await runLoad({
    url: ts.httpUrl,
    total,
    connections: 64,
    sender: ['bob@localhost', 'bob-pw'],
    receivers: [{ name: 'alice', got: alice.got }, { name: 'carol', got: carol.got }],
    deadlineMs: seconds * 1000,
  });
  const fivexx = [...r.statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
  console.log('| sent | 201 | 5xx | received | lost | duplicates | seconds | req/s |');
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| ${r.total} | ${r.acked.length} | ${fivexx} | ${r.received.length} | ${r.lost} | ${r.duplicates} | ${(r.ms / 1000).toFixed(1)} | ${Math.round((r.total / r.ms) * 1000)} |`);
  const ok = r.total === total && fivexx === 0 && r.lost === 0 && r.duplicates === 0 && r.received.length === r.acked.length;
  console.log(ok ? 'nothing lost' : 'FAILED: see the row above');
  process.exitCode = ok ? 0 : 1;
} finally {
  await stopClient(alice.client);
  await stopClient(carol.client);
  await ts.stop();
}
