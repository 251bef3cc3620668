// The server: config → storage → users → modules (global, then every host) → the listeners they provide as
// `net` items (core/ports.ts), and a clean stop (Prosody's core/startup.lua and its shutdown path).

import type { DestinationStream, Logger } from 'pino';
import { MemoryAuthThrottle } from '../util/throttle.js';
import { coreModules, optionalModules, storageModules, TokenStore, TOKENS_STORE, TOKEN_INDEX_STORE } from '../modules/index.js';
import { pluginPathsOf, readRawConfig, validateConfig, type HostConfig, type RawConfig } from './config.js';
import { EventBus } from './events.js';
import { PortManager } from './ports.js';
import { createLogger } from './log.js';
import { discoverModules, ModuleManager, type Catalog } from './module-manager.js';

/** The bundled modules (core, optional and storage backends) plus every plugin.json in the plugin paths. */
export function moduleCatalog(pluginPaths: readonly string[] = []): Catalog {
  return discoverModules(coreModules, pluginPaths, [...optionalModules, ...storageModules]);
}
import { StanzaRouter } from './stanza-router.js';
import { MemorySessionRegistry } from './sessions.js';
import { loadStorage, openStorage } from './storage/manager.js';
import { loadOrCreateTls } from '../net/tls.js';
import { CredentialCache, deriveScramOnEventLoop, UserService } from './users.js';
import { readOrCreateSecret } from './secret-file.js';
import type { NetItem, StanzaEvent, Storage, TokenService, UserStore, UsersApi } from '../api.js';

export const DEFAULT_CONFIG_PATH = './xmppd.yaml';

export interface ConfigSource {
  /** A YAML file; the default path may be absent (then the embedded default runs). */
  configPath?: string;
  /** An already parsed config object (tests), instead of a file. */
  config?: Record<string, unknown>;
  /** Folder that relative paths in `config` are resolved against (tests); default the working directory. */
  baseDir?: string;
}

/** Read the config, discover the modules (core, this package's, those in plugin_paths), then validate once. */
export function readConfig(source: ConfigSource): { config: HostConfig; catalog: Catalog } {
  const raw: RawConfig = source.config
    ? { raw: source.config, source: '(config object)', baseDir: source.baseDir ?? process.cwd() }
    : readRawConfig(source.configPath ?? DEFAULT_CONFIG_PATH, { isDefaultPath: source.configPath === undefined });
  const catalog = moduleCatalog(pluginPathsOf(raw));
  return { config: validateConfig(raw.raw, catalog, raw), catalog };
}

/** Storage and the user service without listeners: what the admin CLI needs (only the storage module loads). */
export async function openUsers(
  config: HostConfig,
  options: Pick<StartOptions, 'credentialCache' | 'pbkdf2OnEventLoop'> = {},
): Promise<{ storage: Storage; users: UserService; throttle: MemoryAuthThrottle }> {
  const storage = await loadStorage(config, moduleCatalog(config.plugin_paths));
  return { storage, ...userService(config, storage, undefined, options) };
}

/** The app tokens on storage opened by openUsers(), for `xmppd token`: the tokenauth module's store without the module. */
export function openTokens(config: HostConfig, storage: Storage): TokenService {
  return new TokenStore({
    tokens: (host) => storage.map(host, TOKENS_STORE),
    index: (host) => storage.map(host, TOKEN_INDEX_STORE),
    accountExists: async (bare) => (await storage.users.get(bare)) !== undefined,
    hosts: () => Object.keys(config.virtual_hosts),
  });
}

type UserChange = (jid: string, change: 'created' | 'password' | 'deleted') => void;

function userService(
  config: HostConfig,
  storage: Storage,
  onChange: UserChange | undefined,
  options: Pick<StartOptions, 'credentialCache' | 'pbkdf2OnEventLoop'>,
): { users: UserService; throttle: MemoryAuthThrottle } {
  const throttle = new MemoryAuthThrottle(config.auth_failures_per_minute);
  const users = new UserService({
    store: storage.users,
    throttle,
    iterations: config.pbkdf2_iterations,
    // Kept in data_dir: per process, the decoys of unknown names would change at a restart while real accounts' do not.
    decoySecret: readOrCreateSecret(config.data_dir, 'decoy.key'),
    isLocalHost: (domain) => Object.hasOwn(config.virtual_hosts, domain),
    cache: options.credentialCache === false ? undefined : new CredentialCache(),
    ...(options.pbkdf2OnEventLoop ? { derive: deriveScramOnEventLoop } : {}),
    onChange,
  });
  return { users, throttle };
}

export interface StartOptions extends ConfigSource {
  /** Where log lines go; default stdout. */
  logDestination?: DestinationStream;
  logger?: Logger;
  // The switches below exist so the bench can measure what each mechanism is worth; a deployment keeps the defaults.
  /** Keep verified passwords in memory (default true); false: every check pays its PBKDF2. */
  credentialCache?: boolean;
  /** Run PBKDF2 on the event loop instead of libuv's pool (default false). */
  pbkdf2OnEventLoop?: boolean;
}

export class Server {
  private stopping: Promise<void> | undefined;

  constructor(
    readonly config: HostConfig,
    readonly log: Logger,
    readonly storage: Storage,
    readonly users: UserService,
    readonly modules: ModuleManager,
    readonly sessions: MemorySessionRegistry,
    readonly globalBus: EventBus<unknown>,
    private readonly buses: Map<string, EventBus<StanzaEvent>>,
    readonly ports: PortManager,
    private readonly stopWatchingAccounts: () => void = () => undefined,
  ) {}

