// A mock ModuleApi for module specs (like @xmpp/test's mockClient): options, users, send() and hooks in memory,
// provided items in a real item registry, an http item's router mounted on a small Koa app as the http module mounts it,
// iq handlers, filters and routing as the host runs them (core/), archives on SQLite in a temporary folder.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import type Router from 'koa-router';
import pino from 'pino';
import { EventBus } from './core/events.js';
import { ItemRegistry } from './core/items.js';
import { iqCallee } from './core/iq-callee.js';
import { MemorySessionRegistry } from './core/sessions.js';
import { StanzaRouter } from './core/stanza-router.js';
import { readConfig } from './core/server.js';
import { loadStorage } from './core/storage/manager.js';
import { FilterChain } from './util/filters.js';
import { HostError, StanzaError } from './util/errors.js';
import { parseJid } from './util/jid.js';
import { withPolicy } from './util/http-policy.js';
import type {
  ArchiveStore,
  AuthResult,
  ClientSession,
  EventHandler,
  FilterKind,
  HttpApp,
  HttpLogState,
  KeyValueStore,
  Manifest,
  MapStore,
  ModuleApi,
  OptionValue,
  Origin,
  Outcome,
  Stanza,
  StanzaEvent,
  Storage,
} from './api.js';

export interface MockModuleOptions {
  /** The module's id; default the manifest's, else `mock`. */
  name?: string;
  /** The module's manifest: its option defaults fill `options` where `options` does not set them. */
  manifest?: Manifest;
  host?: string;
  localHosts?: string[];
  components?: string[];
  /** [bare jid, password]. */
  users?: Array<[string, string]>;
  options?: Record<string, OptionValue>;
  /** Host settings `setting(key)` answers. */
  settings?: Record<string, unknown>;
  /** The base path the host would resolve for an http item (http_paths); default the item's defaultPath. */
  basePath?: string;
  /** What send() does: an outcome, or an error to reject with. */
  sendResult?: Outcome | StanzaError | Error;
  /** Services `depends(name)` returns, by module name. */
  services?: Record<string, unknown>;
  /** Services `serviceAt(domain, name)` returns, by domain then module name. */
  servicesAt?: Record<string, Record<string, unknown>>;
  /** Items other modules provided before this one loaded: handleItems() sees them. */
  items?: Registry;
  /** Where api.log writes; default a list of records in `logs`. */
  logLevel?: pino.Level;
}

type Registry = ItemRegistry;

export interface MockModule<O extends object = Record<string, OptionValue>> {
  api: ModuleApi<O>;
  /** Stanzas passed to send(), in order. */
  sent: Stanza[];
  authCalls: Array<{ jid: string; password: string; address: string }>;
  /** Every log record written through api.log (pino objects). */
  logs: Array<Record<string, unknown>>;
  /** ctx.state of every HTTP request, as the host's request logger would read it. */
  states: HttpLogState[];
  /** The module's hooks: fire events on it as the router would. */
  bus: EventBus<StanzaEvent>;
  /** Host-wide events (hookGlobal, fireGlobal). */
  globalBus: EventBus<unknown>;
  /** The host's session registry, empty: add fake sessions to it where a module looks sessions up. */
  sessions: MemorySessionRegistry;
  /** Stanzas passed to route(), with their origin, in order. */
  routed: Array<{ stanza: Stanza; origin: Origin }>;
  /**
   * Route a stanza from an account's client as the host does (pre-events, iq-<type>/<to_type>/<xmlns>:<name>, an
   * unclaimed iq answered service-unavailable), without a session: resolves to the first stanza sent back to that
   * client (an iq's result or error), or undefined when none was.
   */
  request(stanza: Stanza, from: string): Promise<Stanza | undefined>;
  /** Items provided (by this module and, through `items`, others). */
  items: Registry;
  /** The service set with setService(), if any. */
  service(): unknown;
  /** The router of the http item this module provided. */
  router(): Router;
  basePath(): string;
  /** A Koa app with the http item's router mounted; use app.callback() or listen(0). */
  app(): Koa;
  /** Run the onUnload handlers (last first) and remove every hook and item, as the host's unload does. */
  unload(): Promise<void>;
  setSendResult(result: Outcome | StanzaError | Error): void;
  throttle(seconds: number): void;
}

