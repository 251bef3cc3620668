// Storage interfaces: SQLite implements them today; a PostgreSQL store for several nodes can implement
// them tomorrow without touching modules (Prosody's storagemanager has the same split).

import type { KeyValueStore, ListStore } from '../api.js';

/** One account's SCRAM credentials (Prosody's internal_hashed): never the password itself. */
export interface UserRecord {
  /** Normalised bare JID. */
  jid: string;
  iterations: number;
  salt: Buffer;
  sha1StoredKey: Buffer;
  sha1ServerKey: Buffer;
  sha256StoredKey: Buffer;
  sha256ServerKey: Buffer;
}

export interface UserStore {
  get(jid: string): Promise<UserRecord | undefined>;
  /** Insert; resolves false when the account exists already. */
  create(record: UserRecord): Promise<boolean>;
  /** Replace the credentials; resolves false when the account does not exist. */
  update(record: UserRecord): Promise<boolean>;
  /** Resolves false when the account did not exist. */
  delete(jid: string): Promise<boolean>;
  /** Bare JIDs, sorted; only those of `host` when given. */
  list(host?: string): Promise<string[]>;
  /**
   * A count that moves when accounts may have changed: this store's own writes and, for a store shared with
   * other processes, theirs (SQLite: `PRAGMA data_version`; a PostgreSQL store could use LISTEN/NOTIFY). The
   * host polls it to re-check open client sessions against their accounts.
   */
  changeCount(): number;
}

export interface Storage {
  users: UserStore;
  keyValue<T>(host: string, store: string): KeyValueStore<T>;
  list(host: string, store: string): ListStore;
  close(): void;
}
