// SQLite storage (modules/storage_sqlite): the storage contract (spec/host/core/storage/contract.ts), then what is
// SQLite's own: an archive append is on disk (seen by another connection) when it resolves, a failed batch rejects
// each append in it, the offline lists of earlier versions move into archives, an account deleted by another
// process (xmppd deluser) takes its data, and the user store's outside-change count moves with another
// connection's commits, not its own writes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStorage, timeOrderedId, DATABASE_FILE } from '../../../../lib/host/modules/storage_sqlite/sqlite.js';
import type { Storage } from '../../../../lib/host/api.js';
import { record, storageContract } from '../../core/storage/contract.js';

const dirs: string[] = [];
const dirOf = new WeakMap<Storage, string>();
const openIn = (dir: string): Storage => {
  const storage = openSqliteStorage(dir);
  dirOf.set(storage, dir);
  return storage;
};
const newDir = (prefix = 'storage-'): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storageContract('SQLite', {
  open: async () => openIn(newDir()),
  reopen: async (storage) => {
    storage.close();
    return openIn(dirOf.get(storage)!);
  },
});

/** Another connection to the same file, as another process (the CLI) has. */
function otherConnection<T>(dir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dir, DATABASE_FILE));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('SQLite archive store', () => {
  let dir: string;
  before(() => {
    dir = newDir('archives-');
  });

  const rowsSeenElsewhere = (user: string): string[] =>
    otherConnection(dir, (db) => db.prepare<[string], { value: string }>('SELECT value FROM archive WHERE user = ? ORDER BY sort').all(user).map((r) => r.value));

  it('appends made in one turn are on disk, for another connection, when they resolve', async () => {
    const storage = openSqliteStorage(dir);
    try {
      const offline = storage.archive('localhost', 'offline');
      await Promise.all(Array.from({ length: 50 }, (_, i) => offline.append('ann@localhost', { with: '', value: `m${i}` })));
      assert.deepEqual(rowsSeenElsewhere('ann@localhost'), Array.from({ length: 50 }, (_, i) => `m${i}`));
    } finally {
      storage.close();
    }
  });

  it('makes new ids UUIDv7s: time first, so they sort in the order they were made (a cheap index insert)', async () => {
    const ids = Array.from({ length: 3 }, () => timeOrderedId());
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(ids[0]!.replace('-', '').slice(0, 12), 16) <= Date.now(), true);
    await new Promise((r) => setTimeout(r, 2));
    const later = timeOrderedId();
    assert.ok(ids.every((id) => id < later), 'an id made later sorts after');
  });

  it('makes distinct ids, many within one millisecond and across refills of its random pool', () => {
    const many = Array.from({ length: 5000 }, () => timeOrderedId());
    assert.equal(new Set(many).size, many.length);
    // The variant digit takes each of its four values (two random bits).
    assert.deepEqual([...new Set(many.map((id) => id[19]))].sort(), ['8', '9', 'a', 'b']);
  });

  it('appends of many turns, sent while the writer is still at earlier ones, settle and stay in order', async () => {
    const storage = openSqliteStorage(dir);
    try {
      const offline = storage.archive('localhost', 'offline');
      const appends: Array<Promise<string>> = [];
      for (let turn = 0; turn < 20; turn++) {
        for (let i = 0; i < 5; i++) appends.push(offline.append('eve@localhost', { with: '', value: `t${turn}m${i}` }));
        await new Promise((r) => setImmediate(r));
      }
      const ids = await Promise.all(appends);
      assert.equal(new Set(ids).size, 100);
      assert.deepEqual(rowsSeenElsewhere('eve@localhost'), Array.from({ length: 100 }, (_, n) => `t${Math.floor(n / 5)}m${n % 5}`));
    } finally {
      storage.close();
    }
  });

  it('close() writes appends that were still waiting', async () => {
    const storage = openSqliteStorage(dir);
    const offline = storage.archive('localhost', 'offline');
    const appended = offline.append('cy@localhost', { with: '', value: 'last words' });
    storage.close();
    assert.equal(typeof (await appended), 'string');
    assert.deepEqual(rowsSeenElsewhere('cy@localhost'), ['last words']);
  });

  it('a failed batch rejects every append in it', async () => {
    const own = newDir('archives-fail-');
    const storage = openSqliteStorage(own);
    try {
      const offline = storage.archive('localhost', 'offline');
      const first = offline.append('di@localhost', { with: '', value: 'a' });
      const second = offline.append('di@localhost', { with: '', value: 'b' });
      // Another connection drops the table before the batch is written, so writing it fails.
      otherConnection(own, (db) => db.exec('DROP TABLE archive'));
      await assert.rejects(first, /no such table/);
      await assert.rejects(second, /no such table/);
      // The writer goes on: once the table is back, the next batch is written.
      openSqliteStorage(own).close(); // another process opening the file creates the schema again
      assert.equal(typeof (await offline.append('di@localhost', { with: '', value: 'c' })), 'string');
      assert.deepEqual(otherConnection(own, (db) => db.prepare('SELECT value FROM archive').pluck().all()), ['c']);
    } finally {
      storage.close();
    }
  });
});

