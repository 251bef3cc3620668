// What the http module decides for every app before the app runs (the testing kit mounts apps the same way):
// OPTIONS and 405 from the methods the app declares (RFC 9110 §9.3.7, §15.5.6), CORS headers for the origins it
// allows, and the cross-site guard.

import type { Context, Middleware, Next } from 'koa';
import { sendProblem } from './problem.js';
import { checkOrigin, corsHeaders, normaliseOrigin } from './origin.js';

/** What an http item declares about itself; api.ts's HttpApp extends it (the fields are documented there). */
export interface HttpAppPolicy {
  methods?: string[];
  /** Paths under the base path (`/openapi.json`) that take other methods than `methods`. */
  pathMethods?: Readonly<Record<string, string[]>>;
  optionsHeaders?: Record<string, string>;
  corsOrigins?: readonly string[];
  /**
   * Any web page may call the app and read its answers (`Access-Control-Allow-Origin: *`, which browsers never
   * pair with cookies or cached credentials): only for apps whose credential is in the request itself, such as
   * http_file_share's slot token. The cross-site guard then refuses nothing.
   */
  corsAnyOrigin?: boolean;
  corsHeaders?: string[];
}

/** Request headers an allowed page may send, unless the app says otherwise. */
const DEFAULT_CORS_HEADERS = ['Authorization', 'Content-Type'];
/** Methods that change nothing (RFC 9110 §9.2.1): a cross-site one may read nothing without CORS, so it passes. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface MethodRule {
  methods: string[];
  allowed: Set<string>;
  /** The `Allow` header (RFC 9110 §10.2.1). */
  allow: string;
}

function methodRule(declared: readonly string[]): MethodRule {
  const methods = declared.map((m) => m.toUpperCase());
  return { methods, allowed: new Set(['OPTIONS', ...methods]), allow: ['OPTIONS', ...methods.filter((m) => m !== 'OPTIONS')].join(', ') };
}

/**
 * The app's middleware behind its policy, mounted at `basePath`. Without declared methods the app answers OPTIONS
 * and 405 itself.
 */
export function withPolicy(app: HttpAppPolicy, middleware: Middleware, basePath = '/'): Middleware {
  const appRule = app.methods && methodRule(app.methods);
  const pathRules = new Map(Object.entries(app.pathMethods ?? {}).map(([path, methods]) => [path, methodRule(methods)]));
  const prefix = basePath === '/' ? '' : basePath;
  const origins = (app.corsOrigins ?? []).flatMap((o) => normaliseOrigin(o) ?? []);
  const preflightHeaders = (app.corsHeaders ?? DEFAULT_CORS_HEADERS).join(', ');

  return (ctx: Context, next: Next) => {
    const originHeader = ctx.req.headers.origin || undefined;
    const fetchSite = ctx.req.headers['sec-fetch-site'] || undefined;
    // curl and scripts send neither header: nothing to decide for them but the method.
    const origin =
      originHeader === undefined && fetchSite === undefined
        ? undefined
        : app.corsAnyOrigin
          ? ({ allowed: true, corsOrigin: originHeader === undefined ? undefined : '*' } as const)
          : checkOrigin({ origin: originHeader, secFetchSite: fetchSite, selfOrigin: `${ctx.protocol}://${ctx.get('host')}`, allowedOrigins: origins });
    const corsOrigin = origin?.allowed ? origin.corsOrigin : undefined;
    const rule = (pathRules.size > 0 && pathRules.get(ctx.path.slice(prefix.length))) || appRule;
    const allow = rule?.allow;

    if (allow !== undefined && ctx.method === 'OPTIONS') {
      // Never refused and never authenticated: a browser asks before its real request.
      ctx.status = 204;
      ctx.set('Allow', allow);
      if (app.optionsHeaders) ctx.set(app.optionsHeaders);
      if (corsOrigin !== undefined) {
        ctx.set({ ...corsHeaders(corsOrigin), 'Access-Control-Allow-Methods': allow, 'Access-Control-Allow-Headers': preflightHeaders });
      }
      return Promise.resolve();
    }
    if (rule !== undefined && !rule.allowed.has(ctx.method)) {
      sendProblem(ctx, { status: 405, detail: `${ctx.method} is not supported here; use ${rule.methods.join(' or ')}.`, headers: { Allow: rule.allow } });
      return Promise.resolve();
    }
    if (origin !== undefined && !origin.allowed && !SAFE_METHODS.has(ctx.method)) {
      // The request log line's field (api.ts HttpLogState).
      ((ctx.state as { log?: Record<string, string | number | undefined> }).log ??= {}).refused = 'cross-site';
      sendProblem(ctx, { status: 403, detail: 'Cross-site requests are refused: the request comes from a web page whose origin is neither this server nor one the app allows (cors_origins).' });
      return Promise.resolve();
    }
    // Set before the app runs, so the page can read the app's errors (a 401) too.
    if (corsOrigin !== undefined) ctx.set(corsHeaders(corsOrigin));
    return middleware(ctx, next);
  };
}
