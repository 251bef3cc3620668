// The server: config → storage → users → modules on every virtual host → HTTP and c2s listeners,
// and a clean stop (Prosody's core/startup.lua and its shutdown path).

import type { DestinationStream, Logger } from 'pino';
import { MemoryAuthThrottle } from '../util/throttle.js';
import { coreModules, createHttpApp, HttpApps, startC2s, type C2sServer } from '../modules/index.js';
import { pluginPathsOf, readRawConfig, validateConfig, type HostConfig, type RawConfig } from './config.js';
import { EventBus } from './events.js';
import { closeListeners, listenHttp, type Listener } from '../net/http-server.js';
import { createLogger } from './log.js';
import { discoverModules, ModuleManager, resolveHttpPath, type Catalog } from './module-manager.js';

/** The bundled modules plus every plugin.json in the plugin paths. */
export function moduleCatalog(pluginPaths: readonly string[] = []): Catalog {
  return discoverModules(coreModules, pluginPaths);
}
import { StanzaRouter } from './stanza-router.js';
import { MemorySessionRegistry } from './sessions.js';
import { openSqliteStorage } from './storage/sqlite.js';
import type { Storage, UserStore } from './storage/types.js';
import { loadOrCreateTls } from '../net/tls.js';
import { CredentialCache, deriveScramOnEventLoop, UserService } from './users.js';
import { turnEnd } from '../net/end-of-turn.js';
import type { HttpApp, ModuleApi, StanzaEvent, UsersApi } from '../api.js';

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

/** Storage and the user service without listeners: what the admin CLI needs. */
export function openUsers(
  config: HostConfig,
  onChange?: (jid: string, change: 'created' | 'password' | 'deleted') => void,
  options: Pick<StartOptions, 'credentialCache' | 'pbkdf2OnEventLoop'> = {},
): { storage: Storage; users: UserService; throttle: MemoryAuthThrottle } {
  const storage = openSqliteStorage(config.data_dir);
  const throttle = new MemoryAuthThrottle(config.auth_failures_per_minute);
  const users = new UserService({
    store: storage.users,
    throttle,
    iterations: config.pbkdf2_iterations,
    isLocalHost: (domain) => domain in config.virtual_hosts,
    cache: options.credentialCache === false ? undefined : new CredentialCache(),
    ...(options.pbkdf2OnEventLoop ? { derive: deriveScramOnEventLoop } : {}),
    onChange,
  });
  return { storage, users, throttle };
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
  /** Hold a turn's writes to its end (default true); false switches it off for the whole process. */
  writesAtTurnEnd?: boolean;
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
    private readonly listeners: Listener[],
    private readonly c2s: C2sServer | undefined,
    private readonly stopWatchingAccounts: () => void = () => undefined,
  ) {}

  /** Bound ports, in config order (tests listen on port 0 and ask here). */
  httpPorts(): number[] {
    return this.listeners.filter((l) => l.kind === 'http').map((l) => l.port);
  }

  httpsPorts(): number[] {
    return this.listeners.filter((l) => l.kind === 'https').map((l) => l.port);
  }

  c2sPorts(): number[] {
    return this.c2s?.ports ?? [];
  }

  c2sTlsPorts(): number[] {
    return this.c2s?.tlsPorts ?? [];
  }

  /** Open client streams, authenticated or not (the session registry holds only bound ones). */
  c2sSessionCount(): number {
    return this.c2s?.sessionCount() ?? 0;
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
    await Promise.all([closeListeners(this.listeners), this.c2s?.close()]);
    await this.modules.unloadAll();
    this.storage.close();
    this.log.info('stopped');
  }
}

