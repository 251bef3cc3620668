// The `tokens` HTTP app (post_msg.md §11): an account mints, lists and revokes its own app tokens with its password.
// POST / (JSON, parsed by koa-bodyparser), GET /, DELETE /<id>. Prosody has no such app (its tokens come from OAuth2).

import bodyParser from 'koa-bodyparser';
import Router from 'koa-router';
import { HostError, parseJid, sendProblem, type HttpApp, type HttpContext, type HttpLogState, type ModuleApi, type ProblemInit, type TokenService } from '../../api.js';
import { MAX_TOKEN_SECONDS } from './store.js';

export const DEFAULT_TOKENS_PATH = '/tokens';
const JSON_TYPE = 'application/json; charset=utf-8';
/** A token request is a name, a scope of at most 100 entries and a number: 16 KiB is plenty. */
const JSON_LIMIT = '16kb';
const FIELDS = new Set(['name', 'to', 'expires']);

type Auth = { ok: true; account: string } | { ok: false; problem: ProblemInit; reason: string };

export function basicChallenge(host: string): string {
  return `Basic realm="${host}/tokens", charset="UTF-8"`;
}

/** Basic credentials (RFC 7617), strictly: base64, UTF-8, split at the first colon; undefined if malformed. */
export function parseBasic(header: string): { username: string; password: string } | undefined {
  const m = /^[ \t]*basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (!m) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(m[1]!, 'base64'));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function createTokensApp(module: ModuleApi, tokens: TokenService): HttpApp {
  const router = new Router();
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: JSON_LIMIT, strict: true });

  router.get('/', async (ctx) => {
    const auth = await authenticate(ctx, module);
    if (!auth.ok) return refuse(ctx, auth);
    answer(ctx, 200, { tokens: await tokens.list(auth.account) });
  });

  router.post('/', async (ctx) => {
    const auth = await authenticate(ctx, module);
    if (!auth.ok) return refuse(ctx, auth);
    if (!ctx.is('application/json')) {
      return sendProblem(ctx, { status: 415, detail: 'Send the token request as application/json: {"name": …, "to"?: […], "expires"?: seconds}.', headers: { 'Accept-Post': 'application/json' } });
    }
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      const status = (err as { status?: number }).status === 413 ? 413 : 400;
      return sendProblem(ctx, { status, detail: status === 413 ? `A token request is at most ${JSON_LIMIT}.` : 'The body is not a JSON object; send {"name": …}.' });
    }
    const input = checkInput((ctx.request as unknown as { body: unknown }).body);
    if (!input.ok) return sendProblem(ctx, { status: 400, detail: input.detail });
    try {
      const { token, info } = await tokens.create(auth.account, input.value);
      ctx.set('Location', `${ctx.path.replace(/\/+$/, '')}/${info.id}`);
      answer(ctx, 201, { ...info, token });
    } catch (err) {
      if (err instanceof HostError && err.code === 'HOST_ERR_TOKEN_INVALID') return sendProblem(ctx, { status: 400, detail: `Invalid token request: ${err.message}` });
      // 409: the account's state (its tokens) stands in the way, not the request.
      if (err instanceof HostError && err.code === 'HOST_ERR_TOKEN_LIMIT') return sendProblem(ctx, { status: 409, detail: err.message });
      throw err;
    }
  });

  router.delete('/:id', async (ctx) => {
    const auth = await authenticate(ctx, module);
    if (!auth.ok) return refuse(ctx, auth);
    const id = ctx.params.id ?? '';
    // Another account's token is as unknown as one that never existed.
    if (!(await tokens.revoke(auth.account, id))) return sendProblem(ctx, { status: 404, detail: `${auth.account} has no token ${JSON.stringify(id)}; GET the token list for the ids.` });
    ctx.status = 204;
    ctx.set('Cache-Control', 'no-store');
  });

  return {
    defaultPath: DEFAULT_TOKENS_PATH,
    name: 'tokens',
    router,
    title: 'App tokens',
    methods: ['GET', 'POST', 'DELETE'],
    optionsHeaders: { 'Accept-Post': 'application/json' },
  };
}

