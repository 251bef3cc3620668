// Modules: discovery (core modules + plugin.json manifests), dependency order, load(module) once per
// virtual host, and a record of every registration so unloading removes it all (Prosody's core/modulemanager.lua).

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { HostError } from '../util/errors.js';
import { EventBus } from './events.js';
import type { HostConfig, ModuleCatalog } from './config.js';
import { checkOptionValue, resolveOptions } from './options.js';
import { GLOBAL_HOST, ItemRegistry } from './items.js';
import { iqCallee } from './iq-callee.js';
import { FilterChain } from '../util/filters.js';
import type {
  ClientSession,
  EventHandler,
  FilterKind,
  HostEvents,
  ItemInfo,
  KeyValueStore,
  MapStore,
  ArchiveStore,
  Manifest,
  ModuleApi,
  ModuleDefinition,
  OptionValue,
  Origin,
  Outcome,
  Provides,
  Services,
  SessionRegistry,
  Stanza,
  StanzaEvent,
  UsersApi,
} from '../api.js';
import { parseJid } from '../util/jid.js';

/** The folder holding lib/ (the repo root under tsx, dist/ when compiled): plugin `main` paths start here. */
export const CODE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface CatalogEntry {
  manifest: Manifest;
  isCore: boolean;
  resolve(): Promise<ModuleDefinition['load']>;
}

export interface Catalog extends ModuleCatalog {
  entries: ReadonlyMap<string, CatalogEntry>;
}

/**
 * Every module this server could load: the bundled ones (`bundled` always loaded, `optional` only when enabled, as
 * Prosody ships mod_mam but loads it from modules_enabled) and each plugin.json found in the plugin paths.
 */
export function discoverModules(bundled: readonly ModuleDefinition[], pluginPaths: readonly string[] = [], optional: readonly ModuleDefinition[] = []): Catalog {
  const entries = new Map<string, CatalogEntry>();
  for (const def of bundled) {
    entries.set(def.manifest.id, { manifest: def.manifest, isCore: true, resolve: async () => def.load });
  }
  for (const def of optional) {
    entries.set(def.manifest.id, { manifest: def.manifest, isCore: false, resolve: async () => def.load });
  }
  for (const dir of [CODE_ROOT, ...pluginPaths]) {
    const file = join(dir, 'plugin.json');
    if (!existsSync(file)) continue;
    const manifest = readManifest(file);
    if (entries.has(manifest.id)) {
      throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: module id ${JSON.stringify(manifest.id)} is already taken by another module.`);
    }
    entries.set(manifest.id, { manifest, isCore: false, resolve: () => importPlugin(dir, manifest, file) });
  }
  return {
    entries,
    manifests: new Map([...entries].map(([id, e]) => [id, e.manifest])),
    core: new Set([...entries].filter(([, e]) => e.isCore).map(([id]) => id)),
  };
}

function readManifest(file: string): Manifest {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: cannot read the manifest (${(err as Error).message}).`);
  }
  if (typeof manifest.id !== 'string' || typeof manifest.main !== 'string') {
    throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: a manifest needs "id" and "main" strings.`);
  }
  for (const [key, spec] of Object.entries(manifest.options ?? {})) {
    const problem = checkOptionValue(spec, spec.default);
    if (problem) throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: option ${key} has a default that is not ${problem}.`);
  }
  return manifest;
}

