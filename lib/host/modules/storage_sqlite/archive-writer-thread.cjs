// @ts-check
// The archive writer thread (archive-writer.ts says what it does and what the two sides exchange): CommonJS, plain
// JavaScript, because under tsx a worker does not load TypeScript; tsc checks it (allowJs, @ts-check) against the
// types of archive-writer.ts, and copies it next to the compiled sqlite.js.

const { workerData: data, receiveMessageOnPort } = require('node:worker_threads');
const { openSync, closeSync, fdatasyncSync } = require('node:fs');

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
/** @type {((batches: Array<Array<string | number>>) => void) | undefined} */
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
  return opened.transaction((/** @type {Array<Array<string | number>>} */ batches) => {
    for (const rows of batches) {
      for (let i = 0; i < rows.length; i += FIELDS) insert.run(rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4], rows[i + 5], rows[i + 6]);
    }
  });
}

/** @param {unknown} err */
function errorOf(err) {
  const e = /** @type {{ message?: unknown; code?: unknown }} */ (err ?? {});
  return { message: String(e.message), code: typeof e.code === 'string' ? e.code : undefined };
}

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

/**
 * Flush what the commits wrote. After a commit the -wal file exists, and it stays (same inode) while this connection
 * is open: an fdatasync of any descriptor of it flushes every commit before it. Here, not on libuv's pool: a hop to
 * a pool thread and back costs more than the flush itself on a busy machine, and batches that come meanwhile wait on
 * the port and join the next transaction.
 * @returns {WriterReply['error']}
 */
function flushWal() {
  try {
    if (wal === undefined) wal = openSync(`${workerData.path}-wal`, 'r+');
    fdatasyncSync(wal);
    return undefined;
  } catch (err) {
    return errorOf(err);
  }
}

function close() {
  if (db) db.close();
  if (wal !== undefined) closeSync(wal);
  port.close();
}

/**
 * One transaction for every batch waiting on the port (group commit: what came while the last one committed and was
 * flushed), then the flush, answered for the highest seq taken.
 * @param {WriterRequest} first
 */
function commit(first) {
  /** @type {WriterRequest[]} */
  const requests = [first];
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) requests.push(m.message);
  let upTo = 0;
  let isClosing = false;
  /** @type {Array<Array<string | number>>} */
  const batches = [];
  for (const request of requests) {
    if ('close' in request) isClosing = true;
    else {
      batches.push(request.rows);
      upTo = request.seq;
    }
  }
  if (upTo > 0) {
    let error;
    try {
      write = write || writer();
      write(batches);
    } catch (err) {
      // Rolled back, or no connection: the main thread fails these batches.
      error = errorOf(err);
    }
    finish(error ? { committed: upTo, error } : { durable: upTo, error: flushWal() }, upTo);
  }
  if (isClosing) close();
}

port.on('message', commit);