/** `O` types the options as the module's load() expects them (`mockModule<PostMsgOptions>(…)`). */
export function mockModule<O extends object = Record<string, OptionValue>>(opts: MockModuleOptions = {}): MockModule<O> {
  const name = opts.name ?? opts.manifest?.id ?? 'mock';
  const host = opts.host ?? 'localhost';
  const localHosts = new Set(opts.localHosts ?? [host]);
  const components = new Set(opts.components ?? []);
  const users = new Map(opts.users ?? [['bob@localhost', 'secret'], ['alice@localhost', 'pw']]);
  const defaults = Object.fromEntries(Object.entries(opts.manifest?.options ?? {}).map(([key, spec]) => [key, spec.default]));
  const options = Object.freeze({ ...defaults, ...opts.options }) as Readonly<Record<string, OptionValue>>;
  const items = opts.items ?? new ItemRegistry();
  const bus = new EventBus<StanzaEvent>();
  const globalBus = new EventBus<unknown>();
  const sessions = new MemorySessionRegistry();
  const routed: Array<{ stanza: Stanza; origin: Origin }> = [];
  const filters: Record<FilterKind, FilterChain<Stanza, ClientSession>> = { 'stanzas/in': new FilterChain(), 'stanzas/out': new FilterChain() };
  const sent: Stanza[] = [];
  const authCalls: MockModule['authCalls'] = [];
  const logs: Array<Record<string, unknown>> = [];
  const states: HttpLogState[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];
  const stores = new Map<string, Map<string, unknown>>();
  const maps = new Map<string, Map<string, Map<string, unknown>>>();
  let sendResult: Outcome | StanzaError | Error = opts.sendResult ?? 'delivered';
  let throttleSeconds = 0;
  let service: { value: unknown } | undefined;
  let mounted: { router: Router; basePath: string; app: HttpApp } | undefined;
  const log = pino({ level: opts.logLevel ?? 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  // The local hosts share the module's bus; other domains go to route/remote on the global bus.
  const router = new StanzaRouter({ bus: (domain) => (localHosts.has(domain) ? bus : undefined), globalBus, log });
  const hook = (event: string, handler: EventHandler, priority = 0): void => {
    cleanups.push(bus.add(event, handler as (e: StanzaEvent) => unknown, priority, name));
  };

  // Archives on the real SQLite store (ids, before/after, limits as modules rely on them), in a temporary folder
  // opened on first use and removed by unload().
  let archiveStorage: Promise<{ storage: Storage; dir: string }> | undefined;
  const openArchiveStorage = (): Promise<{ storage: Storage; dir: string }> =>
    (archiveStorage ??= (async () => {
      const dir = mkdtempSync(join(tmpdir(), 'xmppd-mock-'));
      const { config, catalog } = readConfig({ config: { data_dir: dir, modules_enabled: [], virtual_hosts: { localhost: {} } } });
      return { storage: await loadStorage(config, catalog), dir };
    })());

  const notUsed = (what: string) => (): never => {
    throw new Error(`${name} used ${what}, which this mock module does not offer`);
  };

  const implemented: Partial<ModuleApi<Record<string, OptionValue>>> = {
    name,
    host,
    log,
    options,
    option(key: string): OptionValue {
      if (!(key in options)) throw new HostError('HOST_ERR_OPTION_UNKNOWN', `module ${name} reads option ${JSON.stringify(key)}, which its manifest does not declare.`);
      return options[key]!;
    },
    setting: (key) => opts.settings?.[key],
    provides(kind, item) {
      if (kind === 'http') {
        // As the host mounts it: the router under its base path.
        const app = item as HttpApp;
        const basePath = opts.basePath ?? app.defaultPath;
        if (basePath !== '/') app.router.prefix(basePath);
        mounted = { router: app.router, basePath, app };
      }
      cleanups.push(items.add(kind, item, { host, module: name }));
    },
    handleItems(kind, onAdded, onRemoved) {
      type Callback = (item: unknown, info: { host: string; module: string }) => void;
      cleanups.push(items.handle(kind, host, onAdded as Callback, onRemoved as Callback | undefined));
    },
    setService(value) {
      service = { value };
    },
    depends(dep) {
      if (!opts.services || !(dep in opts.services)) throw new HostError('HOST_ERR_MODULE_DEPENDENCY', `module ${name} depends on ${dep}, which the mock was not given.`);
      return opts.services[dep] as never;
    },
    serviceAt(domain, dep) {
      return (Object.hasOwn(opts.servicesAt ?? {}, domain) ? opts.servicesAt![domain]![dep] : undefined) as never;
    },
    users: {
      exists: async (jid) => users.has(jid),
      verifyPassword: async (jid, password) => users.get(jid) === password,
      authenticate: async (input): Promise<AuthResult> => {
        authCalls.push(input);
        if (throttleSeconds > 0) return { ok: false, reason: 'throttled', retryAfterSeconds: throttleSeconds };
        const parsed = parseJid(input.jid);
        if (!parsed.ok) return { ok: false, reason: 'invalid' };
        return users.get(parsed.jid.bare) === input.password ? { ok: true, jid: parsed.jid.bare } : { ok: false, reason: 'invalid' };
      },
      scramCredentials: notUsed('users.scramCredentials'),
      scramDecoy: notUsed('users.scramDecoy'),
      beginAuthAttempt: notUsed('users.beginAuthAttempt'),
      authRetryAfter: notUsed('users.authRetryAfter'),
    },
    sessions,
    isLocalHost: (domain) => localHosts.has(domain),
    isComponent: (domain) => components.has(domain),
    async send(stanza) {
      sent.push(stanza);
      if (sendResult instanceof Error) throw sendResult;
      return sendResult;
    },
    hook,
    handleIq(type, xmlns, payload, handler, iqOptions = {}) {
      const callee = iqCallee(handler, log);
      for (const to of iqOptions.to ?? ['host']) hook(`iq-${type}/${to}/${xmlns}:${payload}`, callee, iqOptions.priority);
    },
    filter(kind, fn, priority = 0) {
      cleanups.push(filters[kind].add(fn, priority, name));
    },
    sessionFilters: (kind) => filters[kind],
    route(stanza, origin) {
      routed.push({ stanza, origin });
      return router.route(stanza, origin);
    },
    hookGlobal(event, handler, priority = 0) {
      cleanups.push(globalBus.add(event, handler as (p: unknown) => unknown, priority, name));
    },
    async fireGlobal(event, payload) {
      return globalBus.fire(event, payload);
    },
    openArchive(store: string): ArchiveStore {
      const archive = async (): Promise<ArchiveStore> => (await openArchiveStorage()).storage.archive(host, store);
      return {
        append: async (user, item) => (await archive()).append(user, item),
        find: async (user, query) => (await archive()).find(user, query),
        count: async (user, filter) => (await archive()).count(user, filter),
        delete: async (user, filter) => (await archive()).delete(user, filter),
      };
    },
    openStore<T>(store: string): KeyValueStore<T> {
      let docs = stores.get(store);
      if (!docs) stores.set(store, (docs = new Map()));
      const d = docs;
      return {
        get: async (user) => structuredClone(d.get(user)) as T | undefined,
        set: async (user, value) => void (value === undefined ? d.delete(user) : d.set(user, structuredClone(value))),
      };
    },
    openMap<T>(store: string): MapStore<T> {
      let accounts = maps.get(store);
      if (!accounts) maps.set(store, (accounts = new Map()));
      const all = accounts;
      const entries = (user: string): Map<string, unknown> => {
        let m = all.get(user);
        if (!m) all.set(user, (m = new Map()));
        return m;
      };
      const write = (user: string, key: string, value: unknown): void => {
        if (value === undefined) entries(user).delete(key);
        else entries(user).set(key, structuredClone(value));
      };
      return {
        get: async (user, key) => structuredClone(all.get(user)?.get(key)) as T | undefined,
        getAll: async (user) => new Map([...(all.get(user) ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, structuredClone(v) as T])),
        set: async (user, key, value) => write(user, key, value),
        setKeys: async (user, values) => {
          for (const [key, value] of values) write(user, key, value);
        },
        clear: async (user) => void all.delete(user),
      };
    },
    discoFeatures: (kind) => {
      const list = items.list(kind === 'server' ? 'disco_feature' : 'account_disco_feature', host);
      return [...new Set(list.map((e) => e.item as string))].sort();
    },
    onUnload: (fn) => void cleanups.push(fn),
  };
  // What the mock does not implement throws when called, naming it, rather than passing silently.
  const api = new Proxy(Object.freeze(implemented), {
    get: (target, key) => (key in target ? target[key as keyof ModuleApi] : typeof key === 'string' ? notUsed(key) : undefined),
  }) as unknown as ModuleApi<O>;

  return {
    api,
    sent,
    authCalls,
    logs,
    states,
    bus,
    globalBus,
    sessions,
    routed,
    items,
    service: () => service?.value,
    request(stanza, from) {
      const parsed = parseJid(from);
      return new Promise((resolve, reject) => {
        const origin: Origin = { type: 'c2s', host: parsed.ok ? parsed.jid.domain : host, jid: from, send: (answer) => resolve(answer) };
        // An iq handler answers before its claim returns: by then a reply has resolved this already.
        router.route(stanza, origin).then(() => resolve(undefined), reject);
      });
    },
    router: () => mustBeMounted(mounted, name).router,
    basePath: () => mustBeMounted(mounted, name).basePath,
    async unload() {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      if (archiveStorage) {
        const { storage, dir } = await archiveStorage;
        archiveStorage = undefined;
        storage.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    setSendResult: (r) => {
      sendResult = r;
    },
    throttle: (s) => {
      throttleSeconds = s;
    },
    app() {
      const { router, app: item, basePath } = mustBeMounted(mounted, name);
      const app = new Koa();
      app.silent = true;
      app.use(async (ctx, next) => {
        try {
          await next();
        } finally {
          states.push({ ...(ctx.state as HttpLogState) });
        }
      });
      // Behind the app's policy (OPTIONS, 405, CORS, cross-site guard), as the http module mounts it.
      app.use(withPolicy(item, router.routes() as unknown as Koa.Middleware, basePath));
      return app;
    },
  };
}

function mustBeMounted<T>(mounted: T | undefined, name: string): T {
  if (!mounted) throw new Error(`${name} provided no http item`);
  return mounted;
}