function answer(ctx: HttpContext, status: number, body: unknown): void {
  ctx.status = status;
  // The answer may carry a secret: never kept by a cache.
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(body);
}

function refuse(ctx: HttpContext, auth: Extract<Auth, { ok: false }>): void {
  ((ctx.state as HttpLogState).log ??= {}).auth = auth.reason;
  sendProblem(ctx, auth.problem);
}

/** The request body as create() takes it, or what is wrong with it. */
export function checkInput(body: unknown): { ok: true; value: { name: string; to?: string[]; expiresInSeconds?: number } } | { ok: false; detail: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, detail: 'The body is a JSON object: {"name": …, "to"?: […], "expires"?: seconds}.' };
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) return { ok: false, detail: `Unknown field ${JSON.stringify(unknown)}; a token request has name, to and expires.` };
  if (typeof fields.name !== 'string') return { ok: false, detail: '"name" (a string) is required: what the token is for.' };
  const value: { name: string; to?: string[]; expiresInSeconds?: number } = { name: fields.name };
  if (fields.to !== undefined) {
    if (!Array.isArray(fields.to) || !fields.to.every((t) => typeof t === 'string')) return { ok: false, detail: '"to" is an array of JIDs or domains.' };
    value.to = fields.to as string[];
  }
  if (fields.expires !== undefined) {
    if (typeof fields.expires !== 'number' || !Number.isInteger(fields.expires) || fields.expires < 1 || fields.expires > MAX_TOKEN_SECONDS) {
      return { ok: false, detail: `"expires" is a whole number of seconds from 1 to ${MAX_TOKEN_SECONDS}.` };
    }
    value.expiresInSeconds = fields.expires;
  }
  return { ok: true, value };
}

/** The account, by its password only: a token here is 403 (tokens are for sending), anything else wrong 401. */
async function authenticate(ctx: HttpContext, module: ModuleApi): Promise<Auth> {
  const challenge: ProblemInit = {
    status: 401,
    detail: 'Authenticate with HTTP Basic as an account of this host: user (or user@host) and its password.',
    headers: { 'WWW-Authenticate': basicChallenge(module.host) },
  };
  const header = ctx.get('authorization');
  if (header === '') return { ok: false, problem: challenge, reason: 'missing' };
  const forbidden: ProblemInit = { status: 403, detail: 'tokens cannot manage tokens; authenticate with the account\'s password.' };
  if (/^[ \t]*bearer[ \t]/i.test(header)) return { ok: false, problem: forbidden, reason: 'token' };
  const basic = parseBasic(header);
  if (!basic || basic.password === '') return { ok: false, problem: challenge, reason: 'malformed' };
  if (basic.username === '') return { ok: false, problem: forbidden, reason: 'token' };
  const who = parseJid(basic.username.includes('@') ? basic.username : `${basic.username}@${module.host}`);
  // Only this host's accounts manage their tokens here.
  if (!who.ok || who.jid.local === null || who.jid.resource !== null || who.jid.domain !== module.host) return { ok: false, problem: challenge, reason: 'jid' };
  const result = await module.users.authenticate({ jid: who.jid.bare, password: basic.password, address: ctx.request.ip });
  if (result.ok) {
    (ctx.state as HttpLogState).account = result.jid;
    return { ok: true, account: result.jid };
  }
  if (result.reason === 'throttled') {
    return { ok: false, reason: 'throttled', problem: { status: 429, detail: `Too many failed logins from this address; wait ${result.retryAfterSeconds} s.`, headers: { 'Retry-After': String(result.retryAfterSeconds) } } };
  }
  return { ok: false, problem: challenge, reason: 'invalid' };
}
