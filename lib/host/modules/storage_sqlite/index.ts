// The SQLite storage backend (Prosody's mod_storage_sql with SQLite): a global module providing the `storage` item
// named `sqlite`, which the host opens when the config says `storage: sqlite` (the default).

import type { ModuleApi, ModuleDefinition } from '../../api.js';
import { openSqliteStorage } from './sqlite.js';

function load(module: ModuleApi): void {
  module.provides('storage', { name: 'sqlite', open: ({ dataDir }) => openSqliteStorage(dataDir) });
}

export const storageSqlite: ModuleDefinition = {
  manifest: {
    id: 'storage_sqlite',
    global: true,
    description: 'SQLite storage (better-sqlite3, WAL, flushed to disk before a write counts as done) under data_dir: accounts, key-value, map and archive stores; `storage: sqlite`.',
  },
  load,
};
