// SQLite map store (Prosody's map store kind, mod_storage_sql's map): per-account JSON values by key, one row each,
// so reading or changing one entry costs the same however many entries the account has (rosters item by item).

import type Database from 'better-sqlite3';
import type { MapStore } from '../../api.js';

/** The table (created if missing). Its key leads with (host, user), so deleting an account's entries is a range. */
export const MAP_SCHEMA = `
CREATE TABLE IF NOT EXISTS keymap (
  host TEXT NOT NULL, user TEXT NOT NULL, store TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (host, user, store, key)
) WITHOUT ROWID;
`;

/** An account's entries in every map of its host: part of the transaction that deletes the account. */
export function mapPurge(db: Database.Database): (host: string, user: string) => void {
  const stmt = db.prepare('DELETE FROM keymap WHERE host = ? AND user = ?');
  return (host, user) => void stmt.run(host, user);
}

export class SqliteMapStore<T> implements MapStore<T> {
  private readonly getStmt;
  private readonly allStmt;
  private readonly setStmt;
  private readonly deleteStmt;
  private readonly clearStmt;
  private readonly setKeysTx;

  constructor(db: Database.Database, private readonly host: string, private readonly store: string) {
    const where = 'host = ? AND user = ? AND store = ?';
    this.getStmt = db.prepare<[string, string, string, string], string>(`SELECT value FROM keymap WHERE ${where} AND key = ?`).pluck();
    this.allStmt = db.prepare<[string, string, string], { key: string; value: string }>(`SELECT key, value FROM keymap WHERE ${where} ORDER BY key`);
    this.setStmt = db.prepare(
      'INSERT INTO keymap (host, user, store, key, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (host, user, store, key) DO UPDATE SET value = excluded.value',
    );
    this.deleteStmt = db.prepare(`DELETE FROM keymap WHERE ${where} AND key = ?`);
    this.clearStmt = db.prepare(`DELETE FROM keymap WHERE ${where}`);
    this.setKeysTx = db.transaction((user: string, entries: ReadonlyMap<string, T | undefined>) => {
      for (const [key, value] of entries) this.write(user, key, value);
    });
  }

  async get(user: string, key: string): Promise<T | undefined> {
    const value = this.getStmt.get(this.host, user, this.store, key);
    return value === undefined ? undefined : (JSON.parse(value) as T);
  }

  async getAll(user: string): Promise<Map<string, T>> {
    return new Map(this.allStmt.all(this.host, user, this.store).map((row) => [row.key, JSON.parse(row.value) as T]));
  }

  async set(user: string, key: string, value: T | undefined): Promise<void> {
    this.write(user, key, value);
  }

  async setKeys(user: string, entries: ReadonlyMap<string, T | undefined>): Promise<void> {
    this.setKeysTx(user, entries);
  }

  async clear(user: string): Promise<void> {
    this.clearStmt.run(this.host, user, this.store);
  }

  private write(user: string, key: string, value: T | undefined): void {
    if (value === undefined) this.deleteStmt.run(this.host, user, this.store, key);
    else this.setStmt.run(this.host, user, this.store, key, JSON.stringify(value));
  }
}