export async function startServer(opts: StartOptions = {}): Promise<Server> {
  const { config, catalog } = readConfig(opts);
  if (opts.writesAtTurnEnd === false) turnEnd.isOn = false;
  const log = opts.logger ?? createLogger(config.log_level, opts.logDestination);
  log.info({ config: config.source, hosts: Object.keys(config.virtual_hosts) }, 'starting');

  const globalBus = new EventBus<unknown>();
  const { storage, users, throttle } = openUsers(config, (jid, change) => {
    globalBus.fire('user-changed', { jid, change }).catch((err: unknown) => log.error({ err, jid }, 'a user-changed handler failed'));
    if (change === 'deleted') {
      const host = jid.slice(jid.indexOf('@') + 1);
      globalBus.fire('user-deleted', { jid, host }).catch((err: unknown) => log.error({ err, jid }, 'a user-deleted handler failed'));
    }
  }, opts);
  const sessions = new MemorySessionRegistry();
  // Each virtual host and each component has its own bus; the router finds a stanza's domain here.
  const buses = new Map([...Object.keys(config.virtual_hosts), ...Object.keys(config.components)].map((h) => [h, new EventBus<StanzaEvent>()]));
  const router = new StanzaRouter({ bus: (d) => buses.get(d), globalBus, log });
  const httpApps = new HttpApps(() => config.http_default_host);
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
  });
  // Until the http module consumes them itself: each `http` item is mounted under its base path (http_paths), and
  // unmounted when its module unloads. A `*` item (a global module's) is mounted on every virtual host.
  const unmounts = new Map<object, Array<() => void>>();
  modules.items.handle(
    'http',
    '*',
    (item, info) => {
      const app = item as HttpApp;
      const hosts = info.host === '*' ? Object.keys(config.virtual_hosts) : [info.host];
      unmounts.set(app, hosts.map((h) => httpApps.mount(h, info.module, resolveHttpPath(config, h, info.module, app.defaultPath), app.router)));
    },
    (item) => {
      for (const unmount of unmounts.get(item as object) ?? []) unmount();
      unmounts.delete(item as object);
    },
  );

  const listeners: Listener[] = [];
  let c2s: C2sServer | undefined;
  try {
    await modules.loadAll();
    const needsTls = config.https_ports.length > 0 || config.c2s_ports.length > 0 || config.c2s_direct_tls_ports.length > 0;
    const tls = needsTls ? await loadOrCreateTls({ tls: config.tls, dataDir: config.data_dir, log }) : undefined;
    listeners.push(
      ...(await listenHttp(createHttpApp(httpApps, log), {
        interfaces: config.http_interfaces,
        httpPorts: config.http_ports,
        httpsPorts: config.https_ports,
        tls,
      })),
    );
    if (config.c2s_ports.length > 0 || config.c2s_direct_tls_ports.length > 0) {
      c2s = await startC2s({
        settings: config,
        tls: tls!,
        log: log.child({ module: 'c2s' }),
        hostApi: (domain) => c2sApi(modules, domain),
      });
    }
  } catch (err) {
    await closeListeners(listeners);
    await modules.unloadAll();
    storage.close();
    throw err;
  }

  const stopWatching = c2s ? watchAccounts(c2s, storage.users, globalBus, log) : undefined;
  const server = new Server(config, log, storage, users, modules, sessions, globalBus, buses, listeners, c2s, stopWatching);
  for (const l of listeners) log.info({ url: `${l.kind}://${l.address}:${l.port}` }, 'listening');
  for (const port of server.c2sPorts()) log.info({ port }, 'c2s listening (STARTTLS)');
  for (const port of server.c2sTlsPorts()) log.info({ port }, 'c2s listening (direct TLS)');
  await globalBus.fire('server-started', {});
  return server;
}

/** c2s works through the same API as any module: the core `c2s` module instance of that host. */
function c2sApi(modules: ModuleManager, domain: string): ModuleApi | undefined {
  return modules.apiOf(domain, 'c2s');
}

/** How often the server asks the user store whether another process (`xmppd passwd`, `deluser`) changed accounts. */
const ACCOUNT_POLL_MS = 1_000;

/**
 * Client streams of a deleted account, or of one whose password changed, are closed: at once for a change made
 * through this server ('user-changed'), within ACCOUNT_POLL_MS for one made by another process. Returns the stop.
 */
function watchAccounts(c2s: C2sServer, users: UserStore, bus: EventBus<unknown>, log: Logger): () => void {
  const failed = (err: unknown): void => log.error({ err }, 'rechecking client streams against their accounts failed');
  const removeHandler = bus.add('user-changed', (payload) => {
    const { jid, change } = payload as { jid: string; change: string };
    if (change !== 'created') c2s.recheckAccounts(jid).catch(failed);
  });
  let seen = users.outsideChangeCount();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const count = users.outsideChangeCount();
    if (count === seen) return;
    seen = count;
    running = true;
    c2s
      .recheckAccounts()
      .catch(failed)
      .finally(() => (running = false));
  }, ACCOUNT_POLL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    removeHandler();
  };
}
