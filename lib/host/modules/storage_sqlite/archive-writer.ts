// The archive store's writer thread (Prosody's mod_storage_sql archive, written from one Lua thread; DIFF: here a
// worker_threads Worker with a connection of its own): each group commit's INSERTs run there, so the event loop
// goes on serving while a batch reaches the disk. Started by sqlite.ts (ArchiveWriter); the thread's code is
// archive-writer-thread.cjs (plain JavaScript, type-checked against this file's types: under tsx a worker does not
// load TypeScript), and this file is what both sides agree on.
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
  /** ROW_FIELDS, so the thread needs nothing but this data. */
  fields: number;
  /** Where batches come in and answers go out (the main thread also reads answers synchronously from it). */
  port: import('node:worker_threads').MessagePort;
  /** done[0]: every batch up to this seq is finished (durable or rolled back); the main thread can wait on it. */
  done: Int32Array;
}
