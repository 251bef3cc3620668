// The storage contract: what every Storage implementation (SQLite today, PostgreSQL later) must do for the user,
// key-value, map and archive stores (Prosody's storagemanager drivers), and that deleting an account takes its data.
// An implementation's spec calls storageContract() with a harness; see spec/host/modules/storage_sqlite/sqlite.spec.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, type ArchiveStore, type Storage, type UserRecord } from '../../../../lib/host/api.js';

export interface StorageHarness {
  /** A new storage holding nothing. */
  open(): Promise<Storage>;
  /** Close `storage` and open the same data again (a restart). */
  reopen(storage: Storage): Promise<Storage>;
}

/** Every suite below, under one describe named after the implementation. */
export function storageContract(name: string, harness: StorageHarness): void {
  describe(`${name} storage contract`, () => {
    userStoreContract(harness);
    keyValueContract(harness);
    mapContract(harness);
    archiveContract(harness);
    accountDataContract(harness);
  });
}

export function record(jid: string, byte = 1): UserRecord {
  return {
    jid,
    iterations: 4096,
    salt: Buffer.alloc(16, byte),
    sha1StoredKey: Buffer.alloc(20, byte),
    sha1ServerKey: Buffer.alloc(20, byte),
    sha256StoredKey: Buffer.alloc(32, byte),
    sha256ServerKey: Buffer.alloc(32, byte),
  };
}

/** Run `fn` on a fresh storage and close it afterwards, whatever happens. */
async function withStorage(harness: StorageHarness, fn: (storage: Storage) => Promise<Storage | void>): Promise<void> {
  let storage = await harness.open();
  try {
    storage = (await fn(storage)) ?? storage;
  } finally {
    storage.close();
  }
}

export function userStoreContract(harness: StorageHarness): void {
  describe('user store', () => {
    it('creates, reads, updates and deletes an account, each answering whether it applied', () =>
      withStorage(harness, async ({ users }) => {
        assert.equal(await users.get('ann@localhost'), undefined);
        assert.equal(await users.create(record('ann@localhost', 1)), true);
        assert.equal(await users.create(record('ann@localhost', 9)), false, 'an existing account is not replaced');
        assert.deepEqual(await users.get('ann@localhost'), record('ann@localhost', 1));
        assert.equal(await users.update(record('ann@localhost', 2)), true);
        assert.deepEqual(await users.get('ann@localhost'), record('ann@localhost', 2));
        assert.equal(await users.update(record('nobody@localhost', 2)), false);
        assert.equal(await users.delete('ann@localhost'), true);
        assert.equal(await users.get('ann@localhost'), undefined);
        assert.equal(await users.delete('ann@localhost'), false);
      }));

    it('lists accounts sorted, all or one host', () =>
      withStorage(harness, async ({ users }) => {
        for (const jid of ['zed@localhost', 'amy@example.org', 'bob@localhost']) await users.create(record(jid));
        assert.deepEqual(await users.list(), ['amy@example.org', 'bob@localhost', 'zed@localhost']);
        assert.deepEqual(await users.list('localhost'), ['bob@localhost', 'zed@localhost']);
        assert.deepEqual(await users.list('example.com'), []);
      }));

    it('keeps accounts across a restart', () =>
      withStorage(harness, async (storage) => {
        await storage.users.create(record('kim@localhost', 3));
        const again = await harness.reopen(storage);
        assert.deepEqual(await again.users.get('kim@localhost'), record('kim@localhost', 3));
        return again;
      }));
  });
}

