// @ts-check
// The archive writer thread (archive-writer.ts says what it does and what the two sides exchange): CommonJS, plain
// JavaScript, because under tsx a worker does not load TypeScript; tsc checks it (allowJs, @ts-check) against the
// types of archive-writer.ts, and copies it next to the compiled sqlite.js.

const { workerData: data } = require('node:worker_threads');
const { openSync, closeSync, fdatasync } = require('node:fs');

/** @typedef {import('./archive-writer.js').WriterData} WriterData */
/** @typedef {import('./archive-writer.js').WriterRequest} WriterRequest */
/** @typedef {import('./archive-writer.js').WriterReply} WriterReply */
/** @typedef {import('better-sqlite3').Database} Database */

/** @type {WriterData} */
const workerData = data;
const Database = require('better-sqlite3');
const { done, port, fields: FIELDS } = workerData;
/** @type {Database | undefined} */
let db;
/** @type {number | undefined} */
let wal;
/** @type {((rows: Array<string | number>) => void) | undefined} */
let write;

/** Opened at the first batch, inside its try: a connection or statement that fails fails that batch, not the thread. */
function writer() {
  const opened = new Database(workerData.path);
  db = opened;
  opened.pragma('journal_mode = WAL');
  // NORMAL: the commit writes the WAL without flushing it; the flush below follows every commit before an answer.
  opened.pragma('synchronous = NORMAL');
  opened.pragma('busy_timeout = 5000');
  // OR REPLACE: an id given again replaces its item, which takes a new place at the end (Prosody's SQL archive).
  const insert = opened.prepare('INSERT OR REPLACE INTO archive (host, store, user, key, stamp, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
  return opened.transaction((/** @type {Array<string | number>} */ rows) => {
    for (let i = 0; i < rows.length; i += FIELDS) insert.run(rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4], rows[i + 5], rows[i + 6]);
  });
}

/** @param {unknown} err */
function errorOf(err) {
  const e = /** @type {{ message?: unknown; code?: unknown }} */ (err ?? {});
  return { message: String(e.message), code: typeof e.code === 'string' ? e.code : undefined };
}

// The highest seq finished since the last flush began (0: none), and whether a flush runs.
let unflushed = 0;
let isFlushing = false;
let isClosing = false;

/**
 * The answer first, then the signal: a main thread woken by it finds the answer on the port.
 * @param {WriterReply} reply
 * @param {number} seq
 */
function finish(reply, seq) {
  port.postMessage(reply);
  Atomics.store(done, 0, seq);
  Atomics.notify(done, 0);
}

function close() {
  if (db) db.close();
  if (wal !== undefined) closeSync(wal);
  port.close();
}

function flush() {
  if (isFlushing) return;
  if (unflushed === 0) {
    if (isClosing) close();
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
    if (wal === undefined) wal = openSync(`${workerData.path}-wal`, 'r+');
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
}

port.on('message', (/** @type {WriterRequest} */ request) => {
  if ('close' in request) {
    isClosing = true;
    flush();
    return;
  }
  /** @type {WriterReply} */
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
