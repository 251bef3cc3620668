// Disco and ping on component hosts (Prosody answers both on components): the core modules made for components
// (manifest loadOnComponents) load there beside the component's module; disco answers for the component (its
// identities, else component/generic; its features) unless the component's module answers itself.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { xml, type ModuleApi, type ModuleDefinition, type Stanza, type StanzaEvent, type UsersApi } from '../../../lib/host/api.js';
import { validateConfig } from '../../../lib/host/core/config.js';
import { EventBus } from '../../../lib/host/core/events.js';
import { ModuleManager, discoverModules } from '../../../lib/host/core/module-manager.js';
import { MemorySessionRegistry } from '../../../lib/host/core/sessions.js';
import { StanzaRouter } from '../../../lib/host/core/stanza-router.js';
import { disco } from '../../../lib/host/modules/disco.js';
import { ping } from '../../../lib/host/modules/ping.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const NS_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ITEMS = 'http://jabber.org/protocol/disco#items';

/** Route an iq from alice's client through a module's API and resolve to the answer sent back. */
function ask(api: ModuleApi, stanza: Stanza): Promise<Stanza> {
  return new Promise((resolve, reject) => {
    api.route(stanza, { type: 'c2s', host: 'localhost', jid: 'alice@localhost/desk', send: resolve }).catch(reject);
  });
}

const infoOf = (answer: Stanza) => {
  const query = answer.getChild('query', NS_INFO)!;
  return {
    identities: query.getChildren('identity').map((i) => i.attrs),
    features: query.getChildren('feature').map((f) => f.attrs.var as string),
  };
};

describe('disco and ping on component hosts', () => {
  describe('on the running server', () => {
    let ts: TestServer;
    let api: ModuleApi;
    const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
    before(async () => {
      ts = await startTestServer({
        config: {
          modules_enabled: [],
          plugin_paths: [`${fixtures}widget_maker`, `${fixtures}widget_counter`],
          components: { 'widgets.localhost': { module: 'widget_counter', greeting: 'hi' } },
        },
      });
      api = ts.server.modules.apiOf('localhost', 'ping')!;
    });
    after(() => ts?.stop());

    it('load disco and ping there, and no other core module', () => {
      for (const id of ['disco', 'ping', 'widget_counter']) assert.equal(ts.server.modules.isLoaded('widgets.localhost', id), true, id);
      for (const id of ['roster', 'presence', 'message', 'iq']) assert.equal(ts.server.modules.isLoaded('widgets.localhost', id), false, id);
    });

    it('answer disco#info for the component: a component/generic identity named after its module, its features', async () => {
      const answer = await ask(api, xml('iq', { type: 'get', id: 'i1', to: 'widgets.localhost' }, xml('query', { xmlns: NS_INFO })));
      assert.equal(answer.attrs.type, 'result');
      assert.equal(answer.attrs.from, 'widgets.localhost');
      assert.deepEqual(infoOf(answer), {
        identities: [{ category: 'component', type: 'generic', name: 'widget_counter' }],
        features: [NS_INFO, NS_ITEMS, 'urn:xmpp:ping'],
      });
      const items = await ask(api, xml('iq', { type: 'get', id: 'i2', to: 'widgets.localhost' }, xml('query', { xmlns: NS_ITEMS })));
      assert.equal(items.attrs.type, 'result');
      assert.equal(items.getChild('query', NS_ITEMS)?.children.length, 0);
    });

    it('answer a ping to the component', async () => {
      const answer = await ask(api, xml('iq', { type: 'get', id: 'p1', to: 'widgets.localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(answer.attrs.type, 'result');
      assert.equal(answer.attrs.from, 'widgets.localhost');
    });
  });

  describe('in the module manager', () => {
    const room: ModuleDefinition = {
      manifest: { id: 'room', description: 'a component module with its own identity' },
      load: (m) => m.provides('disco_identity', { category: 'conference', type: 'text', name: 'Rooms' }),
    };
    const selfish: ModuleDefinition = {
      manifest: { id: 'selfish', description: 'a component module answering disco itself' },
      load: (m) => m.handleIq('get', NS_INFO, 'query', () => xml('query', { xmlns: NS_INFO }, xml('identity', { category: 'conference', type: 'text', name: 'Mine' }))),
    };

    function setup(raw: Record<string, unknown>) {
      const catalog = discoverModules([disco, ping], [], [room, selfish]);
      const config = validateConfig({ modules_enabled: [], virtual_hosts: { localhost: {} }, ...raw }, catalog, { source: 'spec.yaml', baseDir: '/tmp' });
      const buses = new Map([...Object.keys(config.virtual_hosts), ...Object.keys(config.components)].map((h) => [h, new EventBus<StanzaEvent>()]));
      const globalBus = new EventBus<unknown>();
      const router = new StanzaRouter({ bus: (d) => buses.get(d), globalBus, log: pino({ level: 'silent' }) });
      const manager = new ModuleManager(catalog, {
        config, log: pino({ level: 'silent' }), users: { exists: async () => false } as unknown as UsersApi, sessions: new MemorySessionRegistry(), globalBus,
        bus: (h) => buses.get(h)!, route: (s, o) => router.route(s, o),
        openStore: () => assert.fail('unused'), openArchive: () => assert.fail('unused'), openMap: () => assert.fail('unused'),
      });
      return { manager };
    }

    it('give the component\'s own identities in place of the generic one', async () => {
      const { manager } = setup({ components: { 'rooms.localhost': { module: 'room' } } });
      await manager.loadAll();
      const answer = await ask(manager.apiOf('localhost', 'disco')!, xml('iq', { type: 'get', id: 'i', to: 'rooms.localhost' }, xml('query', { xmlns: NS_INFO })));
      assert.deepEqual(infoOf(answer).identities, [{ category: 'conference', type: 'text', name: 'Rooms' }]);
      await manager.unloadAll();
    });

    it('let a component module that answers disco itself go first', async () => {
      const { manager } = setup({ components: { 'mine.localhost': { module: 'selfish' } } });
      await manager.loadAll();
      const answer = await ask(manager.apiOf('localhost', 'disco')!, xml('iq', { type: 'get', id: 'i', to: 'mine.localhost' }, xml('query', { xmlns: NS_INFO })));
      assert.deepEqual(infoOf(answer).identities, [{ category: 'conference', type: 'text', name: 'Mine' }]);
      await manager.unloadAll();
    });

    it('follow modules_disabled: a disabled ping loads on no component', () => {
      const { manager } = setup({ modules_disabled: ['ping'], components: { 'rooms.localhost': { module: 'room' } } });
      assert.deepEqual(manager.enabledOn('rooms.localhost'), ['disco', 'room']);
      assert.deepEqual(manager.enabledOn('localhost'), ['disco']);
    });
  });
});
