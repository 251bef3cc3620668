// itemsByHost: the item each virtual host provides, as c2s and s2s look up a domain's c2s_host API.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { itemsByHost, type ItemHost } from '../../../lib/host/util/items-by-host.js';

/** A handleItems stand-in: the test adds and removes items by hand. */
function registry<T>(): { map: ReadonlyMap<string, T>; add(item: T, host: string): void; remove(item: T, host: string): void } {
  let added: (item: T, info: ItemHost) => void = () => undefined;
  let removed: (item: T, info: ItemHost) => void = () => undefined;
  const map = itemsByHost<T>((onAdded, onRemoved) => {
    added = onAdded;
    removed = onRemoved;
  });
  return { map, add: (item, host) => added(item, { host }), remove: (item, host) => removed(item, { host }) };
}

describe('itemsByHost', () => {
  it('keeps the item each host provided, the latest one winning', () => {
    const r = registry<string>();
    r.add('a1', 'a.example');
    r.add('b1', 'b.example');
    r.add('a2', 'a.example');
    assert.deepEqual([...r.map], [['a.example', 'a2'], ['b.example', 'b1']]);
  });

  it('forgets a removed item only while its host still holds it', () => {
    const r = registry<string>();
    r.add('a1', 'a.example');
    r.add('a2', 'a.example'); // a module reloaded: the new item comes before the old one goes
    r.remove('a1', 'a.example');
    assert.equal(r.map.get('a.example'), 'a2');
    r.remove('a2', 'a.example');
    assert.equal(r.map.has('a.example'), false);
  });

  it('leaves other hosts alone', () => {
    const r = registry<string>();
    r.add('a1', 'a.example');
    r.add('b1', 'b.example');
    r.remove('a1', 'a.example');
    assert.deepEqual([...r.map], [['b.example', 'b1']]);
  });
});
