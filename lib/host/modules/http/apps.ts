// Modules' HTTP apps, after Prosody's mod_http: one koa app, apps mounted per virtual host under their
// base path, looked up in a Map so an app can be removed.

import Koa, { type Context, type Middleware, type Next } from 'koa';
import type Router from 'koa-router';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import { HostError } from '../../util/errors.js';
import { sendProblem } from '../../util/problem.js';
import { parseJid } from '../../util/jid.js';
import type { HttpLogState, HttpUpgrade } from '../../api.js';
import { withPolicy, type HttpAppPolicy } from '../../util/http-policy.js';
import { clientAddress } from './client-address.js';

interface MountedApp {
  module: string;
  basePath: string;
  middleware: Middleware;
  /** Takes HTTP Upgrade requests under the base path (a WebSocket endpoint). */
  upgrade?: (request: HttpUpgrade) => void;
}

/** host → module → app. */
export class HttpApps {
  private readonly apps = new Map<string, Map<string, MountedApp>>();

  /** Each served virtual host by its normalised name (hostName()), so any spelling of a Host header finds it. */
  private readonly served = new Map<string, string>();

  /** `servedHosts`: every virtual host of the server, also those without an app (they answer 404, never another's app). */
  constructor(private readonly defaultHost: () => string | undefined, servedHosts: Iterable<string> = []) {
    for (const host of servedHosts) this.serve(host);
  }

  private serve(host: string): void {
    const key = hostName(host);
    if (key !== undefined && !this.served.has(key)) this.served.set(key, host);
  }

  /** Mount an app's router under its base path, behind its policy (methods, CORS, cross-site guard). */
  mount(host: string, module: string, basePath: string, router: Router, policy: HttpAppPolicy & Pick<MountedApp, 'upgrade'> = {}): () => void {
    this.serve(host);
    let hostApps = this.apps.get(host);
    if (!hostApps) this.apps.set(host, (hostApps = new Map()));
    for (const other of hostApps.values()) {
      if (other.basePath === basePath) {
        throw new HostError('HOST_ERR_HTTP_PATH_TAKEN', `${host}: HTTP path ${basePath} of module ${module} is already used by ${other.module}; move one with http_paths.`);
      }
    }
    if (basePath !== '/') router.prefix(basePath);
    const upgrade = policy.upgrade?.bind(policy);
    const app: MountedApp = { module, basePath, middleware: withPolicy(policy, router.routes() as unknown as Middleware, basePath), upgrade };
    hostApps.set(module, app);
    return () => {
      if (hostApps.get(module) === app) hostApps.delete(module);
    };
  }

  count(): number {
    let n = 0;
    for (const hostApps of this.apps.values()) n += hostApps.size;
    return n;
  }

  /**
   * The app for a request (post_msg.md §1): a served virtual host named by Host (normalised as a JID domain) answers
   * with its own app or not at all; an unknown or missing Host goes to http_default_host, else to the only host that
   * has an app at this path.
   */
  find(hostHeader: string, path: string): { host: string; app: MountedApp } | undefined {
    const named = hostName(hostHeader);
    const served = named === undefined ? undefined : this.served.get(named);
    const host = served ?? this.defaultHost();
    if (host !== undefined) {
      const app = this.match(host, path);
      return app && { host, app };
    }
    const candidates = [...this.apps.keys()].flatMap((h) => {
      const app = this.match(h, path);
      return app ? [{ host: h, app }] : [];
    });
    return candidates.length === 1 ? candidates[0] : undefined;
  }

  private match(host: string, path: string): MountedApp | undefined {
    let best: MountedApp | undefined;
    for (const app of this.apps.get(host)?.values() ?? []) {
      const base = app.basePath;
      const isUnder = base === '/' || path === base || path.startsWith(`${base}/`);
      if (isUnder && (!best || base.length > best.basePath.length)) best = app;
    }
    return best;
  }
}