export function keyValueContract(harness: StorageHarness): void {
  describe('key-value store', () => {
    it('stores a JSON document per account; undefined deletes it', () =>
      withStorage(harness, async (storage) => {
        const roster = storage.keyValue<{ version: number; items: Record<string, unknown> }>('localhost', 'roster');
        assert.equal(await roster.get('ann@localhost'), undefined);
        await roster.set('ann@localhost', { version: 1, items: { 'bob@localhost': { groups: ['a'] } } });
        assert.deepEqual(await roster.get('ann@localhost'), { version: 1, items: { 'bob@localhost': { groups: ['a'] } } });
        await roster.set('ann@localhost', { version: 2, items: {} });
        assert.deepEqual(await roster.get('ann@localhost'), { version: 2, items: {} });
        await roster.set('ann@localhost', undefined);
        assert.equal(await roster.get('ann@localhost'), undefined);
      }));

    it('keeps hosts, stores and accounts apart', () =>
      withStorage(harness, async (storage) => {
        await storage.keyValue('localhost', 'a').set('ann@localhost', 'a');
        await storage.keyValue('localhost', 'b').set('ann@localhost', 'b');
        await storage.keyValue('example.org', 'a').set('ann@localhost', 'other host');
        await storage.keyValue('localhost', 'a').set('bob@localhost', 'bob');
        assert.equal(await storage.keyValue('localhost', 'a').get('ann@localhost'), 'a');
        assert.equal(await storage.keyValue('localhost', 'b').get('ann@localhost'), 'b');
        assert.equal(await storage.keyValue('example.org', 'a').get('ann@localhost'), 'other host');
        assert.equal(await storage.keyValue('localhost', 'a').get('bob@localhost'), 'bob');
      }));

    it('keeps documents across a restart', () =>
      withStorage(harness, async (storage) => {
        await storage.keyValue('localhost', 'settings').set('ann@localhost', { lang: 'fr' });
        const again = await harness.reopen(storage);
        assert.deepEqual(await again.keyValue('localhost', 'settings').get('ann@localhost'), { lang: 'fr' });
        return again;
      }));
  });
}

export function mapContract(harness: StorageHarness): void {
  describe('map store', () => {
    it('reads and writes one entry of an account; undefined deletes it', () =>
      withStorage(harness, async (storage) => {
        const roster = storage.map<{ groups: string[] }>('localhost', 'roster');
        assert.equal(await roster.get('ann@localhost', 'bob@localhost'), undefined);
        await roster.set('ann@localhost', 'bob@localhost', { groups: ['a'] });
        await roster.set('ann@localhost', 'cy@localhost', { groups: [] });
        assert.deepEqual(await roster.get('ann@localhost', 'bob@localhost'), { groups: ['a'] });
        await roster.set('ann@localhost', 'bob@localhost', { groups: ['b'] });
        assert.deepEqual(await roster.get('ann@localhost', 'bob@localhost'), { groups: ['b'] });
        await roster.set('ann@localhost', 'bob@localhost', undefined);
        assert.equal(await roster.get('ann@localhost', 'bob@localhost'), undefined);
        assert.deepEqual(await roster.getAll('ann@localhost'), new Map([['cy@localhost', { groups: [] }]]));
      }));

    it('writes several entries at once, lists all of an account in key order, and clears them', () =>
      withStorage(harness, async (storage) => {
        const map = storage.map<number>('localhost', 'm');
        await map.set('ann@localhost', 'gone', 0);
        await map.setKeys('ann@localhost', new Map<string, number | undefined>([['b', 2], ['', 0], ['a', 1], ['gone', undefined]]));
        assert.deepEqual([...(await map.getAll('ann@localhost'))], [['', 0], ['a', 1], ['b', 2]]);
        // Keys that are Object.prototype names are ordinary keys.
        await map.set('ann@localhost', 'constructor', 3);
        assert.equal(await map.get('ann@localhost', 'constructor'), 3);
        assert.equal(await map.get('ann@localhost', 'toString'), undefined);
        await map.clear('ann@localhost');
        assert.equal((await map.getAll('ann@localhost')).size, 0);
      }));

    it('keeps hosts, maps and accounts apart, and entries across a restart', () =>
      withStorage(harness, async (storage) => {
        await storage.map('localhost', 'a').set('ann@localhost', 'k', 'a');
        await storage.map('localhost', 'b').set('ann@localhost', 'k', 'b');
        await storage.map('example.org', 'a').set('ann@localhost', 'k', 'other host');
        await storage.map('localhost', 'a').set('bob@localhost', 'k', 'bob');
        await storage.map('localhost', 'a').clear('bob@localhost');
        const again = await harness.reopen(storage);
        assert.equal(await again.map('localhost', 'a').get('ann@localhost', 'k'), 'a');
        assert.equal(await again.map('localhost', 'b').get('ann@localhost', 'k'), 'b');
        assert.equal(await again.map('example.org', 'a').get('ann@localhost', 'k'), 'other host');
        assert.equal(await again.map('localhost', 'a').get('bob@localhost', 'k'), undefined);
        return again;
      }));
  });
}

const t = (seconds: number): Date => new Date(Date.UTC(2024, 0, 1, 0, 0, seconds));

