// keyedLock (util/keyed-lock.ts): per-key serialisation, concurrency across keys, rejections, cleanup.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyedLock } from '../../../lib/host/util/keyed-lock.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('keyedLock', () => {
  it('runs work under one key one at a time, in call order', async () => {
    const withLock = keyedLock();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name} start`);
      await tick();
      log.push(`${name} end`);
      return name;
    };
    const results = await Promise.all([withLock('a', job('1')), withLock('a', job('2'))]);
    assert.deepEqual(results, ['1', '2']);
    assert.deepEqual(log, ['1 start', '1 end', '2 start', '2 end']);
  });

  it('runs different keys concurrently', async () => {
    const withLock = keyedLock();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = withLock('a', () => held);
    let otherRan = false;
    await withLock('b', async () => {
      otherRan = true;
    });
    assert.equal(otherRan, true);
    release();
    await first;
  });

  it('does not let a rejected fn block the next', async () => {
    const withLock = keyedLock();
    const failed = withLock('a', async () => {
      throw new Error('boom');
    });
    const next = withLock('a', async () => 'ok');
    await assert.rejects(failed, /boom/);
    assert.equal(await next, 'ok');
  });

  it('empties its map once the work is done', async () => {
    const locks = new Map<string, Promise<unknown>>();
    const withLock = keyedLock(locks);
    const a = withLock('a', async () => 1);
    const b = withLock('b', async () => {
      throw new Error('x');
    });
    assert.equal(locks.size, 2);
    await a;
    await b.catch(() => undefined);
    await tick();
    assert.equal(locks.size, 0);
  });
});
