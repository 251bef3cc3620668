// Modules: load once per host, unload removes every registration, options precedence, dependencies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import Router from 'koa-router';
import { EventBus } from '../../../lib/host/core/events.js';
import { HttpApps } from '../../../lib/host/modules/http/apps.js';
import { ModuleManager, dependencyOrder, resolveHttpPath, type Catalog } from '../../../lib/host/core/module-manager.js';
import { validateConfig } from '../../../lib/host/core/config.js';
import { MemorySessionRegistry } from '../../../lib/host/core/sessions.js';
import { HostError } from '../../../lib/host/util/errors.js';
import type { HttpApp, Manifest, ModuleApi, ModuleDefinition, StanzaEvent, UsersApi } from '../../../lib/host/api.js';

function catalogOf(defs: ModuleDefinition[]): Catalog {
  const entries = new Map(defs.map((d) => [d.manifest.id, { manifest: d.manifest, isCore: false, resolve: async () => d.load }]));
  return { entries, manifests: new Map(defs.map((d) => [d.manifest.id, d.manifest])), core: new Set() };
}

function setup(defs: ModuleDefinition[], raw: Record<string, unknown>) {
  const catalog = catalogOf(defs);
  const config = validateConfig(raw, catalog, { source: 'spec.yaml', baseDir: '/tmp' });
  const buses = new Map(Object.keys(config.virtual_hosts).map((h) => [h, new EventBus<StanzaEvent>()]));
  const globalBus = new EventBus<unknown>();
  const http = new HttpApps(() => undefined);
  const manager = new ModuleManager(catalog, {
    config,
    log: pino({ level: 'silent' }),
    users: {} as UsersApi,
    sessions: new MemorySessionRegistry(),
    globalBus,
    bus: (h) => buses.get(h)!,
    route: async () => undefined,
    openStore: () => ({ get: async () => undefined, set: async () => undefined }),
    openArchive: () => {
      throw new Error('unused');
    },
  });
  // As the server does until the http module consumes its items: mount each http item under its resolved path.
  const unmounts = new Map<unknown, () => void>();
  manager.items.handle(
    'http',
    '*',
    (item, info) => {
      const app = item as HttpApp;
      unmounts.set(item, http.mount(info.host, info.module, resolveHttpPath(config, info.host, info.module, app.defaultPath), app.router));
    },
    (item) => unmounts.get(item)?.(),
  );
  return { manager, buses, globalBus, http, config };
}

const busy: ModuleDefinition = {
  manifest: {
    id: 'busy',
    description: 'registers one of everything',
    options: { limit: { type: 'integer', default: 5, min: 1, max: 9, description: 'a limit' } },
  },
  load(module) {
    module.hook('message/bare', () => undefined);
    module.hook('iq-get/host/urn:example:q', () => true, 5);
    module.hookGlobal('server-started', () => undefined);
    module.provides('http', { defaultPath: '/busy', router: new Router() });
    module.provides('disco_feature', 'urn:example:busy');
    module.provides('account_disco_feature', 'urn:example:busy:account');
  },
};

