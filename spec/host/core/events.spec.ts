// Event chains (Prosody's util.events): priority order, first claim wins, removal, error owners.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus, errorOwner } from '../../../lib/host/core/events.js';

describe('EventBus', () => {
  describe('#fire()', () => {
    it('runs handlers highest priority first, equal priorities in the order added', async () => {
      const bus = new EventBus<string[]>();
      bus.add('e', (log) => void log.push('low'), -1);
      bus.add('e', (log) => void log.push('first0'));
      bus.add('e', (log) => void log.push('high'), 10);
      bus.add('e', (log) => void log.push('second0'));
      const log: string[] = [];
      assert.equal(await bus.fire('e', log), undefined);
      assert.deepEqual(log, ['high', 'first0', 'second0', 'low']);
    });

    it('stops at the first handler that returns a value, awaiting promises', async () => {
      const bus = new EventBus<null>();
      let ran = false;
      bus.add('e', async () => 'claimed', 5);
      bus.add('e', () => {
        ran = true;
      });
      assert.equal(await bus.fire('e', null), 'claimed');
      assert.equal(ran, false);
    });

    it('resolves undefined for an event nobody handles', async () => {
      assert.equal(await new EventBus().fire('nothing', {}), undefined);
    });

    it('tags an error with the owner of the handler that threw', async () => {
      const bus = new EventBus<null>();
      bus.add('e', () => {
        throw new Error('boom');
      }, 0, 'mod_x');
      await assert.rejects(bus.fire('e', null), (err) => errorOwner(err) === 'mod_x');
    });
  });

  describe('#add()', () => {
    it('returns a remover for exactly that registration', async () => {
      const bus = new EventBus<null>();
      const h = (): string => 'a';
      const removeFirst = bus.add('e', h);
      bus.add('e', h);
      assert.equal(bus.size(), 2);
      removeFirst();
      removeFirst();
      assert.equal(bus.size(), 1);
      assert.equal(await bus.fire('e', null), 'a');
    });
  });
});
