// The archive store's writer thread (Prosody's mod_storage_sql archive, written from one Lua thread; DIFF: here a
// worker_threads Worker with a connection of its own): each group commit's INSERTs run there, so the event loop
// goes on serving while a batch reaches the disk. Started by sqlite.ts (ArchiveWriter); the thread's code is
// archive-writer-thread.cjs (plain JavaScript, type-checked against this file's types: under tsx a worker does not
// load TypeScript), and this file is what both sides agree on.
//
// Batches come as they are made (one per turn of the event loop that appended); the thread makes one transaction of
// every batch waiting on its port (group commit), so the event loop never waits for a commit to send the next one.
// The connection commits with synchronous=NORMAL (the WAL frames written, not yet flushed), then an fdatasync of the
// -wal file makes the transaction durable, and only then is it answered "durable": an append settles at "durable",
// so what a 201 promises is unchanged (on disk, as with synchronous=FULL). Batches that come during a commit and its
// flush join the next transaction.

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
 * Answers cover every batch up to and including the seq they name not answered before. `committed` (only with an
 * error): their transaction was rolled back. `durable`: they are on disk, or, with `error`, could not be flushed.
 */
export type WriterReply =
  | { committed: number; error?: { message: string; code?: string } }
  | { durable: number; error?: { message: string; code?: string } };

export interface WriterData {
  path: string;
  /** ROW_FIELDS, so the thread needs nothing but this data. */
  fields: number;
  /** Where batches come in and answers go out (the main thread also reads answers synchronously from it). */
  port: import('node:worker_threads').MessagePort;
  /** done[0]: every batch up to this seq is finished (durable or rolled back); the main thread can wait on it. */
  done: Int32Array;
}
