// Which storage backend the server runs on (Prosody's core/storagemanager.lua): the host key `storage: <name>`
// names it, the module `storage_<name>` provides it as a `storage` item; it loads and opens before any other module.

import pino, { type Logger } from 'pino';
import { HostError } from '../../util/errors.js';
import type { Storage, StorageBackend, UsersApi } from '../../api.js';
import { storageModuleId, type HostConfig } from '../config.js';
import { EventBus } from '../events.js';
import { GLOBAL_HOST } from '../items.js';
import { ModuleManager, type Catalog } from '../module-manager.js';
import { MemorySessionRegistry } from '../sessions.js';

/** Load the configured backend's module on `*` of `modules` (once) and open the backend it provides. */
export async function openStorage(modules: ModuleManager, config: HostConfig): Promise<Storage> {
  const id = storageModuleId(config.storage);
  if (!modules.isLoaded(GLOBAL_HOST, id)) await modules.load(GLOBAL_HOST, id);
  const backend = modules.items
    .list('storage', GLOBAL_HOST)
    .map((e) => e.item as StorageBackend)
    .find((b) => b.name === config.storage);
  if (!backend) throw new HostError('HOST_ERR_MODULE_LOAD', `module ${id} provides no storage backend named ${JSON.stringify(config.storage)}.`);
  return backend.open({ dataDir: config.data_dir });
}

/**
 * Storage without a server (the admin CLI): a module manager of its own loads only the backend's module, which
 * gets no accounts, routing or stores (it is what provides them).
 */
export async function loadStorage(config: HostConfig, catalog: Catalog, log: Logger = pino({ level: 'silent' })): Promise<Storage> {
  const refuse = (what: string) => (): never => {
    throw new HostError('HOST_ERR_MODULE_LOAD', `${what} is not available to a storage module.`);
  };
  const modules = new ModuleManager(catalog, {
    config,
    log,
    users: new Proxy({} as UsersApi, { get: (_target, key) => refuse(`users.${String(key)}`) }),
    sessions: new MemorySessionRegistry(),
    globalBus: new EventBus<unknown>(),
    bus: refuse('a host bus'),
    route: refuse('route()'),
    openStore: refuse('openStore()'),
    openArchive: refuse('openArchive()'),
    openMap: refuse('openMap()'),
  });
  return openStorage(modules, config);
}
