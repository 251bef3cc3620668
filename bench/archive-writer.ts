// Benchmark: the archive store's writes without HTTP or XMPP (lib/host/modules/storage_sqlite: appends of one turn
// go to the writer thread as one batch, which commits them and flushes the WAL before they settle). For each batch
// size: how long a batch takes to be durable, and the CPU per row of the event loop and of the other threads (the
// writer thread, SQLite, the flush). Rows look like the mam series': a 5-byte post_msg message archived for the
// sender and for one of four receivers in turn. Run: node --import tsx bench/archive-writer.ts [seconds=3]

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../lib/host/modules/storage_sqlite/sqlite.js';
import { fixed, integer, markdownTable, type Column } from './table.js';
import { mainThreadCpuSeconds, processCpuSeconds } from './cpu.js';

const seconds = Number(process.argv[2] ?? 3);
const BATCH_SIZES = [2, 24, 96];
const RECEIVERS = ['rcv1@localhost', 'rcv2@localhost', 'rcv3@localhost', 'rcv4@localhost'];
const SENDER = 'sender@localhost';

interface Result {
  rows: number;
  batches: number;
  msPerBatch: number;
  mainUsPerRow: number;
  otherUsPerRow: number;
}

const message = (to: string, n: number): string =>
  `<message xmlns="jabber:client" to="${to}" from="${SENDER}/post_msg" type="chat" id="bench-${n}"><body>hello</body></message>`;

async function measure(batchSize: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-archive-bench-'));
  const storage = openSqliteStorage(dir);
  const archive = storage.archive('localhost', 'archive');
  let n = 0;
  const batch = (): Promise<unknown> => {
    const appends: Array<Promise<string>> = [];
    for (let i = 0; i < batchSize; i += 2) {
      const to = RECEIVERS[n % RECEIVERS.length]!;
      const value = message(to, n++);
      appends.push(archive.append(SENDER, { with: to, value }), archive.append(to, { with: SENDER, value }));
    }
    return Promise.all(appends);
  };
  try {
    // Warm-up: the writer thread starts, the file grows past its first pages.
    for (let i = 0; i < 200; i++) await batch();
    const cpuBefore = processCpuSeconds(process.pid);
    const mainBefore = mainThreadCpuSeconds(process.pid);
    const start = performance.now();
    let batches = 0;
    while (performance.now() - start < seconds * 1000) {
      await batch();
      batches++;
    }
    const elapsedMs = performance.now() - start;
    const main = mainThreadCpuSeconds(process.pid) - mainBefore;
    const other = processCpuSeconds(process.pid) - cpuBefore - main;
    const rows = batches * batchSize;
    return { rows, batches, msPerBatch: elapsedMs / batches, mainUsPerRow: (main * 1e6) / rows, otherUsPerRow: (other * 1e6) / rows };
  } finally {
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const columns: Column<[number, Result]>[] = [
  { title: 'rows per batch', value: ([size]) => String(size) },
  { title: 'batches', value: ([, r]) => integer(r.batches) },
  { title: 'ms per batch (durable)', value: ([, r]) => fixed(r.msPerBatch, 3) },
  { title: 'rows/s', value: ([, r]) => integer(r.rows / (r.batches * r.msPerBatch / 1000)) },
  { title: 'event loop µs per row', value: ([, r]) => fixed(r.mainUsPerRow, 1) },
  { title: 'other threads µs per row', value: ([, r]) => fixed(r.otherUsPerRow, 1) },
];

const results: Array<[number, Result]> = [];
for (const size of BATCH_SIZES) results.push([size, await measure(size)]);
process.stdout.write(`archive writer, ${seconds} s per batch size, ${cpus().length} cores, ${process.version}, database under ${tmpdir()}\n\n${markdownTable(columns, results)}\n`);
