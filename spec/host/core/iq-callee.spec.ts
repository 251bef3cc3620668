// module.handleIq (core/iq-callee.ts, xmpp.js iqCallee): the handler returns the payload or true, or throws a
// StanzaError; one wrapper answers the origin. Driven through the real module manager and stanza router.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { xml } from '@xmpp/xml';
import { EventBus } from '../../../lib/host/core/events.js';
import { ModuleManager, type Catalog, type ModuleHostServices } from '../../../lib/host/core/module-manager.js';
import { validateConfig } from '../../../lib/host/core/config.js';
import { MemorySessionRegistry } from '../../../lib/host/core/sessions.js';
import { StanzaRouter } from '../../../lib/host/core/stanza-router.js';
import { StanzaError } from '../../../lib/host/util/errors.js';
import type { IqHandler, ModuleApi, ModuleDefinition, Origin, Stanza, StanzaEvent } from '../../../lib/host/api.js';

const NS = 'urn:example:q';

/** One module `q` on `localhost`, with a router, a captured log and a client origin that records what it is sent. */
async function setup(register: (m: ModuleApi) => void) {
  const def: ModuleDefinition = { manifest: { id: 'q', description: 'spec module' }, load: register };
  const catalog: Catalog = { entries: new Map([['q', { manifest: def.manifest, isCore: false, resolve: async () => def.load }]]), manifests: new Map([['q', def.manifest]]), core: new Set() };
  const config = validateConfig({ modules_enabled: ['q'], virtual_hosts: { localhost: {} } }, catalog, { source: 'spec.yaml', baseDir: '/tmp' });
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const bus = new EventBus<StanzaEvent>();
  const globalBus = new EventBus<unknown>();
  const router = new StanzaRouter({ bus: (d) => (d === 'localhost' ? bus : undefined), globalBus, log });
  const services = {
    config,
    log,
    users: {},
    sessions: new MemorySessionRegistry(),
    globalBus,
    bus: () => bus,
    route: (stanza: Stanza, origin: Origin) => router.route(stanza, origin),
  } as unknown as ModuleHostServices;
  const manager = new ModuleManager(catalog, services);
  await manager.loadAll();
  const sent: Stanza[] = [];
  const origin: Origin = { type: 'c2s', host: 'localhost', jid: 'bob@localhost/phone', send: (s) => sent.push(s) };
  const ask = (type: 'get' | 'set', to: string | undefined, id = 'q1') =>
    router.route(xml('iq', { type, id, to, from: 'bob@localhost/phone' }, xml('query', { xmlns: NS })), origin);
  return { manager, bus, sent, lines, ask };
}

const condition = (stanza: Stanza | undefined): string | undefined =>
  stanza?.getChild('error')?.children.find((c): c is Stanza => typeof c !== 'string' && c.name !== 'text')?.name;

describe('ModuleApi', () => {
  describe('#handleIq()', () => {
    it('sends a result carrying the returned payload, addressed back to the sender', async () => {
      const { sent, ask } = await setup((m) => m.handleIq('get', NS, 'query', () => xml('query', { xmlns: NS }, xml('answer', {}, '42'))));
      await ask('get', 'localhost');
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.toString(), '<iq type="result" id="q1" to="bob@localhost/phone" from="localhost"><query xmlns="urn:example:q"><answer>42</answer></query></iq>');
    });

    it('sends an empty result for true', async () => {
      const { sent, ask } = await setup((m) => m.handleIq('set', NS, 'query', async () => true as const));
      await ask('set', 'localhost');
      assert.equal(sent[0]?.toString(), '<iq type="result" id="q1" to="bob@localhost/phone" from="localhost"/>');
    });

    it('answers a thrown StanzaError with that error, the query kept (RFC 6120 §8.3)', async () => {
      const { sent, ask, lines } = await setup((m) =>
        m.handleIq('get', NS, 'query', () => {
          throw new StanzaError('item-not-found', 'no such node');
        }),
      );
      await ask('get', 'localhost');
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.attrs.type, 'error');
      assert.equal(sent[0]!.attrs.to, 'bob@localhost/phone');
      assert.equal(condition(sent[0]), 'item-not-found');
      assert.ok(sent[0]!.getChild('query', NS));
      assert.equal(lines.filter((l) => l.level === 50).length, 0, 'an expected refusal is not logged as an error');
    });

    it('answers internal-server-error for a crash and logs it with the module name', async () => {
      const { sent, ask, lines } = await setup((m) =>
        m.handleIq('get', NS, 'query', async () => {
          throw new TypeError('bug in q');
        }),
      );
      await ask('get', 'localhost');
      assert.equal(sent.length, 1);
      assert.equal(condition(sent[0]), 'internal-server-error');
      const logged = lines.find((l) => l.level === 50);
      assert.equal(logged?.module, 'q');
      assert.match(JSON.stringify(logged?.err), /bug in q/);
    });

    it('answers on the given address types only (default: the host)', async () => {
      const { sent, ask } = await setup((m) => {
        m.handleIq('get', NS, 'query', () => true);
        m.handleIq('set', NS, 'query', () => true, { to: ['self'] });
      });
      await ask('get', undefined, 'self-get');
      await ask('set', 'localhost', 'host-set');
      await ask('set', undefined, 'self-set');
      assert.deepEqual(sent.map((s) => [s.attrs.id, s.attrs.type]), [['self-get', 'error'], ['host-set', 'error'], ['self-set', 'result']]);
      assert.equal(condition(sent[0]), 'service-unavailable');
    });

    it('rejects a module send() with the StanzaError, as the router does for origins that take no replies', async () => {
      const handler: IqHandler = () => {
        throw new StanzaError('forbidden');
      };
      let api: ModuleApi | undefined;
      await setup((m) => {
        api = m;
        m.handleIq('get', NS, 'query', handler);
      });
      await assert.rejects(api!.send(xml('iq', { type: 'get', id: 'x', to: 'localhost' }, xml('query', { xmlns: NS }))), (err) => err instanceof StanzaError && err.condition === 'forbidden');
    });

    it('is removed when the module unloads', async () => {
      const { manager, bus } = await setup((m) => m.handleIq('get', NS, 'query', () => true, { to: ['host', 'self', 'bare'] }));
      assert.equal(bus.size(), 3);
      await manager.unload('localhost', 'q');
      assert.equal(bus.size(), 0);
    });
  });
});
