// The storage backend chosen by config (core/storage/manager.ts, Prosody's storagemanager): `storage: <name>` loads
// the module storage_<name> on `*` and opens the `storage` item it provides, before any other module; an unknown
// name is a config error naming the known backends; the CLI's path loads only that module.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { validateConfig } from '../../../../lib/host/core/config.js';
import { EventBus } from '../../../../lib/host/core/events.js';
import { ModuleManager, type Catalog } from '../../../../lib/host/core/module-manager.js';
import { MemorySessionRegistry } from '../../../../lib/host/core/sessions.js';
import { moduleCatalog, openUsers, readConfig, startServer } from '../../../../lib/host/core/server.js';
import { loadStorage, openStorage } from '../../../../lib/host/core/storage/manager.js';
import type { HostError } from '../../../../lib/host/util/errors.js';
import type { ModuleDefinition, Storage, UsersApi } from '../../../../lib/host/api.js';

/** A backend module whose storage is a marker object: enough to see which backend the host opened, and when. */
function fakeBackend(id: string, name: string, opened: string[]): { def: ModuleDefinition; storage: Storage } {
  const storage = { close: () => undefined } as unknown as Storage;
  const def: ModuleDefinition = {
    manifest: { id, global: true, description: 'fake storage' },
    load: (module) => module.provides('storage', { name, open: ({ dataDir }) => (opened.push(`${name} ${dataDir}`), storage) }),
  };
  return { def, storage };
}

function catalogOf(defs: ModuleDefinition[]): Catalog {
  const entries = new Map(defs.map((d) => [d.manifest.id, { manifest: d.manifest, isCore: false, resolve: async () => d.load }]));
  return { entries, manifests: new Map(defs.map((d) => [d.manifest.id, d.manifest])), core: new Set() };
}

const where = { source: 'spec.yaml', baseDir: '/srv' };

describe('storage backends', () => {
  describe('the storage key', () => {
    it('defaults to sqlite, which the bundled catalog offers', () => {
      const config = validateConfig({}, moduleCatalog(), where);
      assert.equal(config.storage, 'sqlite');
    });

    it('refuses a backend no module provides, naming the known ones', () => {
      const catalog = catalogOf([fakeBackend('storage_fake', 'fake', []).def, fakeBackend('storage_other', 'other', []).def]);
      assert.throws(
        () => validateConfig({ storage: 'postgres', modules_enabled: [] }, catalog, where),
        (err: HostError) => err.code === 'HOST_ERR_CONFIG_INVALID' &&
          err.message.includes('spec.yaml: storage: unknown storage backend "postgres"; known backends are fake, other'),
      );
      assert.throws(() => readConfig({ config: { storage: 'postgres' } }), /known backends are sqlite/);
    });
  });

  describe('openStorage()', () => {
    it('loads the configured backend module on * (only that one) and opens its item with data_dir', async () => {
      const opened: string[] = [];
      const fake = fakeBackend('storage_fake', 'fake', opened);
      const catalog = catalogOf([fake.def, fakeBackend('storage_other', 'other', opened).def]);
      const config = validateConfig({ storage: 'fake', data_dir: 'data', modules_enabled: ['storage_fake'] }, catalog, where);
      const modules = new ModuleManager(catalog, {
        config, log: pino({ level: 'silent' }), users: {} as UsersApi, sessions: new MemorySessionRegistry(), globalBus: new EventBus(),
        bus: () => new EventBus(), route: async () => undefined,
        openStore: () => assert.fail('unused'), openArchive: () => assert.fail('unused'), openMap: () => assert.fail('unused'),
      });
      assert.equal(await openStorage(modules, config), fake.storage);
      assert.deepEqual(opened, ['fake /srv/data']);
      assert.equal(modules.isLoaded('*', 'storage_fake'), true);
      assert.equal(modules.isLoaded('*', 'storage_other'), false);
      // loadAll does not load it twice, even when modules_enabled names it too.
      await modules.loadAll();
      await modules.unloadAll();
      assert.deepEqual(modules.items.size(), { items: 0, consumers: 0 });
    });

    it('fails clearly when the module provides no backend of that name', async () => {
      const catalog = catalogOf([fakeBackend('storage_fake', 'not-fake', []).def]);
      const config = validateConfig({ storage: 'fake', modules_enabled: [] }, catalog, where);
      await assert.rejects(loadStorage(config, catalog), { code: 'HOST_ERR_MODULE_LOAD', message: 'module storage_fake provides no storage backend named "fake".' });
    });

    it('hands a backend module nothing but the item registry (it is what provides the stores)', async () => {
      const catalog = catalogOf([{
        manifest: { id: 'storage_greedy', global: true, description: 'reads stores at load' },
        load: (module) => void module.openStore('x'),
      }]);
      const config = validateConfig({ storage: 'greedy', modules_enabled: [] }, catalog, where);
      await assert.rejects(loadStorage(config, catalog), /openStore\(\) is not available to a storage module/);
    });
  });

  describe('on the server and in the CLI', () => {
    it('runs on storage_sqlite by default; the CLI opens the same accounts without a server', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-spec-'));
      try {
        const { config } = readConfig({ config: { data_dir: dataDir, virtual_hosts: { localhost: {} } } });
        const cli = await openUsers(config);
        await cli.users.create('alice@localhost', 'alice-pw');
        cli.storage.close();
        const server = await startServer({ config: { data_dir: dataDir, log_level: 'silent', http_ports: [0], c2s_ports: [0], s2s_ports: [0], modules_enabled: [], virtual_hosts: { localhost: {} } } });
        try {
          assert.equal(server.modules.isLoaded('*', 'storage_sqlite'), true);
          assert.deepEqual(await server.users.list(), ['alice@localhost']);
        } finally {
          await server.stop();
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});