describe('ModuleManager', () => {
  describe('#load() / #unload()', () => {
    it('removes every hook, route and feature on unload, and a reload registers them again', async () => {
      const { manager, buses, globalBus, http } = setup([busy], { modules_enabled: ['busy'], virtual_hosts: { localhost: {} } });
      const bus = buses.get('localhost')!;
      await manager.loadAll();
      assert.equal(bus.size(), 2);
      assert.equal(globalBus.size(), 1);
      assert.equal(http.count(), 1);
      assert.deepEqual(manager.discoFeatures('localhost', 'server'), ['urn:example:busy']);

      await manager.unload('localhost', 'busy');
      assert.equal(bus.size(), 0);
      assert.equal(globalBus.size(), 0);
      assert.equal(http.count(), 0);
      assert.deepEqual(manager.discoFeatures('localhost', 'server'), []);
      assert.deepEqual(manager.discoFeatures('localhost', 'account'), []);
      assert.equal(manager.isLoaded('localhost', 'busy'), false);

      await manager.load('localhost', 'busy');
      assert.equal(bus.size(), 2);
      assert.equal(http.count(), 1);
    });

    it('runs onUnload handlers, last registered first', async () => {
      const order: string[] = [];
      const def: ModuleDefinition = {
        manifest: { id: 'u', description: '' },
        load(m) {
          m.onUnload(() => void order.push('first'));
          m.onUnload(async () => void order.push('second'));
        },
      };
      const { manager } = setup([def], { modules_enabled: ['u'] });
      await manager.loadAll();
      await manager.unloadAll();
      assert.deepEqual(order, ['second', 'first']);
    });

    it('loads once per virtual host it is enabled on', async () => {
      const hosts: string[] = [];
      const def: ModuleDefinition = { manifest: { id: 'per', description: '' }, load: (m) => void hosts.push(m.host) };
      const { manager } = setup([def], { modules_enabled: [], virtual_hosts: { a: { modules_enabled: ['per'] }, b: {}, c: { modules_enabled: ['per'] } } });
      await manager.loadAll();
      assert.deepEqual(hosts, ['a', 'c']);
    });

    it('undoes a module whose load throws, and says which module failed', async () => {
      const def: ModuleDefinition = {
        manifest: { id: 'bad', description: '' },
        load(m) {
          m.hook('message/bare', () => undefined);
          throw new Error('no luck');
        },
      };
      const { manager, buses } = setup([def], { modules_enabled: ['bad'] });
      await assert.rejects(manager.loadAll(), (err: HostError) => err.code === 'HOST_ERR_MODULE_LOAD' && /module bad failed to load on localhost: no luck/.test(err.message));
      assert.equal(buses.get('localhost')!.size(), 0);
    });
  });

  describe('ModuleApi', () => {
    it('#option() resolves host setting > global setting > manifest default', async () => {
      const seen: Record<string, unknown> = {};
      const def: ModuleDefinition = { ...busy, load: (m) => void (seen[m.host] = m.option('limit')) };
      const { manager } = setup([def], { modules_enabled: ['busy'], busy: { limit: 7 }, virtual_hosts: { a: { busy: { limit: 8 } }, b: {} } });
      await manager.loadAll();
      assert.deepEqual(seen, { a: 8, b: 7 });
    });

    it('#option() throws HOST_ERR_OPTION_UNKNOWN for an undeclared key', async () => {
      let api: ModuleApi | undefined;
      const { manager } = setup([{ ...busy, load: (m) => void (api = m) }], { modules_enabled: ['busy'] });
      await manager.loadAll();
      assert.throws(() => api!.option('limt'), (err: HostError) => err.code === 'HOST_ERR_OPTION_UNKNOWN');
      assert.ok(Object.isFrozen(api!.options));
      assert.ok(Object.isFrozen(api));
    });

    it('#provides() takes a kind the host has never heard of, and unload removes it', async () => {
      const def: ModuleDefinition = { manifest: { id: 'p', description: '' }, load: (m) => void m.provides('nonsense' as 'http', { defaultPath: '/', router: new Router() }) };
      const { manager } = setup([def], { modules_enabled: ['p'] });
      await manager.loadAll();
      assert.deepEqual(manager.items.list('nonsense', 'localhost').map((e) => e.info), [{ host: 'localhost', module: 'p' }]);
      await manager.unload('localhost', 'p');
      assert.deepEqual(manager.items.list('nonsense', 'localhost'), []);
    });

    it("#provides('http') mounts under http_paths: virtual host > global > default", () => {
      const { config } = setup([busy], { modules_enabled: [], http_paths: { busy: '/g' }, virtual_hosts: { a: { http_paths: { busy: '/h/' } }, b: {} } });
      assert.equal(resolveHttpPath(config, 'a', 'busy', '/busy'), '/h');
      assert.equal(resolveHttpPath(config, 'b', 'busy', '/busy'), '/g');
      assert.equal(resolveHttpPath(config, 'b', 'other', '/other/'), '/other');
    });
  });

  describe('dependencyOrder()', () => {
    const m = (id: string, depends: string[] = []): [string, Manifest] => [id, { id, description: '', depends }];
    it('puts dependencies first', () => {
      assert.deepEqual(dependencyOrder(['a'], new Map([m('a', ['b']), m('b', ['c']), m('c')])), ['c', 'b', 'a']);
    });
    it('names a missing dependency', () => {
      assert.throws(() => dependencyOrder(['a'], new Map([m('a', ['ghost'])])), /module a depends on ghost, which is not installed/);
    });
    it('names the cycle', () => {
      assert.throws(() => dependencyOrder(['a'], new Map([m('a', ['b']), m('b', ['a'])])), (err: HostError) => err.code === 'HOST_ERR_MODULE_DEPENDENCY' && err.message.includes('a → b → a'));
    });
  });
});
