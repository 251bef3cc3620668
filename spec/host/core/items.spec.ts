// Provided items (core/items.ts): Prosody's add_item/handle_items, per host with a global view.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GLOBAL_HOST, ItemRegistry } from '../../../lib/host/core/items.js';
import type { ItemInfo } from '../../../lib/host/api.js';

function recorder() {
  const events: string[] = [];
  return {
    events,
    added: (item: unknown, info: ItemInfo) => void events.push(`+${String(item)}@${info.host}/${info.module}`),
    removed: (item: unknown, info: ItemInfo) => void events.push(`-${String(item)}@${info.host}/${info.module}`),
  };
}

describe('ItemRegistry', () => {
  describe('#handle()', () => {
    it('sees the items provided before it, then every later one, in order', () => {
      const items = new ItemRegistry();
      items.add('widget', 'a', { host: 'h', module: 'm1' });
      const r = recorder();
      items.handle('widget', 'h', r.added, r.removed);
      items.add('widget', 'b', { host: 'h', module: 'm2' });
      assert.deepEqual(r.events, ['+a@h/m1', '+b@h/m2']);
    });

    it("sees its own host's items and global ones, not another host's", () => {
      const items = new ItemRegistry();
      const r = recorder();
      items.handle('widget', 'h', r.added);
      items.add('widget', 'other', { host: 'k', module: 'm' });
      items.add('widget', 'global', { host: GLOBAL_HOST, module: 'g' });
      items.add('widget', 'own', { host: 'h', module: 'm' });
      assert.deepEqual(r.events, ['+global@*/g', '+own@h/m']);
    });

    it('on the global host sees the items of every host', () => {
      const items = new ItemRegistry();
      items.add('widget', 'x', { host: 'h', module: 'm' });
      const r = recorder();
      items.handle('widget', GLOBAL_HOST, r.added);
      items.add('widget', 'y', { host: 'k', module: 'm' });
      assert.deepEqual(r.events, ['+x@h/m', '+y@k/m']);
    });

    it('stops seeing items once its stop function ran; the items stay', () => {
      const items = new ItemRegistry();
      const r = recorder();
      const stop = items.handle('widget', 'h', r.added, r.removed);
      stop();
      const remove = items.add('widget', 'a', { host: 'h', module: 'm' });
      remove();
      assert.deepEqual(r.events, []);
      assert.deepEqual(items.size(), { items: 0, consumers: 0 });
    });

    it('keeps kinds apart', () => {
      const items = new ItemRegistry();
      const r = recorder();
      items.handle('widget', 'h', r.added);
      items.add('gadget', 'g', { host: 'h', module: 'm' });
      assert.deepEqual(r.events, []);
    });
  });

  describe('#add()', () => {
    it('returns the removal: consumers hear of it once, even if it runs twice', () => {
      const items = new ItemRegistry();
      const r = recorder();
      items.handle('widget', 'h', r.added, r.removed);
      const remove = items.add('widget', 'a', { host: 'h', module: 'm' });
      remove();
      remove();
      assert.deepEqual(r.events, ['+a@h/m', '-a@h/m']);
      assert.deepEqual(items.list('widget', 'h'), []);
    });

    it('a consumer that throws refuses the item: earlier consumers hear it removed, the provider gets the error', () => {
      const items = new ItemRegistry();
      const r = recorder();
      items.handle('widget', 'h', r.added, r.removed);
      items.handle('widget', 'h', () => {
        throw new Error('path taken');
      });
      assert.throws(() => items.add('widget', 'a', { host: 'h', module: 'm' }), /path taken/);
      assert.deepEqual(r.events, ['+a@h/m', '-a@h/m']);
      assert.deepEqual(items.list('widget', 'h'), []);
    });

    it('gives consumers a frozen copy of the info', () => {
      const items = new ItemRegistry();
      const info = { host: 'h', module: 'm' };
      items.add('widget', 'a', info);
      const [entry] = items.list('widget', 'h');
      assert.ok(Object.isFrozen(entry!.info));
      assert.notEqual(entry!.info, info);
    });
  });
});
