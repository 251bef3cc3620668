// The archive store's writer thread (Prosody's mod_storage_sql archive, written from one Lua thread; DIFF: here a
// worker_threads Worker with a connection of its own): each group commit's INSERTs and its fsync (synchronous=FULL)
// run there, so the event loop goes on serving while a batch reaches the disk. Started by sqlite.ts (ArchiveWriter).

/** One archive item to insert. */
export interface WriterRow {
  host: string;
  user: string;
  store: string;
  key: string;
  stamp: number;
  with: string;
  value: string;
}

/** A batch for one transaction, or the order to close the connection and end. */
export type WriterRequest = { seq: number; rows: WriterRow[] } | { close: true };

/** The answer to batch `seq`: committed, or the error that rolled it back. */
export interface WriterReply {
  seq: number;
  error?: { message: string; code?: string };
}

export interface WriterData {
  path: string;
  /** Where better-sqlite3 is (the thread's code is evaluated, so it resolves nothing relative to this file). */
  driver: string;
  /** Where batches come in and answers go out (the main thread also reads answers synchronously from it). */
  port: import('node:worker_threads').MessagePort;
  /** done[0]: the last batch finished (committed or rolled back); the main thread can wait on it synchronously. */
  done: Int32Array;
}

/**
 * The thread's code, evaluated (`new Worker(WRITER_SOURCE, { eval: true })`): a file would have to be compiled
 * first, and under tsx a worker does not load TypeScript. CommonJS, plain JavaScript; its messages are the types above.
 */
export const WRITER_SOURCE = String.raw`
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { done, port } = workerData;
let db;
let write;
// Opened at the first batch, inside its try: a connection or statement that fails fails that batch, not the thread.
const writer = () => {
  db = new Database(workerData.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // OR REPLACE: an id given again replaces its item, which takes a new place at the end (Prosody's SQL archive).
  const insert = db.prepare('INSERT OR REPLACE INTO archive (host, user, store, key, stamp, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
  return db.transaction((rows) => {
    for (const r of rows) insert.run(r.host, r.user, r.store, r.key, r.stamp, r.with, r.value);
  });
};
port.on('message', (request) => {
  if (request.close) {
    if (db) db.close();
    port.close();
    return;
  }
  const reply = { seq: request.seq };
  try {
    write = write || writer();
    write(request.rows);
  } catch (err) {
    reply.error = { message: String(err && err.message), code: typeof (err && err.code) === 'string' ? err.code : undefined };
  }
  // The answer first, then the signal: a main thread woken by it finds the answer on the port.
  port.postMessage(reply);
  Atomics.store(done, 0, request.seq);
  Atomics.notify(done, 0);
});
`;
