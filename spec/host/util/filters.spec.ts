// Session filters (util/filters.ts, Prosody util/filters.lua) and module.filter(), which tracks them for unload.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { xml } from '@xmpp/xml';
import { FilterChain, filterOwner } from '../../../lib/host/util/filters.js';
import { EventBus } from '../../../lib/host/core/events.js';
import { ModuleManager, type Catalog, type ModuleHostServices } from '../../../lib/host/core/module-manager.js';
import { validateConfig } from '../../../lib/host/core/config.js';
import type { ClientSession, ModuleDefinition, Stanza } from '../../../lib/host/api.js';

const session = {} as ClientSession;

describe('FilterChain', () => {
  it('is empty until a filter is added, and again once it is removed', () => {
    const chain = new FilterChain<string, null>();
    assert.equal(chain.isEmpty, true);
    const remove = chain.add((s) => s);
    assert.equal(chain.isEmpty, false);
    remove();
    assert.equal(chain.isEmpty, true);
  });

  it('runs filters highest priority first, equal priorities in the order added, each seeing the last one’s value', () => {
    const chain = new FilterChain<string, null>();
    chain.add((s) => `${s}a`);
    chain.add((s) => `${s}b`, 5);
    chain.add((s) => `${s}c`);
    assert.equal(chain.run('', null), 'bac');
  });

  it('stops at a filter that drops the value (undefined)', () => {
    const chain = new FilterChain<string, null>();
    let later = 0;
    chain.add(() => undefined, 1);
    chain.add((s) => (later++, s));
    assert.equal(chain.run('x', null), undefined);
    assert.equal(later, 0);
  });

  it('removes exactly the registration whose remover is called', () => {
    const chain = new FilterChain<string, null>();
    const f = (s: string) => `${s}!`;
    const first = chain.add(f);
    chain.add(f);
    first();
    assert.equal(chain.run('x', null), 'x!');
  });

  it('passes the session and tags a throwing filter’s error with its owner', () => {
    const chain = new FilterChain<string, ClientSession>();
    let seen: ClientSession | undefined;
    chain.add((s, sess) => ((seen = sess), s), 0, 'a');
    chain.add(() => {
      throw new Error('boom');
    }, 0, 'smacks');
    assert.throws(() => chain.run('x', session), (err) => filterOwner(err) === 'smacks');
    assert.equal(seen, session);
  });
});

describe('ModuleApi', () => {
  describe('#filter()', () => {
    async function setup(load: ModuleDefinition['load']) {
      const def: ModuleDefinition = { manifest: { id: 'f', description: 'spec module' }, load };
      const catalog: Catalog = { entries: new Map([['f', { manifest: def.manifest, isCore: false, resolve: async () => def.load }]]), manifests: new Map([['f', def.manifest]]), core: new Set() };
      const config = validateConfig({ modules_enabled: ['f'], virtual_hosts: { localhost: {}, 'other.example': {} } }, catalog, { source: 'spec.yaml', baseDir: '/tmp' });
      const buses = new Map([['localhost', new EventBus()], ['other.example', new EventBus()]]);
      const services = { config, log: pino({ level: 'silent' }), globalBus: new EventBus(), bus: (h: string) => buses.get(h) } as unknown as ModuleHostServices;
      const manager = new ModuleManager(catalog, services);
      await manager.loadAll();
      return manager;
    }

    it('filters stanzas in and out on the module’s host: replace, pass or drop', async () => {
      const manager = await setup((m) => {
        if (m.host !== 'localhost') return;
        m.filter('stanzas/in', (s) => (s.attrs.type === 'spam' ? undefined : s));
        m.filter('stanzas/out', (s) => xml(s.name, { ...s.attrs, stamped: 'yes' }, ...s.children));
      });
      const api = manager.apiOf('localhost', 'f')!;
      const inbound = api.sessionFilters('stanzas/in');
      const outbound = api.sessionFilters('stanzas/out');
      const hello: Stanza = xml('message', {}, xml('body', {}, 'hi'));
      assert.equal(inbound.run(hello, session), hello);
      assert.equal(inbound.run(xml('message', { type: 'spam' }), session), undefined);
      assert.equal(outbound.run(hello, session)?.toString(), '<message stamped="yes"><body>hi</body></message>');
      assert.equal(manager.apiOf('other.example', 'f')!.sessionFilters('stanzas/in').isEmpty, true, 'another host has its own filters');
    });

    it('removes the module’s filters when it unloads, and a reload adds them again', async () => {
      const manager = await setup((m) => {
        m.filter('stanzas/in', (s) => s);
        m.filter('stanzas/out', (s) => s, 10);
      });
      const chainIn = manager.apiOf('localhost', 'f')!.sessionFilters('stanzas/in');
      const chainOut = manager.apiOf('localhost', 'f')!.sessionFilters('stanzas/out');
      assert.equal(chainIn.isEmpty || chainOut.isEmpty, false);
      await manager.unload('localhost', 'f');
      assert.equal(chainIn.isEmpty, true);
      assert.equal(chainOut.isEmpty, true);
      // Sessions keep the chain they looked up: a module loaded later still reaches them.
      await manager.load('localhost', 'f');
      assert.equal(chainIn.isEmpty, false);
      assert.equal(manager.apiOf('localhost', 'f')!.sessionFilters('stanzas/in'), chainIn);
    });
  });
});
