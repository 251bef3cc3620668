// The archive store's writer thread (Prosody's mod_storage_sql archive, written from one Lua thread; DIFF: here a
// worker_threads Worker with a connection of its own): each group commit's INSERTs run there, so the event loop
// goes on serving while a batch reaches the disk. Started by sqlite.ts (ArchiveWriter).
//
// Durability is pipelined (group commit with a separate flush, as a database server's WAL writer does): the
// connection commits with synchronous=NORMAL (the WAL frames written, not yet flushed), answers "committed" so the
// next batch can start, and an fdatasync of the -wal file on libuv's pool then makes every batch committed before
// it durable, answered "durable". The next transaction's INSERTs overlap this batch's flush. An append settles at
// "durable": what a 201 promises is unchanged (on disk, as with synchronous=FULL), at less wait per commit.
// SQLite in WAL mode with synchronous=NORMAL still syncs the WAL before a checkpoint and the database after it.

/** Fields per row in a request's flat `rows` (one array of strings and numbers costs less to post than objects). */
export const ROW_FIELDS = 7;

/** One archive item to insert, flattened into a request's `rows` in this order. */
export interface WriterRow {
  host: string;
  store: string;
  user: string;
  key: string;
  stamp: number;
  with: string;
  value: string;
}

/** A batch for one transaction (ROW_FIELDS values a row), or the order to close the connection and end. */
export type WriterRequest = { seq: number; rows: Array<string | number> } | { close: true };

/**
 * `committed`: batch `seq` was committed, or rolled back with `error` (then it is finished). `durable`: every batch
 * committed up to and including seq `durable` is on disk, or, with `error`, could not be flushed.
 */
export type WriterReply =
  | { committed: number; error?: { message: string; code?: string } }
  | { durable: number; error?: { message: string; code?: string } };

export interface WriterData {
  path: string;
  /** Where better-sqlite3 is (the thread's code is evaluated, so it resolves nothing relative to this file). */
  driver: string;
  /** Where batches come in and answers go out (the main thread also reads answers synchronously from it). */
  port: import('node:worker_threads').MessagePort;
  /** done[0]: every batch up to this seq is finished (durable or rolled back); the main thread can wait on it. */
  done: Int32Array;
}

/**
 * The thread's code, evaluated (`new Worker(WRITER_SOURCE, { eval: true })`): a file would have to be compiled
 * first, and under tsx a worker does not load TypeScript. CommonJS, plain JavaScript; its messages are the types above.
 */
export const WRITER_SOURCE = String.raw`
const { workerData } = require('node:worker_threads');
const { openSync, closeSync, fdatasync } = require('node:fs');
const Database = require(workerData.driver);
const { done, port } = workerData;
const FIELDS = ${ROW_FIELDS};
let db;
let wal;
let write;
// Opened at the first batch, inside its try: a connection or statement that fails fails that batch, not the thread.
const writer = () => {
  db = new Database(workerData.path);
  db.pragma('journal_mode = WAL');
  // NORMAL: the commit writes the WAL without flushing it; the flush below follows every commit before an answer.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // OR REPLACE: an id given again replaces its item, which takes a new place at the end (Prosody's SQL archive).
  const insert = db.prepare('INSERT OR REPLACE INTO archive (host, store, user, key, stamp, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
  return db.transaction((rows) => {
    for (let i = 0; i < rows.length; i += FIELDS) insert.run(rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4], rows[i + 5], rows[i + 6]);
  });
};
const errorOf = (err) => ({ message: String(err && err.message), code: typeof (err && err.code) === 'string' ? err.code : undefined });
// The highest seq finished since the last flush began (0: none), and whether a flush runs.
let unflushed = 0;
let isFlushing = false;
let closing = false;
const finish = (reply, seq) => {
  // The answer first, then the signal: a main thread woken by it finds the answer on the port.
  port.postMessage(reply);
  Atomics.store(done, 0, seq);
  Atomics.notify(done, 0);
};
const close = () => {
  if (db) db.close();
  if (wal !== undefined) closeSync(wal);
  port.close();
};
const flush = () => {
  if (isFlushing) return;
  if (unflushed === 0) {
    if (closing) close();
    return;
  }
  const upTo = unflushed;
  unflushed = 0;
  if (db === undefined) {
    // No connection (it failed to open): the batches were answered with their error, nothing to flush.
    finish({ durable: upTo }, upTo);
    flush();
    return;
  }
  try {
    // After a commit the -wal file exists, and it stays (same inode) while this connection is open: an
    // fdatasync of any descriptor of it flushes what every commit wrote.
    if (wal === undefined) wal = openSync(workerData.path + '-wal', 'r+');
  } catch (err) {
    finish({ durable: upTo, error: errorOf(err) }, upTo);
    flush();
    return;
  }
  isFlushing = true;
  fdatasync(wal, (err) => {
    isFlushing = false;
    finish(err ? { durable: upTo, error: errorOf(err) } : { durable: upTo }, upTo);
    flush();
  });
};
port.on('message', (request) => {
  if (request.close) {
    closing = true;
    flush();
    return;
  }
  const reply = { committed: request.seq };
  try {
    write = write || writer();
    write(request.rows);
  } catch (err) {
    reply.error = errorOf(err);
  }
  port.postMessage(reply);
  unflushed = request.seq;
  flush();
});
`;
