// Modules: load once per host, unload removes every registration, options precedence, dependencies; provided items,
// depends(), global modules, component hosts and modules_disabled; two plugins loaded through plugin_paths.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import Router from 'koa-router';
import { EventBus } from '../../../lib/host/core/events.js';
import { HttpApps } from '../../../lib/host/modules/http/apps.js';
import { ModuleManager, dependencyOrder, discoverModules, type Catalog } from '../../../lib/host/core/module-manager.js';
import { resolveHttpPath as resolveAppPath } from '../../../lib/host/modules/http/index.js';
import { StanzaRouter } from '../../../lib/host/core/stanza-router.js';
import { xml } from '../../../lib/host/api.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { RawClient, streamOpen } from '../c2s/helpers.js';
import type { WidgetCounter } from '../../fixtures/widget_counter/index.js';
import { validateConfig, type HostConfig } from '../../../lib/host/core/config.js';
import { MemorySessionRegistry } from '../../../lib/host/core/sessions.js';
import { HostError } from '../../../lib/host/util/errors.js';
import type { HttpApp, Manifest, ModuleApi, ModuleDefinition, StanzaEvent, UsersApi } from '../../../lib/host/api.js';

/** The http module's base path resolution, over a validated config. */
function resolveHttpPath(config: HostConfig, host: string, app: string, defaultPath: string): string {
  return resolveAppPath({ setting: (key: string) => (config as unknown as Record<string, unknown>)[key] } as ModuleApi, host, app, defaultPath);
}

function catalogOf(defs: ModuleDefinition[], core: string[] = []): Catalog {
  const entries = new Map(defs.map((d) => [d.manifest.id, { manifest: d.manifest, isCore: core.includes(d.manifest.id), resolve: async () => d.load }]));
  return { entries, manifests: new Map(defs.map((d) => [d.manifest.id, d.manifest])), core: new Set(core) };
}

function setup(defs: ModuleDefinition[] | Catalog, raw: Record<string, unknown>) {
  const catalog = Array.isArray(defs) ? catalogOf(defs) : defs;
  const config = validateConfig(raw, catalog, { source: 'spec.yaml', baseDir: '/tmp' });
  const buses = new Map([...Object.keys(config.virtual_hosts), ...Object.keys(config.components)].map((h) => [h, new EventBus<StanzaEvent>()]));
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
    openMap: () => {
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
    module.handleItems('disco_feature', () => undefined, () => undefined);
    module.setService({ seen: () => [], messages: () => [] } satisfies WidgetCounter);
  },
};

