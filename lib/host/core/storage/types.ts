// Storage interfaces: SQLite implements them today; a PostgreSQL store for several nodes can implement
// them tomorrow without touching modules (Prosody's storagemanager has the same split).

import type { ArchiveStore, KeyValueStore, MapStore } from '../../api.js';

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
  /**
   * Delete the account and, in the same transaction, everything stored for it on its host (every key-value
   * document, map entry and archive item whose user is this JID): a new account of that name starts empty, even when the
   * process stops half-way (Prosody's storagemanager.purge). Resolves false when the account did not exist.
   */
  delete(jid: string): Promise<boolean>;
  /** Bare JIDs, sorted; only those of `host` when given. */
  list(host?: string): Promise<string[]>;
  /** How many accounts have each PBKDF2 iteration count, by count: decoys for unknown names are drawn from it. */
  iterationCounts(): Promise<Array<{ iterations: number; accounts: number }>>;
  /**
   * A count that moves when another writer (the CLI, another node) may have changed accounts (SQLite:
   * `PRAGMA data_version`; a PostgreSQL store could use LISTEN/NOTIFY). This store's own writes do not move it:
   * the host announces those itself ('user-changed'). The host polls it to recheck open client streams.
   */
  outsideChangeCount(): number;
}

export interface Storage {
  users: UserStore;
  keyValue<T>(host: string, store: string): KeyValueStore<T>;
  /** One archive per (host, store): opened again (a module reloaded), it is the same object. */
  archive(host: string, store: string): ArchiveStore;
  /** One map store per (host, store) (Prosody's map store kind). */
  map<T>(host: string, store: string): MapStore<T>;
  close(): void;
}