describe('SQLite storage of an earlier version', () => {
  it('moves the offline lists into archives, in order, with their stamps, once', async () => {
    const dir = newDir('migrate-');
    otherConnection(dir, (db) => {
      db.exec(`CREATE TABLE list (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL, stamp INTEGER NOT NULL);
               CREATE INDEX list_by_user ON list (host, store, user, id);`);
      const insert = db.prepare('INSERT INTO list (host, store, user, value, stamp) VALUES (?, ?, ?, ?, ?)');
      insert.run('localhost', 'offline', 'ann@localhost', '<message>2</message>', 2000);
      insert.run('localhost', 'offline', 'bob@localhost', '<message>b</message>', 1000);
      insert.run('localhost', 'offline', 'ann@localhost', '<message>1</message>', 1000);
    });
    let storage = openSqliteStorage(dir);
    try {
      const page = await storage.archive('localhost', 'offline').find('ann@localhost');
      assert.deepEqual(page.items.map((i) => [i.value, i.stamp.getTime(), i.with]), [['<message>2</message>', 2000, ''], ['<message>1</message>', 1000, '']]);
      assert.notEqual(page.items[0]!.id, page.items[1]!.id);
      assert.equal(await storage.archive('localhost', 'offline').count('bob@localhost'), 1);
      storage.close();
      storage = openSqliteStorage(dir);
      assert.equal(await storage.archive('localhost', 'offline').count('ann@localhost'), 2, 'opening again moves nothing twice');
      assert.deepEqual(otherConnection(dir, (db) => db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'list'").get()), { n: 0 }, 'the old table is gone');
    } finally {
      storage.close();
    }
  });
});

describe('SQLite account deletion by another process', () => {
  it('takes the data with the account (what xmppd deluser does while the server runs)', async () => {
    const dir = newDir('deluser-');
    const server = openSqliteStorage(dir);
    try {
      await server.users.create(record('ann@localhost'));
      await server.keyValue('localhost', 'roster').set('ann@localhost', { version: 1 });
      await server.archive('localhost', 'offline').append('ann@localhost', { with: '', value: 'hello' });
      const cli = openSqliteStorage(dir);
      try {
        assert.equal(await cli.users.delete('ann@localhost'), true);
      } finally {
        cli.close();
      }
      assert.equal(await server.keyValue('localhost', 'roster').get('ann@localhost'), undefined);
      assert.equal(await server.archive('localhost', 'offline').count('ann@localhost'), 0);
    } finally {
      server.close();
    }
  });
});

describe('SQLite user store outside-change count', () => {
  // The store asks SQLite at most once per millisecond whether another connection wrote.
  const afterRecheck = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

  it("moves with another connection's commit, not with this store's own writes or reads", async () => {
    const dir = newDir('users-');
    const storage = openSqliteStorage(dir);
    try {
      const users = storage.users;
      const start = users.outsideChangeCount();
      // The host announces its own writes ('user-changed'); counting them too would recheck every stream twice.
      await users.create(record('a@localhost', 1));
      await users.update(record('a@localhost', 2));
      await users.create(record('b@localhost', 3));
      await users.delete('b@localhost');
      await users.get('a@localhost');
      await users.list();
      await afterRecheck();
      assert.equal(users.outsideChangeCount(), start, "this store's writes and reads do not count");

      // The archive writer thread is another connection: its commits (many a second under load) change no account.
      await storage.archive('localhost', 'archive').append('a@localhost', { with: 'b@localhost', value: '<message/>' });
      otherConnection(dir, (db) => db.prepare("INSERT INTO keyval (host, store, user, value) VALUES ('localhost', 's', 'a@localhost', '1')").run());
      await afterRecheck();
      assert.equal(users.outsideChangeCount(), start, 'commits elsewhere that touch no account do not count');

      // What `xmppd deluser` does: another connection commits to the same file.
      otherConnection(dir, (db) => db.prepare('DELETE FROM users WHERE jid = ?').run('a@localhost'));
      await afterRecheck();
      assert.ok(users.outsideChangeCount() > start, "another connection's commit counts");
      assert.equal(await users.get('a@localhost'), undefined, 'and the cached record is gone');
    } finally {
      storage.close();
    }
  });
});