describe('ModuleManager', () => {
  describe('#load() / #unload()', () => {
    it('removes every hook, route and feature on unload, and a reload registers them again', async () => {
      const { manager, buses, globalBus, http } = setup([busy], { modules_enabled: ['busy'], virtual_hosts: { localhost: {} } });
      const bus = buses.get('localhost')!;
      const itemsBefore = manager.items.size();
      await manager.loadAll();
      assert.deepEqual(manager.items.size(), { items: itemsBefore.items + 3, consumers: itemsBefore.consumers + 1 });
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
      assert.deepEqual(manager.items.size(), itemsBefore);

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

  describe('provided items', () => {
    const feature = (id: string, value: string): ModuleDefinition => ({ manifest: { id, description: '' }, load: (m) => void m.provides('disco_feature', value) });

    it('#handleItems() sees items provided before it loaded and after, and loses them when their module unloads', async () => {
      const seen: string[] = [];
      const consumer: ModuleDefinition = {
        manifest: { id: 'consumer', description: '' },
        load: (m) =>
          m.handleItems(
            'disco_feature',
            (f, info) => void seen.push(`+${f} ${info.host}/${info.module}`),
            (f, info) => void seen.push(`-${f} ${info.host}/${info.module}`),
          ),
      };
      const { manager } = setup([feature('early', 'urn:early'), feature('late', 'urn:late'), consumer], { modules_enabled: [], virtual_hosts: { a: {}, b: {} } });
      await manager.load('a', 'early');
      await manager.load('b', 'early');
      await manager.load('a', 'consumer');
      await manager.load('a', 'late');
      await manager.unload('a', 'early');
      assert.deepEqual(seen, ['+urn:early a/early', '+urn:late a/late', '-urn:early a/early']);
      assert.deepEqual(manager.discoFeatures('a', 'server'), ['urn:late']);
      assert.deepEqual(manager.discoFeatures('b', 'server'), ['urn:early']);
    });

    it('fires item-added/<kind> and item-removed/<kind> on the host', async () => {
      const events: string[] = [];
      const watcher: ModuleDefinition = {
        manifest: { id: 'watcher', description: '' },
        load(m) {
          m.hook('item-added/disco_feature', (e) => void events.push(`added ${(e as unknown as { item: string }).item}`));
          m.hook('item-removed/disco_feature', (e) => void events.push(`removed ${(e as unknown as { item: string }).item}`));
        },
      };
      const { manager } = setup([watcher, feature('f', 'urn:f')], { modules_enabled: ['watcher'] });
      await manager.loadAll();
      await manager.load('localhost', 'f');
      await manager.unload('localhost', 'f');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(events, ['added urn:f', 'removed urn:f']);
    });
  });

  describe('plugins through plugin_paths', () => {
    const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
    const pluginPaths = [`${fixtures}widget_maker`, `${fixtures}widget_counter`];
    let counter: WidgetCounter | undefined;
    const probe: ModuleDefinition = {
      manifest: { id: 'probe', description: 'reads the counter through depends()', depends: ['widget_counter'] },
      load: (m) => void (counter = m.depends('widget_counter')),
    };

    it('one plugin provides a kind the host has never heard of, the other consumes it, before and after it loaded', async () => {
      const catalog = discoverModules([probe], pluginPaths);
      assert.equal(catalog.manifests.get('widget_maker')?.main, 'index.ts');
      const { manager } = setup(catalog, { modules_enabled: [], widget_maker: { names: ['gear', 'cog'] }, virtual_hosts: { a: {}, b: {} } });
      await manager.load('a', 'widget_maker');
      await manager.load('b', 'widget_maker');
      await manager.load('a', 'widget_counter');
      await manager.load('a', 'probe');
      assert.deepEqual(counter!.seen(), ['hello a:gear', 'hello a:cog']);

      await manager.unload('a', 'widget_maker');
      assert.deepEqual(counter!.seen(), []);
      await manager.load('a', 'widget_maker');
      assert.deepEqual(counter!.seen(), ['hello a:gear', 'hello a:cog']);
      assert.equal(manager.items.list('widget', 'b').length, 2);
    });

    it('#depends() names a module that is not loaded, and one that offers no service', async () => {
      const catalog = discoverModules([probe], pluginPaths);
      const { manager } = setup(catalog, { modules_enabled: [] });
      await assert.rejects(manager.load('localhost', 'probe'), (err: HostError) => err.code === 'HOST_ERR_MODULE_DEPENDENCY' && /needs widget_counter/.test(err.message));

      const asks = (dep: string): ModuleDefinition => ({ manifest: { id: `asks_${dep}`, description: '' }, load: (m) => void m.depends(dep as 'widget_counter') });
      const { manager: other } = setup([asks('widget_counter'), asks('busy'), busy], { modules_enabled: [] });
      await assert.rejects(other.load('localhost', 'asks_widget_counter'), (err: HostError) => err.code === 'HOST_ERR_MODULE_DEPENDENCY' && /widget_counter, which is not loaded on localhost/.test(err.message));
      const silent: ModuleDefinition = { manifest: { id: 'silent', description: '' }, load: () => undefined };
      const { manager: third } = setup([silent, { ...asks('silent') }], { modules_enabled: [] });
      await third.load('localhost', 'silent');
      await assert.rejects(third.load('localhost', 'asks_silent'), (err: HostError) => err.code === 'HOST_ERR_MODULE_DEPENDENCY' && /silent, which offers no service/.test(err.message));
    });
  });

  describe('global modules', () => {
    it('load once on *, hook the global bus, see every host\'s items; host modules may depend on them', async () => {
      const hosts: string[] = [];
      const seen: string[] = [];
      const watch: ModuleDefinition = {
        manifest: { id: 'watch', description: '', global: true },
        load(m) {
          hosts.push(m.host);
          m.hook('route/remote', () => undefined);
          m.handleItems('disco_feature', (f, info) => void seen.push(`${info.host}:${f}`));
          m.setService({ seen: () => seen, messages: () => [] });
        },
      };
      const feat: ModuleDefinition = { manifest: { id: 'feat', description: '', depends: ['watch'] }, load: (m) => void m.provides('disco_feature', `urn:${m.host}`) };
      const { manager, globalBus, buses } = setup([watch, feat], { modules_enabled: ['feat'], virtual_hosts: { a: {}, b: {} } });
      await manager.loadAll();
      assert.deepEqual(hosts, ['*']);
      assert.deepEqual(seen, ['a:urn:a', 'b:urn:b']);
      assert.ok(globalBus.has('route/remote'));
      assert.equal(buses.get('a')!.has('route/remote'), false);
      assert.equal(manager.isLoaded('*', 'watch'), true);
      await assert.rejects(manager.load('a', 'watch'), /watch is a global module/);
      await manager.unload('*', 'watch');
      assert.equal(globalBus.has('route/remote'), false);
    });
  });

  describe('component hosts', () => {
    const hostsOf: Record<string, string[]> = {};
    const recorder = (id: string, extra: Partial<Manifest> = {}, load?: (m: ModuleApi) => void): ModuleDefinition => ({
      manifest: { id, description: '', ...extra },
      load(m) {
        (hostsOf[id] ??= []).push(m.host);
        load?.(m);
      },
    });
    const room = recorder(
      'room',
      { depends: ['helper'], options: { title: { type: 'string', default: 'Rooms', description: 'a title' } } },
      (m) => {
        assert.equal(m.option('title'), 'Chat');
        assert.equal(m.isComponent(m.host), true);
        assert.equal(m.isLocalHost(m.host), false);
        m.hook('message/host', () => 'delivered');
      },
    );
    const helper = recorder('helper', { options: { size: { type: 'integer', default: 3, description: 'a size' } } }, (m) => assert.equal(m.option('size'), 4));
    const coreish = recorder('coreish');

    it('serve a domain with its own bus: its module, what that depends on, its options; no core modules', async () => {
      const { manager, buses, globalBus } = setup(catalogOf([room, helper, coreish], ['coreish']), {
        modules_enabled: [],
        helper: { size: 4 },
        virtual_hosts: { localhost: {} },
        components: { 'rooms.localhost': { module: 'room', title: 'Chat' } },
      });
      await manager.loadAll();
      assert.deepEqual(hostsOf, { coreish: ['localhost'], helper: ['rooms.localhost'], room: ['rooms.localhost'] });
      assert.equal(manager.hostKind('rooms.localhost'), 'component');
      assert.equal(manager.hostKind('localhost'), 'virtual');
      assert.ok(buses.get('rooms.localhost')!.has('message/host'));
      assert.equal(buses.get('localhost')!.has('message/host'), false);

      // The router finds the component's bus for a stanza addressed to it.
      const router = new StanzaRouter({ bus: (d) => buses.get(d), globalBus, log: pino({ level: 'silent' }) });
      const stanza = xml('message', { to: 'rooms.localhost', from: 'alice@localhost/r' }, xml('body', {}, 'hi'));
      assert.equal(await router.route(stanza, { type: 'local', host: 'localhost', jid: 'alice@localhost/r' }), 'delivered');

      await manager.unloadAll();
      assert.equal(buses.get('rooms.localhost')!.size(), 0);
    });
  });

  describe('modules_disabled', () => {
    it('takes an auto-loaded module out of every host; a host that names it still loads it', async () => {
      const loaded: string[] = [];
      const auto: ModuleDefinition = { manifest: { id: 'auto', description: '' }, load: (m) => void loaded.push(m.host) };
      const { manager } = setup(catalogOf([auto], ['auto']), { modules_enabled: [], modules_disabled: ['auto'], virtual_hosts: { a: {}, b: { modules_enabled: ['auto'] } } });
      await manager.loadAll();
      assert.deepEqual(loaded, ['b']);
    });
  });

  describe('a component on the running server', () => {
    let ts: TestServer;
    const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
    before(async () => {
      ts = await startTestServer({
        config: {
          modules_enabled: [],
          plugin_paths: [`${fixtures}widget_maker`, `${fixtures}widget_counter`],
          components: { 'widgets.localhost': { module: 'widget_counter', greeting: 'hi' } },
        },
      });
    });
    after(() => ts?.stop());

    it('refuses client streams to the component domain with host-unknown', async () => {
      const c = await RawClient.connect(ts.c2sPort);
      try {
        c.send(streamOpen('widgets.localhost'));
        await c.waitFor(/<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
        await c.waitClosed();
      } finally {
        c.close();
      }
    });

    it('routes stanzas for the component domain to the component\'s bus', async () => {
      const bus = ts.server.bus('widgets.localhost');
      assert.ok(bus?.has('message/host'));
      assert.equal(ts.server.bus('localhost')?.has('message/host') ?? false, false);
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