async function importPlugin(dir: string, manifest: Manifest, file: string): Promise<ModuleDefinition['load']> {
  const url = pathToFileURL(join(dir, manifest.main!)).href;
  let mod: { load?: unknown };
  try {
    mod = (await import(url)) as { load?: unknown };
  } catch (err) {
    throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: cannot import ${manifest.main} (${(err as Error).message}).`, { cause: err });
  }
  if (typeof mod.load !== 'function') throw new HostError('HOST_ERR_MODULE_LOAD', `${file}: ${manifest.main} does not export load(module).`);
  return mod.load as ModuleDefinition['load'];
}

/** Order modules so each comes after its dependencies; missing or cyclic dependencies are load errors. */
export function dependencyOrder(ids: Iterable<string>, manifests: ReadonlyMap<string, Manifest>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === 'done') return;
    if (state.get(id) === 'visiting') {
      throw new HostError('HOST_ERR_MODULE_DEPENDENCY', `modules depend on each other in a cycle: ${[...path, id].join(' → ')}.`);
    }
    const manifest = manifests.get(id);
    if (!manifest) {
      const by = path.at(-1);
      throw new HostError('HOST_ERR_MODULE_DEPENDENCY', by ? `module ${by} depends on ${id}, which is not installed.` : `unknown module ${id}.`);
    }
    state.set(id, 'visiting');
    for (const dep of manifest.depends ?? []) visit(dep, [...path, id]);
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of ids) visit(id, []);
  return order;
}

/** What the module manager needs from the rest of the server. */
export interface ModuleHostServices {
  config: HostConfig;
  log: Logger;
  users: UsersApi;
  sessions: SessionRegistry;
  globalBus: EventBus<unknown>;
  /** The event bus of a virtual host or a component host. */
  bus(host: string): EventBus<StanzaEvent>;
  route(stanza: Stanza, origin: Origin): Promise<unknown>;
  openStore<T>(host: string, name: string): KeyValueStore<T>;
  openArchive(host: string, name: string): ArchiveStore;
  openMap<T>(host: string, name: string): MapStore<T>;
}

interface LoadedModule {
  api: ModuleApi;
  cleanups: Array<() => void | Promise<void>>;
  service?: { value: unknown };
}

/** What a host is: `*` for global modules, a virtual host (accounts, client logins), or a component (one module). */
export type HostKind = 'global' | 'virtual' | 'component';

export class ModuleManager {
  /** host → module id → loaded instance. */
  private readonly loaded = new Map<string, Map<string, LoadedModule>>();
  /** Every item provided by a loaded module, per host (core/items.ts). */
  readonly items = new ItemRegistry();
  /** host → session filters of each kind (Prosody util/filters); the chain objects live as long as the manager. */
  private readonly filters = new Map<string, Record<FilterKind, FilterChain<Stanza, ClientSession>>>();

  constructor(private readonly catalog: Catalog, private readonly services: ModuleHostServices) {}

  /** The session filters of a kind on a host. */
  filterChain(host: string, kind: FilterKind): FilterChain<Stanza, ClientSession> {
    let chains = this.filters.get(host);
    if (!chains) this.filters.set(host, (chains = { 'stanzas/in': new FilterChain(), 'stanzas/out': new FilterChain() }));
    return chains[kind];
  }

  hostKind(host: string): HostKind | undefined {
    if (host === GLOBAL_HOST) return 'global';
    if (host in this.services.config.virtual_hosts) return 'virtual';
    if (host in this.services.config.components) return 'component';
    return undefined;
  }

  /**
   * The modules to load on a host, in dependency order. `*`: the global modules wanted anywhere; a virtual host:
   * core, the global list, its own list (global modules excepted); a component: the core modules made for components
   * (`loadOnComponents`), its module and what it depends on.
   * `modules_disabled` takes a module out of core and the global list; a host's own list still names it.
   */
  enabledOn(host: string): string[] {
    const { config } = this.services;
    const isGlobal = (id: string): boolean => this.catalog.manifests.get(id)?.global === true;
    const disabled = new Set(config.modules_disabled);
    const kind = this.hostKind(host);
    if (kind === 'component') {
      const alongside = [...this.catalog.core].filter((id) => this.catalog.manifests.get(id)?.loadOnComponents === true && !disabled.has(id));
      return dependencyOrder([...alongside, config.components[host]!.module], this.catalog.manifests).filter((id) => !isGlobal(id));
    }
    const everywhere = [...this.catalog.core, ...config.modules_enabled].filter((id) => !disabled.has(id));
    if (kind === 'global') {
      // Every global module some host or component asks for, by name or as a dependency.
      const perHost = Object.values(config.virtual_hosts).flatMap((h) => h.modules_enabled);
      const components = Object.values(config.components).map((c) => c.module);
      return dependencyOrder(new Set([...everywhere, ...perHost, ...components]), this.catalog.manifests).filter(isGlobal);
    }
    const own = config.virtual_hosts[host]?.modules_enabled ?? [];
    return dependencyOrder(new Set([...everywhere, ...own]), this.catalog.manifests).filter((id) => !isGlobal(id));
  }

  /** Global modules first (others may depend on them), then each virtual host, then each component. */
  async loadAll(): Promise<void> {
    const { config } = this.services;
    for (const host of [GLOBAL_HOST, ...Object.keys(config.virtual_hosts), ...Object.keys(config.components)]) {
      // The storage backend's module is loaded already (core/storage/manager.ts), should modules_enabled name it too.
      for (const id of this.enabledOn(host)) if (!this.isLoaded(host, id)) await this.load(host, id);
    }
  }

  /** The API instance of a loaded module on a host. */
  apiOf(host: string, id: string): ModuleApi | undefined {
    return this.loaded.get(host)?.get(id)?.api;
  }

  isLoaded(host: string, id: string): boolean {
    return this.loaded.get(host)?.has(id) ?? false;
  }

  async load(host: string, id: string): Promise<ModuleApi> {
    const entry = this.catalog.entries.get(id);
    if (!entry) throw new HostError('HOST_ERR_MODULE_UNKNOWN', `unknown module ${JSON.stringify(id)}.`);
    if (this.isLoaded(host, id)) throw new HostError('HOST_ERR_MODULE_LOAD', `module ${id} is already loaded on ${host}.`);
    const kind = this.hostKind(host);
    if (kind === undefined) throw new HostError('HOST_ERR_MODULE_LOAD', `module ${id}: ${host} is neither a virtual host nor a component of this server.`);
    if ((entry.manifest.global === true) !== (kind === 'global')) {
      const why = kind === 'global' ? 'is not a global module' : `is a global module (loaded once, on ${GLOBAL_HOST})`;
      throw new HostError('HOST_ERR_MODULE_LOAD', `module ${id} ${why}; it cannot load on ${host}.`);
    }
    for (const dep of entry.manifest.depends ?? []) {
      if (!this.loadedOn(host, dep)) throw new HostError('HOST_ERR_MODULE_DEPENDENCY', `module ${id} needs ${dep}, which is not loaded on ${host}.`);
    }
    const instance: LoadedModule = { api: undefined as unknown as ModuleApi, cleanups: [] };
    instance.api = this.createApi(host, entry.manifest, instance);
    let hostModules = this.loaded.get(host);
    if (!hostModules) this.loaded.set(host, (hostModules = new Map()));
    hostModules.set(id, instance);
    try {
      const load = await entry.resolve();
      await load(instance.api);
    } catch (err) {
      await this.unload(host, id);
      if (err instanceof HostError) throw err;
      throw new HostError('HOST_ERR_MODULE_LOAD', `module ${id} failed to load on ${host}: ${(err as Error).message}`, { cause: err });
    }
    instance.api.log.debug('module loaded');
    return instance.api;
  }

  /** Run the module's onUnload handlers (last registered first), then remove every hook, route and feature. */
  async unload(host: string, id: string): Promise<void> {
    const instance = this.loaded.get(host)?.get(id);
    if (!instance) return;
    this.loaded.get(host)!.delete(id);
    for (const cleanup of instance.cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        instance.api.log.error({ err }, 'error while unloading');
      }
    }
  }

  async unloadAll(): Promise<void> {
    for (const [host, modules] of this.loaded) {
      for (const id of [...modules.keys()].reverse()) await this.unload(host, id);
    }
  }

  /** The disco features provided on a host (its modules' and global ones'), sorted and unique. */
  discoFeatures(host: string, kind: 'server' | 'account'): string[] {
    const items = this.items.list(kind === 'server' ? 'disco_feature' : 'account_disco_feature', host);
    return [...new Set(items.map((e) => e.item as string))].sort();
  }

  /** The instance of a module loaded on this host, or globally. */
  private loadedOn(host: string, id: string): LoadedModule | undefined {
    return this.loaded.get(host)?.get(id) ?? this.loaded.get(GLOBAL_HOST)?.get(id);
  }

  private serviceOf(host: string, by: string, name: string): unknown {
    const instance = this.loadedOn(host, name);
    if (!instance) {
      throw new HostError('HOST_ERR_MODULE_DEPENDENCY', `module ${by} depends on ${name}, which is not loaded on ${host}; add it to ${by}'s manifest "depends".`);
    }
    if (!instance.service) throw new HostError('HOST_ERR_MODULE_DEPENDENCY', `module ${by} depends on ${name}, which offers no service (setService) on ${host}.`);
    return instance.service.value;
  }

  /** `item-added/<kind>` and `item-removed/<kind>` for whoever hooks them; a failing handler is logged, not the provider's problem. */
  private announce(host: string, event: string, payload: { item: unknown; info: ItemInfo }): void {
    const bus = host === GLOBAL_HOST ? this.services.globalBus : (this.services.bus(host) as EventBus<unknown>);
    if (!bus.has(event)) return;
    bus.fire(event, payload).catch((err: unknown) => this.services.log.error({ err, host, event }, 'an item handler failed'));
  }

  private createApi(host: string, manifest: Manifest, instance: LoadedModule): ModuleApi {
    const { services } = this;
    const name = manifest.id;
    const options = resolveOptions(services.config, host, manifest);
    const track = (cleanup: () => void | Promise<void>): void => {
      instance.cleanups.push(cleanup);
    };
    const isLocalHost = (domain: string): boolean => Object.hasOwn(services.config.virtual_hosts, domain);
    // A global module's hooks go on the global bus (Prosody's prosody.events).
    const bus = (): EventBus<StanzaEvent> => (host === GLOBAL_HOST ? (services.globalBus as EventBus<StanzaEvent>) : services.bus(host));

    const api: ModuleApi = {
      name,
      host,
      log: services.log.child({ host, module: name }),
      options,
      option<T extends OptionValue = OptionValue>(key: string): T {
        if (!(key in options)) {
          throw new HostError('HOST_ERR_OPTION_UNKNOWN', `module ${name} reads option ${JSON.stringify(key)}, which its manifest does not declare.`);
        }
        return options[key] as T;
      },
      setting: (key: string): unknown => (services.config as unknown as Record<string, unknown>)[key],
      provides: <K extends keyof Provides>(kind: K, item: Provides[K]): void => {
        const info: ItemInfo = { host, module: name };
        const remove = this.items.add(kind, item, info);
        track(() => {
          remove();
          this.announce(host, `item-removed/${kind}`, { item, info });
        });
        this.announce(host, `item-added/${kind}`, { item, info });
      },
      handleItems: <K extends keyof Provides>(
        kind: K,
        onAdded: (item: Provides[K], info: ItemInfo) => void,
        onRemoved?: (item: Provides[K], info: ItemInfo) => void,
      ): void => {
        type Callback = (item: unknown, info: ItemInfo) => void;
        track(this.items.handle(kind, host, onAdded as Callback, onRemoved as Callback | undefined));
      },
      setService: (service: unknown): void => {
        if (instance.service) throw new HostError('HOST_ERR_MODULE_LOAD', `module ${name} sets its service twice on ${host}.`);
        instance.service = { value: service };
      },
      depends: <K extends keyof Services>(dep: K): Services[K] => this.serviceOf(host, name, dep) as Services[K],
      serviceAt: <K extends keyof Services>(domain: string, dep: K): Services[K] | undefined => this.loaded.get(domain)?.get(dep)?.service?.value as Services[K] | undefined,
      users: services.users,
      sessions: services.sessions,
      isLocalHost,
      isComponent: (domain: string): boolean => Object.hasOwn(services.config.components, domain),
      send: async (stanza: Stanza): Promise<Outcome> => {
        const from = stanza.attrs.from ? parseJid(stanza.attrs.from) : undefined;
        const isAccount = from?.ok === true && from.jid.local !== null && isLocalHost(from.jid.domain);
        const origin: Origin = isAccount
          ? { type: 'local', host: from.jid.domain, jid: from.jid.full }
          : { type: 'host', host };
        const result = await services.route(stanza, origin);
        if (result === 'delivered' || result === 'stored' || result === 'discarded' || result === 'sent') return result;
        return result === undefined ? 'discarded' : 'delivered';
      },
      route: (stanza, origin) => services.route(stanza, origin),
      hook: (event: string, handler: EventHandler, priority = 0): void => {
        track(bus().add(event, handler as (e: StanzaEvent) => unknown, priority, name));
      },
      handleIq: (type, xmlns, payload, handler, opts = {}): void => {
        const callee = iqCallee(handler, api.log);
        for (const to of opts.to ?? ['host']) api.hook(`iq-${type}/${to}/${xmlns}:${payload}`, callee, opts.priority);
      },
      filter: (kind, fn, priority = 0): void => {
        track(this.filterChain(host, kind).add(fn, priority, name));
      },
      sessionFilters: (kind) => this.filterChain(host, kind),
      hookGlobal: <K extends keyof HostEvents>(event: K, handler: (payload: HostEvents[K]) => unknown, priority = 0): void => {
        track(services.globalBus.add(event, handler as (p: unknown) => unknown, priority, name));
      },
      fireGlobal: async <K extends keyof HostEvents>(event: K, payload: HostEvents[K]): Promise<unknown> => {
        return services.globalBus.fire(event, payload);
      },
      openStore: <T>(store: string) => services.openStore<T>(host, store),
      openMap: <T>(store: string) => services.openMap<T>(host, store),
      openArchive: (store: string) => services.openArchive(host, store),
      discoFeatures: (kind) => this.discoFeatures(host, kind),
      onUnload: (fn) => track(fn),
    };
    return Object.freeze(api);
  }
}