/**
 * The host a Host header names, normalised as a JID domain (RFC 7622 §3.2: IDNA U-label for an A-label, any case,
 * one trailing dot dropped; IPv6 literals canonical), port ignored: `Bücher.Example.:5280` and
 * `xn--bcher-kva.example` are both `bücher.example`; `[0:0::1]:5280` is `[::1]`. undefined for what is no domain.
 */
export function hostName(header: string): string | undefined {
  let h = header.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1 || (end + 1 < h.length && !/^:\d*$/.test(h.slice(end + 1)))) return undefined;
    h = h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) {
      if (!/^:\d*$/.test(h.slice(colon))) return undefined;
      h = h.slice(0, colon);
    }
  }
  // A domain only: "user@host" or "host/x" parse as JIDs too, and are not a Host.
  if (h === '' || h.includes('@') || h.includes('/')) return undefined;
  const parsed = parseJid(h);
  return parsed.ok && parsed.jid.local === null && parsed.jid.resource === null ? parsed.jid.domain : undefined;
}

/**
 * The koa app: the client address (trusted proxies), request log line, error
 * boundary, dispatch to the mounted apps.
 */
export function createHttpApp(apps: HttpApps, log: Logger, opts: { trustedProxies?: BlockList } = {}): Koa {
  const app = new Koa();
  // Koa's own proxy mode believes the leftmost X-Forwarded-For, which the client writes; see clientAddress.
  app.proxy = false;
  // Koa's default handler prints errors to stderr; ours are logged with their module instead.
  app.silent = true;
  if (opts.trustedProxies) app.use(forwardedClient(opts.trustedProxies));
  app.use(requestLog(log));
  app.use(dispatch(apps, log));
  return app;
}

/** ctx.request.ip (what throttles use) becomes the client behind a trusted proxy. */
function forwardedClient(trusted: BlockList): Middleware {
  return (ctx, next) => {
    const forwarded = ctx.req.headers['x-forwarded-for'];
    if (forwarded !== undefined) {
      const address = clientAddress(ctx.req.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(',') : forwarded, trusted);
      if (address !== undefined) ctx.request.ip = address;
    }
    return next();
  };
}

function requestLog(log: Logger): Middleware {
  // The line is flat (only strings and numbers, see logged), so the logger's wildcard redaction paths
  // (`*.password`, ...) can never match in it, and running them costs on every line; the top-level ones stay.
  const lineLog = log.child({}, { redact: { paths: ['password', 'authorization'], censor: '[redacted]' } });
  // At log_level warn and above the line is never written: pass straight on, not even through an async
  // function (each one costs the request a promise and microtask turns).
  return (ctx, next) => (log.isLevelEnabled('info') ? logged(lineLog, ctx, next) : next());
}

async function logged(log: Logger, ctx: Context, next: Next): Promise<void> {
  const started = performance.now();
  try {
    await next();
  } finally {
    const state = ctx.state as HttpLogState;
    const ms = performance.now() - started;
    const line: Record<string, string | number | undefined> = {
      method: ctx.method,
      path: ctx.path,
      status: ctx.status,
      ms: Math.round(ms * 100) / 100,
      account: state.account,
    };
    for (const [key, value] of Object.entries(state.log ?? {})) {
      if (typeof value === 'string' || typeof value === 'number') line[key] = value;
    }
    log.info(line, 'http request');
  }
}

function dispatch(apps: HttpApps, log: Logger): Middleware {
  return async (ctx: Context, next) => {
    const found = apps.find(ctx.get('host'), ctx.path);
    if (!found) {
      sendProblem(ctx, { status: 404, detail: `Nothing is served at ${ctx.path} on this host; check the URL and the http_paths setting.` });
      return;
    }
    try {
      await found.app.middleware(ctx, next);
    } catch (err) {
      log.error({ err, module: found.app.module, host: found.host }, 'HTTP handler failed');
      if (!ctx.headerSent) sendProblem(ctx, { status: 500, detail: 'The server failed to handle this request; the cause is in the server log.' });
      return;
    }
    if (ctx.status === 404 && ctx.body == null) {
      sendProblem(ctx, { status: 404, detail: `Nothing is served at ${ctx.path}; check the URL.` });
    }
  };
}