  /** Bound ports, in config order (tests listen on port 0 and ask here). */
  httpPorts(): number[] {
    return this.ports.ports('http');
  }

  httpsPorts(): number[] {
    return this.ports.ports('https');
  }

  c2sPorts(): number[] {
    return this.ports.ports('c2s');
  }

  c2sTlsPorts(): number[] {
    return this.ports.ports('c2s_direct_tls');
  }

  /** Open client connections, authenticated or not (the session registry holds only bound ones). */
  c2sSessionCount(): number {
    return this.ports.connectionCount('c2s') + this.ports.connectionCount('c2s_direct_tls');
  }

  bus(host: string): EventBus<StanzaEvent> | undefined {
    return this.buses.get(host);
  }

  /** Close listeners, end every client stream, unload modules, close the database. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('stopping');
    await this.globalBus.fire('server-stopping', {});
    this.stopWatchingAccounts();
    // Together: a listener's close waits for its connections, which the modules' unload ends (c2s streams).
    await Promise.all([this.ports.closeAll(), this.modules.unloadAll()]);
    this.storage.close();
    this.log.info('stopped');
  }
}

export async function startServer(opts: StartOptions = {}): Promise<Server> {
  const { config, catalog } = readConfig(opts);
  const log = opts.logger ?? createLogger(config.log_level, opts.logDestination);
  log.info({ config: config.source, hosts: Object.keys(config.virtual_hosts) }, 'starting');

  const globalBus = new EventBus<unknown>();
  const onUserChange: UserChange = (jid, change) => {
    globalBus.fire('user-changed', { jid, change }).catch((err: unknown) => log.error({ err, jid }, 'a user-changed handler failed'));
    if (change === 'deleted') {
      const host = jid.slice(jid.indexOf('@') + 1);
      globalBus.fire('user-deleted', { jid, host }).catch((err: unknown) => log.error({ err, jid }, 'a user-deleted handler failed'));
    }
  };
  const sessions = new MemorySessionRegistry();
  // Each virtual host and each component has its own bus; the router finds a stanza's domain here.
  const buses = new Map([...Object.keys(config.virtual_hosts), ...Object.keys(config.components)].map((h) => [h, new EventBus<StanzaEvent>()]));
  const router = new StanzaRouter({ bus: (d) => buses.get(d), globalBus, log });
  const usersApi: UsersApi = {
    exists: (jid) => users.exists(jid),
    verifyPassword: (jid, pw) => users.verifyPassword(jid, pw),
    authenticate: (input) => users.authenticate(input),
    scramCredentials: (jid, hash) => users.scramCredentials(jid, hash),
    scramDecoy: (jid, hash) => users.scramDecoy(jid, hash),
    beginAuthAttempt: (address) => throttle.begin(address),
    authRetryAfter: (address) => throttle.retryAfter(address),
  };

  const modules = new ModuleManager(catalog, {
    config,
    log,
    users: usersApi,
    sessions,
    globalBus,
    bus: (host) => buses.get(host)!,
    route: (stanza, origin) => router.route(stanza, origin),
    openStore: (host, name) => storage.keyValue(host, name),
    openArchive: (host, name) => storage.archive(host, name),
    openMap: (host, name) => storage.map(host, name),
  });
  // The storage backend first (the module the `storage` key names, on `*`): accounts and every module's stores.
  let storage: Storage;
  try {
    storage = await openStorage(modules, config);
  } catch (err) {
    await modules.unloadAll();
    throw err;
  }
  const { users, throttle } = userService(config, storage, onUserChange, opts);
  // The listeners: each `net` item a module provides is opened on its ports, and closed when the module unloads.
  const ports = new PortManager({
    setting: (key) => (config as unknown as Record<string, unknown>)[key],
    loadTls: () => loadOrCreateTls({ tls: config.tls, dataDir: config.data_dir, log }),
    log,
  });
  modules.items.handle('net', '*', (item) => ports.add(item as NetItem), (item) => void ports.remove(item as NetItem));

  try {
    await modules.loadAll();
    await ports.ready();
  } catch (err) {
    await Promise.all([ports.closeAll(), modules.unloadAll()]);
    storage.close();
    throw err;
  }

  const stopWatching = watchAccounts(storage.users, globalBus, log);
  const server = new Server(config, log, storage, users, modules, sessions, globalBus, buses, ports, stopWatching);
  await globalBus.fire('server-started', {});
  return server;
}

/** How often the server asks the user store whether another process (`xmppd passwd`, `deluser`) changed accounts. */
const ACCOUNT_POLL_MS = 1_000;

/**
 * Another process (`xmppd passwd`, `deluser`) changed accounts: 'users-changed-elsewhere' within ACCOUNT_POLL_MS,
 * so c2s can close the streams of a deleted account or a changed password. Returns the stop.
 */
function watchAccounts(users: UserStore, bus: EventBus<unknown>, log: Logger): () => void {
  let seen = users.outsideChangeCount();
  const timer = setInterval(() => {
    const count = users.outsideChangeCount();
    if (count === seen) return;
    seen = count;
    bus.fire('users-changed-elsewhere', {}).catch((err: unknown) => log.error({ err }, 'a users-changed-elsewhere handler failed'));
  }, ACCOUNT_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
