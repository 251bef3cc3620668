// A fake ModuleApi for post_msg's adapter specs: users, routing and options in memory, the router
// mounted on a tiny Koa app the way the host mounts it (router.prefix(basePath)). Not for end-to-end specs.

import Koa from 'koa';
import type Router from 'koa-router';
import pino from 'pino';
import { parseJid, StanzaError, type AuthResult, type HttpLogState, type ModuleApi, type OptionValue, type Outcome, type Stanza } from '../../../lib/host/api.js';

export interface FakeModuleOptions {
  host?: string;
  localHosts?: string[];
  /** [bare jid, password]. */
  users?: Array<[string, string]>;
  options?: Record<string, OptionValue>;
  /** The base path the host resolved (http_paths); default: the app's defaultPath. */
  basePath?: string;
  /** What send() does: an outcome, or a StanzaError to reject with. */
  sendResult?: Outcome | StanzaError | Error;
}

export interface FakeModule {
  api: ModuleApi;
  sent: Stanza[];
  authCalls: Array<{ jid: string; password: string; address: string }>;
  /** Every log record written through api.log (pino objects). */
  logs: Array<Record<string, unknown>>;
  /** ctx.state of every request, as the host's request logger would read it. */
  states: HttpLogState[];
  router(): Router;
  basePath(): string;
  /** A Koa app with the router mounted (and the host's 404 fallback); use app.callback() or listen(0). */
  app(): Koa;
  setSendResult(result: Outcome | StanzaError | Error): void;
  throttle(seconds: number): void;
}

export const DEFAULT_OPTIONS: Record<string, OptionValue> = {
  max_body_bytes: 262144,
  cors_origins: [],
  rate_per_second: 10,
  rate_burst: 50,
};

export function fakeModule(opts: FakeModuleOptions = {}): FakeModule {
  const host = opts.host ?? 'localhost';
  const localHosts = new Set(opts.localHosts ?? [host]);
  const users = new Map(opts.users ?? [['bob@localhost', 'secret'], ['alice@localhost', 'pw']]);
  const options = { ...DEFAULT_OPTIONS, ...opts.options };
  const sent: Stanza[] = [];
  const authCalls: FakeModule['authCalls'] = [];
  const logs: Array<Record<string, unknown>> = [];
  const states: HttpLogState[] = [];
  let sendResult: Outcome | StanzaError | Error = opts.sendResult ?? 'delivered';
  let throttleSeconds = 0;
  let mounted: { router: Router; basePath: string } | undefined;
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });

  const notUsed = (what: string) => (): never => {
    throw new Error(`post_msg must not use ${what}`);
  };

  const api: ModuleApi = {
    name: 'post_msg',
    host,
    log,
    options,
    option<T extends OptionValue = OptionValue>(key: string): T {
      if (!(key in options)) throw new Error(`undeclared option ${key}`);
      return options[key] as T;
    },
    setting: notUsed('setting'),
    provides(kind, item) {
      if (kind !== 'http') throw new Error(`unexpected provides(${kind})`);
      const app = item as { defaultPath: string; router: Router };
      const basePath = opts.basePath ?? app.defaultPath;
      if (basePath !== '/') app.router.prefix(basePath);
      mounted = { router: app.router, basePath };
      return basePath;
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
    sessions: { add: notUsed('sessions'), remove: notUsed('sessions'), byFull: notUsed('sessions'), byBare: notUsed('sessions'), all: notUsed('sessions') },
    isLocalHost: (domain) => localHosts.has(domain),
    async send(stanza) {
      sent.push(stanza);
      if (sendResult instanceof Error) throw sendResult;
      return sendResult;
    },
    route: notUsed('route'),
    hook: notUsed('hook'),
    hookGlobal: notUsed('hookGlobal'),
    fireGlobal: notUsed('fireGlobal'),
    openStore: notUsed('openStore'),
    openListStore: notUsed('openListStore'),
    discoFeatures: notUsed('discoFeatures'),
    onUnload: () => undefined,
  };

  return {
    api,
    sent,
    authCalls,
    logs,
    states,
    router: () => mounted!.router,
    basePath: () => mounted!.basePath,
    setSendResult: (r) => {
      sendResult = r;
    },
    throttle: (s) => {
      throttleSeconds = s;
    },
    app() {
      const app = new Koa();
      app.silent = true;
      app.use(async (ctx, next) => {
        try {
          await next();
        } finally {
          states.push({ ...(ctx.state as HttpLogState) });
        }
      });
      app.use(mounted!.router.routes() as unknown as Koa.Middleware);
      return app;
    },
  };
}
