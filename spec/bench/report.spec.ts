// The bench report's idle-loss verdict (bench/report.ts): a loss against a twin sampled in turn, with the range the
// paired samples allow (order-statistic bounds on each phase's median), and MET / NOT MET only when the whole range
// is on one side of the limit.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lossAgainstTwin, lossStatus, MAM_OFF, MAM_ON, medianBounds, renderReport, SMACKS_OFF, SMACKS_ON, type Row, type Sample } from '../../bench/report.js';

function row(variant: string, rates: number[], target: Row['target'] = 'xmppd', mainThreadCores = 0.9): Row {
  const samples = rates.map((requestsPerSecond): Sample => ({
    load: { requestsPerSecond, p50Ms: 1, p99Ms: 4, created: 10, non2xx: 0, errors: 0 } as Sample['load'],
    peakRssKiB: 0,
    childCores: 1,
    childSystemCores: 0,
    mainThreadCores,
    benchCores: 0.5,
    otherCores: 0,
    stealCores: 0,
  }));
  return { target, variant, connections: 32, bodyBytes: 5, idleSessions: 0, samples };
}

describe('bench report: the ceiling', () => {
  const results = {
    main: [row('', [100, 100, 100])],
    ceiling: [row('', [200, 200, 200], 'ceiling')],
    idle: [],
    idleReports: [],
    effects: [],
    floor: undefined,
  };
  const report = renderReport(results, []);

  it('counts the ratio target against the bare koa ceiling', () => {
    assert.match(report, /^\| default .*\|\s+200 \|\s+50% \|/m);
    assert.match(report, /^- ≥ 50% of the ceiling: 50% — MET$/m);
  });
});

describe('bench report: the archive and stream-management targets', () => {
  const report = renderReport({
    main: [],
    ceiling: [],
    idle: [],
    idleReports: [],
    // Medians: mam 700 against 1,000 req/s; smacks 940 against 1,000 (the middle sample, not the mean of 763).
    effects: [row(MAM_OFF, [900, 1000, 1100], 'xmppd', 1), row(MAM_ON, [600, 700, 900]), row(SMACKS_OFF, [1000, 1000, 1000]), row(SMACKS_ON, [940, 950, 400])],
    floor: undefined,
  }, []);

  it('compares the medians with and without, with the event loop\'s CPU per request of each', () => {
    // 0.9 cores at 700 req/s: 1285.7 µs; 1 core at 1,000 req/s: 1000 µs.
    assert.match(report, new RegExp(`^- ${MAM_ON.replace(/[()]/g, '\\$&')} ≥ 0\\.8 of ${MAM_OFF}: 0\\.70 \\(700 against 1,000 req/s; event loop 1285\\.7 against 1000\\.0 µs of CPU per request\\) — NOT MET$`, 'm'));
    assert.match(report, new RegExp(`^- ${SMACKS_ON} ≥ 0\\.8 of ${SMACKS_OFF}: 0\\.94 \\(940 against 1,000 req/s; .*\\) — MET$`, 'm'));
  });

  it('leaves the line out when a series did not run', () => {
    const without = renderReport({ main: [], ceiling: [], idle: [], idleReports: [], effects: [row(MAM_OFF, [1000])], floor: undefined }, []);
    assert.doesNotMatch(without, /≥ 0\.8 of/);
  });
});

describe('bench report: idle loss against a twin', () => {
  it('takes the loss from the medians and its range from the samples taken in turn', () => {
    const loss = lossAgainstTwin(row('b', [100, 100, 100]), row('tb', [100, 100, 100]), row('w', [90, 90, 90]), row('tw', [100, 100, 100]))!;
    assert.ok(Math.abs(loss.loss - 0.1) < 1e-9);
    assert.ok(Math.abs(loss.low - 0.1) < 1e-9 && Math.abs(loss.high - 0.1) < 1e-9);
  });

  it('cancels a drift of the host that hits the server and its twin alike', () => {
    const loss = lossAgainstTwin(row('b', [100, 100, 100]), row('tb', [100, 100, 100]), row('w', [70, 72, 68]), row('tw', [70, 72, 68]))!;
    assert.ok(Math.abs(loss.loss) < 1e-9 && Math.abs(loss.low) < 1e-9 && Math.abs(loss.high) < 1e-9);
    assert.equal(lossStatus(loss, 0.1), 'MET');
  });

  it('says MET, NOT MET or NOT RESOLVED by where the whole range lies', () => {
    assert.equal(lossStatus({ loss: 0.02, low: -0.05, high: 0.09 }, 0.1), 'MET');
    assert.equal(lossStatus({ loss: 0.2, low: 0.12, high: 0.3 }, 0.1), 'NOT MET');
    assert.match(lossStatus({ loss: 0.02, low: -0.11, high: 0.14 }, 0.1), /^NOT RESOLVED: the samples allow -11% to 14%, across 10%/);
  });

  it('bounds each phase\'s median by order statistics that close in as samples are added', () => {
    const ascending = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
    assert.deepEqual(medianBounds(ascending(5)), [1, 5]);
    assert.deepEqual(medianBounds(ascending(10)), [2, 9]);
    assert.deepEqual(medianBounds(ascending(20)), [6, 15]);
    assert.deepEqual(medianBounds([7]), [7, 7]);
  });

  it('gives a narrower range for the same spread measured with more samples', () => {
    const spread = (n: number): number[] => Array.from({ length: n }, (_, i) => 90 + (20 * i) / (n - 1));
    const range = (n: number): number => {
      const loss = lossAgainstTwin(row('b', spread(n)), row('tb', Array(n).fill(100)), row('w', spread(n)), row('tw', Array(n).fill(100)))!;
      return loss.high - loss.low;
    };
    assert.ok(range(20) < range(10) && range(10) < range(5), `${range(5)} ${range(10)} ${range(20)}`);
  });
});