/** Five items from two correspondents, one second apart; their ids in order. */
async function fiveItems(archive: ArchiveStore, user = 'ann@localhost'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push(await archive.append(user, { stamp: t(i), with: i % 2 === 0 ? 'bob@localhost' : 'cy@localhost', value: `m${i}` }));
  }
  return ids;
}

const values = (page: { items: Array<{ value: string }> }): string[] => page.items.map((i) => i.value);
const isItemNotFound = (err: unknown): boolean => err instanceof StanzaError && err.condition === 'item-not-found';

export function archiveContract(harness: StorageHarness): void {
  describe('archive store', () => {
    it('appends with new distinct string ids and finds items in storage order with their stamp and with', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const ids = await fiveItems(archive);
        assert.equal(new Set(ids).size, 5);
        for (const id of ids) assert.match(id, /^[\x21-\x7e]{1,64}$/, 'an id fits in an XML attribute and an RSM cursor');
        const page = await archive.find('ann@localhost');
        assert.equal(page.complete, true);
        assert.deepEqual(page.items, ids.map((id, i) => ({ id, stamp: t(i), with: i % 2 === 0 ? 'bob@localhost' : 'cy@localhost', value: `m${i}` })));
      }));

    it('stamps an item with the time of the append when none is given', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const before = Date.now();
        await archive.append('ann@localhost', { with: '', value: 'x' });
        const [item] = (await archive.find('ann@localhost')).items;
        assert.ok(item!.stamp.getTime() >= before - 1000 && item!.stamp.getTime() <= Date.now() + 1000);
        assert.equal(item!.with, '');
      }));

    it('keeps a given id; appending it again replaces the item, which moves to the end', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'mam');
        assert.equal(await archive.append('ann@localhost', { id: 'stanza-id-1', with: 'bob@localhost', value: 'first' }), 'stanza-id-1');
        await archive.append('ann@localhost', { id: 'stanza-id-2', with: 'bob@localhost', value: 'second' });
        await archive.append('ann@localhost', { id: 'stanza-id-1', with: 'bob@localhost', value: 'again' });
        assert.deepEqual((await archive.find('ann@localhost')).items.map((i) => [i.id, i.value]), [['stanza-id-2', 'second'], ['stanza-id-1', 'again']]);
        // The same id in another account's archive is another item.
        await archive.append('bob@localhost', { id: 'stanza-id-1', with: 'ann@localhost', value: 'bob' });
        assert.equal(await archive.count('ann@localhost'), 2);
      }));

    it('filters by time range (inclusive) and by with', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        await fiveItems(archive);
        assert.deepEqual(values(await archive.find('ann@localhost', { start: t(1), end: t(3) })), ['m1', 'm2', 'm3']);
        assert.deepEqual(values(await archive.find('ann@localhost', { start: t(3) })), ['m3', 'm4']);
        assert.deepEqual(values(await archive.find('ann@localhost', { end: t(0) })), ['m0']);
        assert.deepEqual(values(await archive.find('ann@localhost', { with: 'cy@localhost' })), ['m1', 'm3']);
        assert.deepEqual(values(await archive.find('ann@localhost', { with: 'bob@localhost', start: t(1) })), ['m2', 'm4']);
        assert.deepEqual(values(await archive.find('ann@localhost', { with: 'dan@localhost' })), []);
      }));

    it('pages with limit, after and before (exclusive), and says when a page is the last', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const ids = await fiveItems(archive);
        const first = await archive.find('ann@localhost', { limit: 2 });
        assert.deepEqual(values(first), ['m0', 'm1']);
        assert.equal(first.complete, false);
        const second = await archive.find('ann@localhost', { limit: 2, after: first.items.at(-1)!.id });
        assert.deepEqual(values(second), ['m2', 'm3']);
        assert.equal(second.complete, false);
        const last = await archive.find('ann@localhost', { limit: 2, after: second.items.at(-1)!.id });
        assert.deepEqual(values(last), ['m4']);
        assert.equal(last.complete, true);
        const exact = await archive.find('ann@localhost', { limit: 5 });
        assert.equal(exact.complete, true, 'a page that ends exactly at the last item is complete');
        assert.deepEqual(values(await archive.find('ann@localhost', { before: ids[3] })), ['m0', 'm1', 'm2']);
        assert.deepEqual(values(await archive.find('ann@localhost', { after: ids[0], before: ids[3] })), ['m1', 'm2']);
        assert.deepEqual(values(await archive.find('ann@localhost', { after: ids[1], with: 'cy@localhost' })), ['m3']);
        const none = await archive.find('ann@localhost', { limit: 0 });
        assert.deepEqual(none.items, []);
        assert.equal(none.complete, false);
      }));

    it('finds newest first with reverse: the last page, then the one before it (RSM <before/>)', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        await fiveItems(archive);
        const newest = await archive.find('ann@localhost', { reverse: true, limit: 2 });
        assert.deepEqual(values(newest), ['m4', 'm3']);
        assert.equal(newest.complete, false);
        const older = await archive.find('ann@localhost', { reverse: true, limit: 2, before: newest.items.at(-1)!.id });
        assert.deepEqual(values(older), ['m2', 'm1']);
        const oldest = await archive.find('ann@localhost', { reverse: true, limit: 2, before: older.items.at(-1)!.id });
        assert.deepEqual(values(oldest), ['m0']);
        assert.equal(oldest.complete, true);
        assert.deepEqual(values(await archive.find('ann@localhost', { reverse: true })), ['m4', 'm3', 'm2', 'm1', 'm0']);
      }));

    it('rejects a before or after id that names no item with item-not-found', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const [id] = await fiveItems(archive);
        await assert.rejects(archive.find('ann@localhost', { after: 'no-such-id' }), isItemNotFound);
        await assert.rejects(archive.find('ann@localhost', { before: 'no-such-id' }), isItemNotFound);
        // An id of another account's archive names nothing in this one.
        await assert.rejects(archive.find('bob@localhost', { after: id }), isItemNotFound);
      }));

    it('rejects a limit that is not a whole number >= 0', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        await assert.rejects(archive.find('ann@localhost', { limit: -1 }), RangeError);
        await assert.rejects(archive.find('ann@localhost', { limit: 1.5 }), RangeError);
      }));

    it('counts and deletes by filter, answering how many; without one, all of the account', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const ids = await fiveItems(archive);
        await fiveItems(archive, 'bob@localhost');
        assert.equal(await archive.count('ann@localhost'), 5);
        assert.equal(await archive.count('ann@localhost', { with: 'bob@localhost' }), 3);
        assert.equal(await archive.count('ann@localhost', { ids: [ids[0]!, ids[4]!, 'unknown'] }), 2);
        assert.deepEqual(values(await archive.find('ann@localhost', { ids: [ids[4]!, ids[1]!] })), ['m1', 'm4']);
        assert.equal(await archive.delete('ann@localhost', { ids: [ids[0]!, ids[1]!] }), 2);
        assert.equal(await archive.delete('ann@localhost', { ids: [ids[0]!] }), 0);
        assert.equal(await archive.delete('ann@localhost', { end: t(2) }), 1);
        assert.deepEqual(values(await archive.find('ann@localhost')), ['m3', 'm4']);
        assert.equal(await archive.delete('ann@localhost'), 2);
        assert.equal(await archive.count('ann@localhost'), 0);
        assert.equal(await archive.count('bob@localhost'), 5, "another account's items stay");
      }));

    it('keeps hosts, archives and accounts apart; an archive opened again is the same store', () =>
      withStorage(harness, async (storage) => {
        const offline = storage.archive('localhost', 'offline');
        assert.equal(storage.archive('localhost', 'offline'), offline);
        await offline.append('ann@localhost', { with: '', value: 'offline' });
        await storage.archive('localhost', 'mam').append('ann@localhost', { with: '', value: 'mam' });
        await storage.archive('example.org', 'offline').append('ann@localhost', { with: '', value: 'other host' });
        assert.deepEqual(values(await offline.find('ann@localhost')), ['offline']);
        assert.deepEqual(values(await storage.archive('localhost', 'mam').find('ann@localhost')), ['mam']);
        assert.deepEqual(values(await storage.archive('example.org', 'offline').find('ann@localhost')), ['other host']);
      }));

    it('resolves appends of one turn in order, and shows them to reads made before they resolve', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const appends = Array.from({ length: 50 }, (_, i) => archive.append('ann@localhost', { with: '', value: `m${i}` }));
        // Not awaited yet: a reader must not miss them.
        assert.equal(await archive.count('ann@localhost'), 50);
        const ids = await Promise.all(appends);
        assert.deepEqual((await archive.find('ann@localhost')).items.map((i) => i.id), ids);
        assert.deepEqual(values(await archive.find('ann@localhost')), Array.from({ length: 50 }, (_, i) => `m${i}`));
      }));

    it('keeps items across a restart, including appends waiting when it closed', () =>
      withStorage(harness, async (storage) => {
        const archive = storage.archive('localhost', 'offline');
        const id = await archive.append('ann@localhost', { stamp: t(7), with: 'bob@localhost', value: 'durable' });
        const waiting = archive.append('ann@localhost', { with: '', value: 'last words' });
        const again = await harness.reopen(storage);
        assert.equal(typeof (await waiting), 'string');
        const { items } = await again.archive('localhost', 'offline').find('ann@localhost');
        assert.deepEqual(items[0], { id, stamp: t(7), with: 'bob@localhost', value: 'durable' });
        assert.deepEqual(values({ items }), ['durable', 'last words']);
        return again;
      }));
  });
}

