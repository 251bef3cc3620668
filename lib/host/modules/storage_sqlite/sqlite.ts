// SQLite storage (better-sqlite3, WAL): users, per-account key-value documents and archives (Prosody's
// mod_storage_sql keyval and archive stores; offline messages).
// synchronous=FULL: a write has reached the disk when the call returns, so a 201 survives a kill or a crash. Archive
// appends go through the writer thread (archive-writer.ts), which flushes the WAL itself before they settle.

import Database from 'better-sqlite3';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { HostError, StanzaError } from '../../util/errors.js';
import type { ArchiveFilter, ArchivePage, ArchiveQuery, ArchiveStore, KeyValueStore, Storage, UserRecord, UserStore } from '../../api.js';
import { MAP_SCHEMA, mapPurge, SqliteMapStore } from './sqlite-map.js';
import { ROW_FIELDS, type WriterData, type WriterReply, type WriterRequest } from './archive-writer.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  jid TEXT PRIMARY KEY,
  iterations INTEGER NOT NULL,
  salt BLOB NOT NULL,
  sha1_stored_key BLOB NOT NULL,
  sha1_server_key BLOB NOT NULL,
  sha256_stored_key BLOB NOT NULL,
  sha256_server_key BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keyval (
  host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (host, store, user)
);
-- sort: the storage order (never reused); key: the item's id, unique per account and store. The id index leads with
-- the key: new ids are time-ordered, so appends of every account land at its end (led by the account, a batch
-- wrote a page per account and cost twice as much). The order index leads with (host, user), so deleting an
-- account's data in every store is a range, not a scan.
CREATE TABLE IF NOT EXISTS archive (
  sort INTEGER PRIMARY KEY AUTOINCREMENT,
  host TEXT NOT NULL, user TEXT NOT NULL, store TEXT NOT NULL, key TEXT NOT NULL,
  stamp INTEGER NOT NULL, with_jid TEXT NOT NULL, value TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS archive_by_key ON archive (key, user, store, host);
CREATE INDEX IF NOT EXISTS archive_by_user ON archive (host, user, store, sort);
-- Changes to accounts by any connection, counted by triggers: PRAGMA data_version would also move with every commit
-- of the archive writer thread (many a second under load), which must neither empty the user cache nor make the host
-- recheck every client stream.
CREATE TABLE IF NOT EXISTS users_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO users_version (id, version) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS users_inserted AFTER INSERT ON users BEGIN UPDATE users_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS users_updated AFTER UPDATE ON users BEGIN UPDATE users_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS users_deleted AFTER DELETE ON users BEGIN UPDATE users_version SET version = version + 1 WHERE id = 1; END;
`;

/**
 * Earlier versions kept offline messages in a \`list\` table: its rows move into the archive of the same store
 * name, in their order, with new ids and no \`with\`, and the table goes. One transaction, so a second process
 * opening the file at the same time finds either the old table or none.
 */
function migrateLists(db: Database.Database): void {
  db.transaction(() => {
    const hasList = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'list'").get() !== undefined;
    if (!hasList) return;
    db.exec(`INSERT INTO archive (host, user, store, key, stamp, with_jid, value)
             SELECT host, user, store, lower(hex(randomblob(16))), stamp, '', value FROM list ORDER BY id;
             DROP TABLE list;`);
  }).immediate();
}

export const DATABASE_FILE = 'xmppd.sqlite';

/** Open (and create) the database under dataDir; a clear HostError when the folder cannot be written. */
export function openSqliteStorage(dataDir: string): Storage {
  const db = openDatabase(dataDir);
  db.exec(SCHEMA);
  db.exec(MAP_SCHEMA);
  migrateLists(db);
  // One store per (host, name), handed out again when a module is reloaded: its appends share one batch, and
  // reloads do not pile up stores that close() would have to visit.
  const archives = new Map<string, SqliteArchiveStore>();
  const writer = new ArchiveWriter(db.name);
  // Waiting appends go to the writer and are on disk when this returns.
  const flushArchives = (): void => {
    for (const archive of archives.values()) archive.flush();
    writer.drain();
  };
  return {
    users: new SqliteUserStore(db, flushArchives),
    keyValue: <T>(host: string, store: string) => new SqliteKeyValueStore<T>(db, host, store),
    map: <T>(host: string, store: string) => new SqliteMapStore<T>(db, host, store),
    archive: (host: string, store: string) => {
      const key = `${host}\0${store}`;
      let archive = archives.get(key);
      if (!archive) archives.set(key, (archive = new SqliteArchiveStore(db, host, store, writer, flushArchives)));
      return archive;
    },
    close: () => {
      // Appends waiting for their batch are written (and acknowledged) before the file closes.
      flushArchives();
      writer.close();
      db.close();
    },
  };
}

function openDatabase(dataDir: string): Database.Database {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
    const db = new Database(join(dataDir, DATABASE_FILE));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (err) {
    throw new HostError(
      'HOST_ERR_DATA_DIR',
      `data_dir ${dataDir} cannot be written (${(err as Error).message}); create it or point data_dir at a writable folder.`,
      { cause: err },
    );
  }
}

interface UserRow {
  jid: string;
  iterations: number;
  salt: Buffer;
  sha1_stored_key: Buffer;
  sha1_server_key: Buffer;
  sha256_stored_key: Buffer;
  sha256_server_key: Buffer;
}

// Records kept in memory: every request reads its sender (and the recipient, twice), and a SELECT under
// load costs far more than a Map lookup. Bounded, since unknown names are kept too, and small:
// HTTP senders and recipients are a handful of hot accounts, while every client login also reads its record
// once and never again (a full recheck of the streams follows an outside change, which empties the cache).
// A large bound would hold a record for every idle session; evicting the oldest of 1,000
// costs a hot account one SELECT per 1,000 other accounts read.
const USER_CACHE_ENTRIES = 1_000;
// How often the cache asks SQLite whether another connection changed accounts. Asking is a SELECT (it opens a read
// transaction), so it is done at most once per millisecond, not on every read.
const RECHECK_MS = 1;

/**
 * Accounts in the `users` table, read through a cache: this store's own writes update it at once, and a change
 * to `users` committed by another connection (the CLI, another process) empties it. The `users_version` count
 * (triggers) tells that accounts changed. It is read directly, not behind `PRAGMA data_version` (which tells that
 * another connection committed anything): the archive writer thread commits about once a millisecond under load,
 * so that check would pass nearly every time and cost a second statement. A change made elsewhere counts for
 * every read that starts more than RECHECK_MS after it was committed: the next request of an admin who ran
 * `xmppd passwd`.
 */
class SqliteUserStore implements UserStore {
  private readonly cache = new Map<string, UserRecord | null>();
  private seenUsersVersion: number;
  private checkedAt = 0;
  private outsideChanges = 0;
  private readonly usersVersionStmt;
  private readonly ownWrite;
  private readonly getStmt;
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly deleteStmt;
  private readonly listAllStmt;
  private readonly listHostStmt;
  private readonly iterationsStmt;
  private readonly createTx;
  private readonly deleteTx;

  /** `flushArchives` writes archive appends still waiting, so an account's deletion also takes those. */
  constructor(db: Database.Database, private readonly flushArchives: () => void) {
    this.usersVersionStmt = db.prepare<[], number>('SELECT version FROM users_version WHERE id = 1').pluck();
    this.seenUsersVersion = this.usersVersionStmt.get()!;
    // This store's writes move users_version too: read it before and after, in one transaction, so only what
    // another connection changed before counts as outside.
    const ownWriteTx = db.transaction(<T>(write: () => T): { result: T; before: number; after: number } => {
      const before = this.usersVersionStmt.get()!;
      const result = write();
      return { result, before, after: this.usersVersionStmt.get()! };
    });
    this.ownWrite = <T>(write: () => T): T => {
      const { result, before, after } = ownWriteTx.immediate(write) as { result: T; before: number; after: number };
      if (before !== this.seenUsersVersion) this.changedElsewhere();
      this.seenUsersVersion = after;
      return result;
    };
    this.getStmt = db.prepare<[string], UserRow>('SELECT * FROM users WHERE jid = ?');
    this.insertStmt = db.prepare(
      `INSERT OR IGNORE INTO users (jid, iterations, salt, sha1_stored_key, sha1_server_key, sha256_stored_key, sha256_server_key, created_at)
       VALUES (@jid, @iterations, @salt, @sha1StoredKey, @sha1ServerKey, @sha256StoredKey, @sha256ServerKey, @createdAt)`,
    );
    this.updateStmt = db.prepare(
      `UPDATE users SET iterations = @iterations, salt = @salt, sha1_stored_key = @sha1StoredKey, sha1_server_key = @sha1ServerKey,
       sha256_stored_key = @sha256StoredKey, sha256_server_key = @sha256ServerKey WHERE jid = @jid`,
    );
    this.deleteStmt = db.prepare('DELETE FROM users WHERE jid = ?');
    this.listAllStmt = db.prepare<[], { jid: string }>('SELECT jid FROM users ORDER BY jid');
    this.listHostStmt = db.prepare<[string], { jid: string }>("SELECT jid FROM users WHERE jid LIKE '%@' || ? ORDER BY jid");
    this.iterationsStmt = db.prepare<[], { iterations: number; accounts: number }>('SELECT iterations, COUNT(*) AS accounts FROM users GROUP BY iterations ORDER BY iterations');
    // An account's data: every keyval document, map entry and archive item of its host stored under its bare JID.
    const purgeKeyval = db.prepare('DELETE FROM keyval WHERE host = ? AND user = ?');
    const purgeArchive = db.prepare('DELETE FROM archive WHERE host = ? AND user = ?');
    const purgeMap = mapPurge(db);
    const purge = (jid: string): void => {
      const host = jid.slice(jid.indexOf('@') + 1);
      purgeKeyval.run(host, jid);
      purgeArchive.run(host, jid);
      purgeMap(host, jid);
    };
    this.deleteTx = db.transaction((jid: string): boolean => {
      const existed = this.deleteStmt.run(jid).changes === 1;
      purge(jid);
      return existed;
    });
    // A new account also starts empty when data of an earlier one of that name outlived it (a version before
    // accounts took their data with them).
    this.createTx = db.transaction((row: UserRecord & { createdAt: number }): boolean => {
      const created = this.insertStmt.run(row).changes === 1;
      if (created) purge(row.jid);
      return created;
    });
  }

  async get(jid: string): Promise<UserRecord | undefined> {
    this.noticeOtherWriters();
    const cached = this.cache.get(jid);
    if (cached !== undefined) return cached ?? undefined;
    const record = this.read(jid);
    if (this.cache.size >= USER_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(jid, record ?? null);
    return record;
  }

  async iterationCounts(): Promise<Array<{ iterations: number; accounts: number }>> {
    return this.iterationsStmt.all();
  }

  outsideChangeCount(): number {
    this.noticeOtherWriters();
    return this.outsideChanges;
  }

  /** At most once per RECHECK_MS: if another connection changed accounts, forget every cached account. */
  private noticeOtherWriters(): void {
    const now = performance.now();
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    const usersVersion = this.usersVersionStmt.get()!;
    if (usersVersion === this.seenUsersVersion) return;
    this.seenUsersVersion = usersVersion;
    this.changedElsewhere();
  }

  private changedElsewhere(): void {
    this.cache.clear();
    this.outsideChanges++;
  }

  private read(jid: string): UserRecord | undefined {
    const row = this.getStmt.get(jid);
    if (!row) return undefined;
    return {
      jid: row.jid,
      iterations: row.iterations,
      salt: row.salt,
      sha1StoredKey: row.sha1_stored_key,
      sha1ServerKey: row.sha1_server_key,
      sha256StoredKey: row.sha256_stored_key,
      sha256ServerKey: row.sha256_server_key,
    };
  }

  // Writes forget the entry rather than store the record: the next read takes what the table holds.
  async create(record: UserRecord): Promise<boolean> {
    this.cache.delete(record.jid);
    return this.ownWrite(() => this.createTx({ ...record, createdAt: Date.now() }));
  }

  async update(record: UserRecord): Promise<boolean> {
    this.cache.delete(record.jid);
    return this.ownWrite(() => this.updateStmt.run(record).changes === 1);
  }

  async delete(jid: string): Promise<boolean> {
    this.cache.delete(jid);
    this.flushArchives();
    return this.ownWrite(() => this.deleteTx(jid));
  }

  async list(host?: string): Promise<string[]> {
    const rows = host === undefined ? this.listAllStmt.all() : this.listHostStmt.all(host);
    return rows.map((r) => r.jid);
  }
}

class SqliteKeyValueStore<T> implements KeyValueStore<T> {
  private readonly getStmt;
  private readonly setStmt;
  private readonly deleteStmt;

  constructor(db: Database.Database, private readonly host: string, private readonly store: string) {
    this.getStmt = db.prepare<[string, string, string], { value: string }>('SELECT value FROM keyval WHERE host = ? AND store = ? AND user = ?');
    this.setStmt = db.prepare('INSERT INTO keyval (host, store, user, value) VALUES (?, ?, ?, ?) ON CONFLICT (host, store, user) DO UPDATE SET value = excluded.value');
    this.deleteStmt = db.prepare('DELETE FROM keyval WHERE host = ? AND store = ? AND user = ?');
  }

  async get(user: string): Promise<T | undefined> {
    const row = this.getStmt.get(this.host, this.store, user);
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  async set(user: string, value: T | undefined): Promise<void> {
    if (value === undefined) this.deleteStmt.run(this.host, this.store, user);
    else this.setStmt.run(this.host, this.store, user, JSON.stringify(value));
  }
}

/** Random bytes for ids, refilled from the CSPRNG when used up (Node's randomUUID keeps a cache the same way). */
const idEntropy = Buffer.alloc(4096);
let idEntropyAt = idEntropy.length;
/** The id prefix of the current millisecond: formatting the time once per millisecond, not per id. */
let idMs = -1;
let idPrefix = '';

/**
 * A UUIDv7 (RFC 9562 §5.7): random, with the time in milliseconds first, so a new id goes to the end of the id index
 * instead of a random page of it (a batch then writes a few pages, not one per append). 74 random bits from a
 * pool the CSPRNG fills (randomUUID per id cost three times as much, the uuid package's v7 a hundred times).
 */
export function timeOrderedId(): string {
  if (idEntropyAt + 10 > idEntropy.length) {
    randomFillSync(idEntropy);
    idEntropyAt = 0;
  }
  const now = Date.now();
  if (now !== idMs) {
    idMs = now;
    const time = now.toString(16).padStart(12, '0');
    idPrefix = `${time.slice(0, 8)}-${time.slice(8)}-7`;
  }
  // 18 hex digits (rand_a's 12 bits, then 62 of rand_b's after the variant's two bits, 10xx).
  const random = idEntropy.toString('hex', idEntropyAt, idEntropyAt + 9);
  const variant = '89ab'[idEntropy[idEntropyAt + 9]! & 3];
  idEntropyAt += 10;
  return `${idPrefix}${random.slice(0, 3)}-${variant}${random.slice(3, 6)}-${random.slice(6)}`;
}

/** How long a read waits for the writer's batches before it gives up (a writer that hangs for this long is broken). */
const DRAIN_TIMEOUT_MS = 30_000;

/**
 * The archive writer thread (archive-writer.ts) seen from the event loop: each batch goes to it at once, in order
 * (the thread makes one transaction of every batch waiting on its port, so transactions grow with the time a commit
 * takes, without a round trip through this thread between them); a batch's appends settle when the thread reports
 * it durable, or fail when it reports it rolled back. drain() blocks until every batch sent is finished, for what
 * must see them (reads, an account's deletion, close). Started at the first batch and unreferenced while idle, so
 * it never keeps a process alive.
 */
class ArchiveWriter {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;
  /** Batches sent and not yet finished, oldest first. */
  private sent: Batch[] = [];
  private failure: Error | undefined;

  constructor(private readonly path: string) {}

  write(batch: PendingAppend[], host: string, store: string): void {
    if (this.failure) {
      for (const p of batch) p.reject(this.failure);
      return;
    }
    const rows: Array<string | number> = [];
    for (const p of batch) rows.push(host, store, p.user, p.key, p.stamp, p.with, p.value); // the order of ROW_FIELDS (WriterRow)
    const port = this.start();
    const seq = ++this.seq;
    this.sent.push({ seq, appends: batch });
    port.postMessage({ seq, rows } satisfies WriterRequest);
    // An answer pending keeps the process alive; an idle writer does not.
    if (this.sent.length === 1) port.ref();
  }

  /** Block until the writer finished every batch given so far (durable or rolled back), and settle their appends. */
  drain(): void {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (!this.failure && this.sent.length > 0) {
      const seq = this.sent[this.sent.length - 1]!.seq;
      for (let at = Atomics.load(this.done, 0); at < seq && !this.failure; at = Atomics.load(this.done, 0)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`the archive writer did not finish its batches in ${DRAIN_TIMEOUT_MS / 1000} s`);
        Atomics.wait(this.done, 0, at, left);
      }
      // The answers are on the port before the signal: take them here.
      let answers = 0;
      for (let m = this.port && receiveMessageOnPort(this.port); m; m = this.port && receiveMessageOnPort(this.port)) {
        this.onReply(m.message as WriterReply);
        answers++;
      }
      // Signalled but nothing to read would loop forever at full speed: a writer out of step with this code.
      if (answers === 0 && !this.failure) throw new Error(`the archive writer signalled batch ${seq} without answering it`);
    }
  }

  close(): void {
    this.port?.postMessage({ close: true } satisfies WriterRequest);
    this.port?.close();
    this.worker = undefined;
    this.port = undefined;
  }

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    const workerData: WriterData = { path: this.path, fields: ROW_FIELDS, port: port2, done: this.done };
    const worker = new Worker(new URL('./archive-writer-thread.cjs', import.meta.url), { workerData, transferList: [port2] });
    worker.unref();
    port1.on('message', (reply: WriterReply) => this.onReply(reply));
    port1.unref();
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.fail(new Error(`the archive writer stopped (exit code ${code})`));
    });
    this.worker = worker;
    this.port = port1;
    return port1;
  }

  /**
   * `committed` comes only with an error: every batch up to it was rolled back, and its appends fail. `durable`:
   * every batch up to it is on disk (its appends resolve), or with an error could not be flushed (they fail).
   */
  private onReply(reply: WriterReply): void {
    const upTo = 'committed' in reply ? reply.committed : reply.durable;
    const err = reply.error && errorFrom(reply.error);
    let finished = 0;
    while (finished < this.sent.length && this.sent[finished]!.seq <= upTo) finished++;
    for (const batch of this.sent.splice(0, finished)) {
      for (const p of batch.appends) {
        if (err) p.reject(err);
        else p.resolve(p.key);
      }
    }
    if (this.sent.length === 0) this.port?.unref();
  }

  /** The writer is gone: what it had not answered fails, and so does every later append. */
  private fail(err: Error): void {
    this.failure = err;
    this.port?.close();
    this.worker = undefined;
    this.port = undefined;
    const unanswered = this.sent.flatMap((b) => b.appends);
    this.sent = [];
    for (const p of unanswered) p.reject(err);
  }
}

type WriterError = { message: string; code?: string };

function errorFrom(error: WriterError): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

interface Batch {
  seq: number;
  appends: PendingAppend[];
}

interface PendingAppend {
  user: string;
  key: string;
  stamp: number;
  with: string;
  value: string;
  resolve(id: string): void;
  reject(err: unknown): void;
}

interface ArchiveRow {
  key: string;
  stamp: number;
  with_jid: string;
  value: string;
}

/**
 * Per-account archives (Prosody's archive store; offline messages). Appends are group-committed: those made
 * during one turn of the event loop go to the writer thread at its end as one transaction, so many messages share
 * one flush of the WAL and the event loop never waits for it; each append resolves only once its transaction is
 * on disk. Every read, count and delete first waits for what was appended before it.
 */
class SqliteArchiveStore implements ArchiveStore {
  private pending: PendingAppend[] = [];
  private isScheduled = false;
  private readonly sortOfStmt;
  /** Statements by SQL text: a query's shape (which conditions it has) picks one, prepared once. */
  private readonly statements = new Map<string, Database.Statement<unknown[]>>();

  /** `flushAll` sends every store's waiting appends to the writer and waits until they are on disk. */
  constructor(
    private readonly db: Database.Database,
    private readonly host: string,
    private readonly store: string,
    private readonly writer: ArchiveWriter,
    private readonly flushAll: () => void,
  ) {
    this.sortOfStmt = db.prepare<[string, string, string, string], number>(
      'SELECT sort FROM archive WHERE key = ? AND user = ? AND store = ? AND host = ?',
    ).pluck();
  }

  append(user: string, item: { id?: string; stamp?: Date; with: string; value: string }): Promise<string> {
    const key = item.id ?? timeOrderedId();
    return new Promise((resolve, reject) => {
      this.pending.push({ user, key, stamp: (item.stamp ?? new Date()).getTime(), with: item.with, value: item.value, resolve, reject });
      if (!this.isScheduled) {
        this.isScheduled = true;
        // setImmediate: after every socket that was ready in this turn has been read and handled.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Send the waiting appends to the writer now, as one transaction. */
  flush(): void {
    this.isScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.writer.write(batch, this.host, this.store);
  }

  async find(user: string, query: ArchiveQuery = {}): Promise<ArchivePage> {
    const { limit, reverse = false } = query;
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new RangeError(`archive limit must be a whole number >= 0, not ${limit}`);
    this.flushAll();
    const where = this.where(user, query);
    // One row more than asked tells whether the page is the last one.
    const sql = `SELECT key, stamp, with_jid, value FROM archive WHERE ${where.sql} ORDER BY sort ${reverse ? 'DESC' : 'ASC'}${limit === undefined ? '' : ' LIMIT ?'}`;
    const params = limit === undefined ? where.params : [...where.params, limit + 1];
    const rows = this.statement(sql).all(...params) as ArchiveRow[];
    const complete = limit === undefined || rows.length <= limit;
    if (!complete) rows.pop();
    return { items: rows.map((r) => ({ id: r.key, stamp: new Date(r.stamp), with: r.with_jid, value: r.value })), complete };
  }

  async count(user: string, filter: ArchiveFilter = {}): Promise<number> {
    this.flushAll();
    const where = this.where(user, filter);
    return this.statement(`SELECT count(*) FROM archive WHERE ${where.sql}`).pluck().get(...where.params) as number;
  }

  async delete(user: string, filter: ArchiveFilter = {}): Promise<number> {
    this.flushAll();
    const where = this.where(user, filter);
    return this.statement(`DELETE FROM archive WHERE ${where.sql}`).run(...where.params).changes;
  }

  /** The WHERE clause of a filter; before/after become the storage position of their item. */
  private where(user: string, filter: ArchiveFilter): { sql: string; params: unknown[] } {
    const parts = ['host = ? AND user = ? AND store = ?'];
    const params: unknown[] = [this.host, user, this.store];
    const add = (sql: string, param: unknown): void => {
      parts.push(sql);
      params.push(param);
    };
    if (filter.start !== undefined) add('stamp >= ?', filter.start.getTime());
    if (filter.end !== undefined) add('stamp <= ?', filter.end.getTime());
    if (filter.with !== undefined) add('with_jid = ?', filter.with);
    if (filter.after !== undefined) add('sort > ?', this.sortOf(user, filter.after));
    if (filter.before !== undefined) add('sort < ?', this.sortOf(user, filter.before));
    if (filter.ids !== undefined) add('key IN (SELECT value FROM json_each(?))', JSON.stringify(filter.ids));
    return { sql: parts.join(' AND '), params };
  }

  private sortOf(user: string, id: string): number {
    const sort = this.sortOfStmt.get(id, user, this.store, this.host);
    // XEP-0313 §6.2 / XEP-0059: a cursor that names no item is item-not-found.
    if (sort === undefined) throw new StanzaError('item-not-found', `No archived item has the id ${JSON.stringify(id)}.`);
    return sort;
  }

  private statement(sql: string): Database.Statement<unknown[]> {
    let stmt = this.statements.get(sql);
    if (!stmt) this.statements.set(sql, (stmt = this.db.prepare(sql)));
    return stmt;
  }
}
