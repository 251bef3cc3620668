// SQLite list store (offline messages): appends are group-committed per event-loop turn, and an append
// resolves only once its row is written; nothing waiting is lost or hidden from readers. SQLite user store:
// its outside-change count moves with another connection's commits (what the host polls), not its own writes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStorage, DATABASE_FILE } from '../../../lib/host/core/storage/sqlite.js';

describe('SQLite list store', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lists-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Rows as another connection (another process) sees them. */
  const rowsSeenElsewhere = (user: string): string[] => {
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      return db.prepare<[string], { value: string }>('SELECT value FROM list WHERE user = ? ORDER BY id').all(user).map((r) => r.value);
    } finally {
      db.close();
    }
  };

  it('appends made in one turn resolve with increasing ids, and are on disk when they resolve', async () => {
    const storage = openSqliteStorage(dir);
    try {
      const offline = storage.list('localhost', 'offline');
      const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => offline.append('ann@localhost', `m${i}`)));
      assert.deepEqual([...ids].sort((a, b) => a - b), ids);
      assert.equal(new Set(ids).size, 50);
      assert.deepEqual(rowsSeenElsewhere('ann@localhost'), Array.from({ length: 50 }, (_, i) => `m${i}`));
    } finally {
      storage.close();
    }
  });

  it('list() and count() include appends still waiting for their batch', async () => {
    const storage = openSqliteStorage(dir);
    try {
      const offline = storage.list('localhost', 'offline');
      const appended = offline.append('bo@localhost', 'waiting');
      // Not awaited: the batch is written at the end of this turn, but readers must not miss it.
      assert.equal(await offline.count('bo@localhost'), 1);
      assert.deepEqual((await offline.list('bo@localhost')).map((i) => i.value), ['waiting']);
      assert.equal(typeof (await appended), 'number');
    } finally {
      storage.close();
    }
  });

  it('close() writes appends that were still waiting', async () => {
    const storage = openSqliteStorage(dir);
    const offline = storage.list('localhost', 'offline');
    const appended = offline.append('cy@localhost', 'last words');
    storage.close();
    assert.equal(typeof (await appended), 'number');
    assert.deepEqual(rowsSeenElsewhere('cy@localhost'), ['last words']);
  });

  it('a list opened again (a module reloaded) is the same store: one batch, and close() still writes it', async () => {
    const storage = openSqliteStorage(dir);
    const before = storage.list('localhost', 'offline');
    const again = storage.list('localhost', 'offline');
    assert.equal(again, before);
    assert.notEqual(storage.list('localhost', 'other'), before);
    assert.notEqual(storage.list('example.org', 'offline'), before);
    const appended = [before.append('ed@localhost', 'one'), again.append('ed@localhost', 'two')];
    storage.close();
    assert.equal(new Set(await Promise.all(appended)).size, 2);
    assert.deepEqual(rowsSeenElsewhere('ed@localhost'), ['one', 'two']);
  });

  it('a failed batch rejects every append in it', async () => {
    const own = mkdtempSync(join(tmpdir(), 'lists-fail-'));
    const storage = openSqliteStorage(own);
    try {
      const offline = storage.list('localhost', 'offline');
      const first = offline.append('di@localhost', 'a');
      const second = offline.append('di@localhost', 'b');
      // Another connection drops the table before the batch is written, so writing it fails.
      const raw = new Database(join(own, DATABASE_FILE));
      raw.exec('DROP TABLE list');
      raw.close();
      await assert.rejects(first, /no such table/);
      await assert.rejects(second, /no such table/);
    } finally {
      storage.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});

describe('SQLite user store outside-change count', () => {
  const record = (jid: string, byte: number) => ({
    jid,
    iterations: 4096,
    salt: Buffer.alloc(16, byte),
    sha1StoredKey: Buffer.alloc(20, byte),
    sha1ServerKey: Buffer.alloc(20, byte),
    sha256StoredKey: Buffer.alloc(32, byte),
    sha256ServerKey: Buffer.alloc(32, byte),
  });
  // The store asks SQLite at most once per millisecond whether another connection wrote.
  const afterRecheck = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

  it("moves with another connection's commit, not with this store's own writes or reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'users-'));
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

      // What `xmppd deluser` does: another connection commits to the same file.
      const other = new Database(join(dir, DATABASE_FILE));
      try {
        other.prepare('DELETE FROM users WHERE jid = ?').run('a@localhost');
      } finally {
        other.close();
      }
      await afterRecheck();
      assert.ok(users.outsideChangeCount() > start, "another connection's commit counts");
      assert.equal(await users.get('a@localhost'), undefined, 'and the cached record is gone');
    } finally {
      storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