export function accountDataContract(harness: StorageHarness): void {
  describe('deleting an account', () => {
    /** Data of ann@localhost in two key-value stores and two archives, plus data of others that must stay. */
    const fill = async (storage: Storage): Promise<void> => {
      await storage.keyValue('localhost', 'roster').set('ann@localhost', { version: 3 });
      await storage.keyValue('localhost', 'vcard').set('ann@localhost', { fn: 'Ann' });
      await storage.map('localhost', 'roster').set('ann@localhost', 'bob@localhost', { groups: [] });
      await storage.map('localhost', 'roster').set('bob@localhost', 'ann@localhost', { groups: [] });
      await storage.archive('localhost', 'offline').append('ann@localhost', { with: 'bob@localhost', value: 'hello' });
      await storage.archive('localhost', 'mam').append('ann@localhost', { with: 'bob@localhost', value: 'archived' });
      await storage.keyValue('localhost', 'roster').set('bob@localhost', { version: 1 });
      await storage.archive('localhost', 'offline').append('bob@localhost', { with: 'ann@localhost', value: 'for bob' });
      await storage.keyValue('example.org', 'roster').set('ann@example.org', { version: 9 });
    };
    const annIsEmpty = async (storage: Storage): Promise<void> => {
      assert.equal(await storage.keyValue('localhost', 'roster').get('ann@localhost'), undefined);
      assert.equal(await storage.keyValue('localhost', 'vcard').get('ann@localhost'), undefined);
      assert.equal((await storage.map('localhost', 'roster').getAll('ann@localhost')).size, 0);
      assert.equal(await storage.archive('localhost', 'offline').count('ann@localhost'), 0);
      assert.equal(await storage.archive('localhost', 'mam').count('ann@localhost'), 0);
    };
    const othersStay = async (storage: Storage): Promise<void> => {
      assert.deepEqual(await storage.keyValue('localhost', 'roster').get('bob@localhost'), { version: 1 });
      assert.equal(await storage.archive('localhost', 'offline').count('bob@localhost'), 1);
      assert.deepEqual(await storage.map('localhost', 'roster').get('bob@localhost', 'ann@localhost'), { groups: [] });
      assert.deepEqual(await storage.keyValue('example.org', 'roster').get('ann@example.org'), { version: 9 });
    };

    it('deletes its documents and items in every store of its host, and nothing of others', () =>
      withStorage(harness, async (storage) => {
        await storage.users.create(record('ann@localhost'));
        await storage.users.create(record('bob@localhost'));
        await fill(storage);
        assert.equal(await storage.users.delete('ann@localhost'), true);
        await annIsEmpty(storage);
        await othersStay(storage);
      }));

    it('also deletes an item whose append was still waiting', () =>
      withStorage(harness, async (storage) => {
        await storage.users.create(record('ann@localhost'));
        const waiting = storage.archive('localhost', 'offline').append('ann@localhost', { with: '', value: 'just in time' });
        await storage.users.delete('ann@localhost');
        await waiting;
        await annIsEmpty(storage);
      }));

    it('a new account of the same name starts empty, also after a restart', () =>
      withStorage(harness, async (storage) => {
        await storage.users.create(record('ann@localhost', 1));
        await fill(storage);
        await storage.users.delete('ann@localhost');
        const again = await harness.reopen(storage);
        assert.equal(await again.users.create(record('ann@localhost', 2)), true);
        await annIsEmpty(again);
        await othersStay(again);
        return again;
      }));

    it('a new account starts empty even when data under its name outlived an earlier account', () =>
      withStorage(harness, async (storage) => {
        // As left by a version that deleted only the account.
        await fill(storage);
        await storage.users.create(record('ann@localhost'));
        await annIsEmpty(storage);
        await othersStay(storage);
      }));
  });
}
