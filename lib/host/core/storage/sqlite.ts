// SQLite storage (better-sqlite3, WAL): users, per-account key-value documents and lists (offline messages).
// synchronous=FULL: a write has reached the disk when the call returns, so a 201 survives a kill or a crash.

import Database from 'better-sqlite3';
import { mkdirSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../../util/errors.js';
import type { KeyValueStore, ListItem, ListStore } from '../../api.js';
import type { Storage, UserRecord, UserStore } from './types.js';

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
CREATE TABLE IF NOT EXISTS list (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL, stamp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS list_by_user ON list (host, store, user, id);
`;

export const DATABASE_FILE = 'xmppd.sqlite';

/** Open (and create) the database under dataDir; a clear HostError when the folder cannot be written. */
export function openSqliteStorage(dataDir: string): Storage {
  const db = openDatabase(dataDir);
  db.exec(SCHEMA);
  // One store per (host, name), handed out again when a module is reloaded: its appends share one batch, and
  // reloads do not pile up stores that close() would have to visit.
  const lists = new Map<string, SqliteListStore>();
  return {
    users: new SqliteUserStore(db),
    keyValue: <T>(host: string, store: string) => new SqliteKeyValueStore<T>(db, host, store),
    list: (host: string, store: string) => {
      const key = `${host}\0${store}`;
      let list = lists.get(key);
      if (!list) lists.set(key, (list = new SqliteListStore(db, host, store)));
      return list;
    },
    close: () => {
      // Appends waiting for their batch are written (and acknowledged) before the file closes.
      for (const list of lists.values()) list.flush();
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
// How often the cache asks SQLite whether another connection wrote. Asking costs as much as a SELECT
// (it opens a read transaction), so it is done at most once per millisecond, not on every read.
const RECHECK_MS = 1;

/**
 * Accounts in the `users` table, read through a cache: this store's own writes update it at once, and
 * `PRAGMA data_version` (which changes whenever another connection — the CLI, another process — commits
 * to the file) empties it. A change made elsewhere counts for every read that starts more than
 * RECHECK_MS after the change was committed: the next request of an admin who ran `xmppd passwd`.
 */
class SqliteUserStore implements UserStore {
  private readonly cache = new Map<string, UserRecord | null>();
  private seenVersion: unknown;
  private checkedAt = 0;
  private outsideChanges = 0;
  private readonly versionStmt;
  private readonly getStmt;
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly deleteStmt;
  private readonly listAllStmt;
  private readonly listHostStmt;
  private readonly iterationsStmt;

  constructor(db: Database.Database) {
    this.versionStmt = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.seenVersion = this.versionStmt.get();
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

  /** At most once per RECHECK_MS: if another connection committed, forget every cached account. */
  private noticeOtherWriters(): void {
    const now = performance.now();
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    const version = this.versionStmt.get();
    if (version !== this.seenVersion) {
      this.cache.clear();
      this.seenVersion = version;
      this.outsideChanges++;
    }
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
    return this.insertStmt.run({ ...record, createdAt: Date.now() }).changes === 1;
  }

  async update(record: UserRecord): Promise<boolean> {
    this.cache.delete(record.jid);
    return this.updateStmt.run(record).changes === 1;
  }

  async delete(jid: string): Promise<boolean> {
    this.cache.delete(jid);
    return this.deleteStmt.run(jid).changes === 1;
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

interface PendingAppend {
  user: string;
  value: string;
  stamp: number;
  resolve(id: number): void;
  reject(err: unknown): void;
}

/**
 * Per-account lists (offline messages). Appends are group-committed: those made during one turn of the
 * event loop are written in one transaction at its end, so many messages share one fsync
 * (synchronous=FULL), and each append resolves only once its transaction is on disk.
 */
class SqliteListStore implements ListStore {
  private pending: PendingAppend[] = [];
  private isScheduled = false;
  private readonly insertBatch;
  private readonly appendStmt;
  private readonly listStmt;
  private readonly deleteStmt;
  private readonly countStmt;
  private readonly deleteMany;

  constructor(db: Database.Database, private readonly host: string, private readonly store: string) {
    this.appendStmt = db.prepare('INSERT INTO list (host, store, user, value, stamp) VALUES (?, ?, ?, ?, ?)');
    this.listStmt = db.prepare<[string, string, string], { id: number; value: string; stamp: number }>(
      'SELECT id, value, stamp FROM list WHERE host = ? AND store = ? AND user = ? ORDER BY id',
    );
    this.deleteStmt = db.prepare('DELETE FROM list WHERE id = ? AND host = ? AND store = ? AND user = ?');
    this.countStmt = db.prepare<[string, string, string], { n: number }>('SELECT count(*) AS n FROM list WHERE host = ? AND store = ? AND user = ?');
    this.deleteMany = db.transaction((user: string, ids: number[]) => {
      for (const id of ids) this.deleteStmt.run(id, this.host, this.store, user);
    });
    this.insertBatch = db.transaction((batch: PendingAppend[]) =>
      batch.map((p) => Number(this.appendStmt.run(this.host, this.store, p.user, p.value, p.stamp).lastInsertRowid)),
    );
  }

  append(user: string, value: string, stamp: Date = new Date()): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ user, value, stamp: stamp.getTime(), resolve, reject });
      if (!this.isScheduled) {
        this.isScheduled = true;
        // setImmediate: after every socket that was ready in this turn has been read and handled.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Write the waiting appends now, in one transaction. */
  flush(): void {
    this.isScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let ids: number[];
    try {
      ids = this.insertBatch(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(ids[i]!));
  }

  async list(user: string): Promise<ListItem[]> {
    // What was appended before this call is listed, even if its batch has not been written yet.
    this.flush();
    return this.listStmt.all(this.host, this.store, user).map((r) => ({ id: r.id, value: r.value, stamp: new Date(r.stamp) }));
  }

  async delete(user: string, ids: number[]): Promise<void> {
    this.deleteMany(user, ids);
  }

  async count(user: string): Promise<number> {
    this.flush();
    return this.countStmt.get(this.host, this.store, user)?.n ?? 0;
  }
}
