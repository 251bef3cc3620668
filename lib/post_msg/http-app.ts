// The thin Koa adapter of post_msg: routes under the base path, Basic auth, rate limit, body reading, then the
// pure core (message.ts) and delivery through module.send; OPTIONS, 405 and the cross-site guard are the http
// module's, from what the app declares. Port of the route table and handle_post of Prosody's mod_post_msg.lua.

import { randomUUID } from 'node:crypto';
import Router from 'koa-router';
import { sendProblem, StanzaError, type HttpApp, type HttpContext, type HttpLogState, type ModuleApi } from '../host/api.js';
import { ACCEPT_POST, parseMediaType } from './media-type.js';
import { basicChallenge, parseBasicAuthorization } from './credentials.js';
import { authenticateToken, isBearer, presentedToken, scopeProblem, tokenChallenges, tokenService } from './tokens.js';
import type { TokenInfo } from '../host/api.js';
import { Idempotency, holdSlot, withIdempotency, type Slot } from './idempotency.js';
import { composeRequest } from './compose.js';
import { dryRunBody, sendComposed } from './multi.js';
import { serveOpenApi } from './openapi.js';
import { resolveAddress } from './address.js';
import { buildMessage, createdResponse, deliveryProblem, type MessagePlan } from './message.js';
import { readBody, takeBufferedBody } from './read-body.js';
import { answerRemote, federation } from './remote.js';
import type { Problem } from './problem.js';
import type { RateLimiter } from './rate-limit.js';

const JSON_TYPE = 'application/json; charset=utf-8';

export interface PostMsgSettings {
  maxBodyBytes: number;
  /** Web origins whose pages may POST cross-site (the http module enforces it). */
  corsOrigins: readonly string[];
  limiter: RateLimiter;
  /** Most recipients of one request (§13, max_recipients); default 20. */
  maxRecipients?: number;
  /** Idempotency-Key records (§12); absent: the header is ignored. */
  idempotency?: Idempotency;
  /** Stanza ids; random UUIDs unless a test wants predictable ones. */
  newId?: () => string;
}

/** `token`: the app token the request came with (§11), whose scope limits the recipients. */
type Authenticated = { ok: true; account: string; bare: string; token?: TokenInfo } | { ok: false; problem: Problem; reason: string };

/**
 * The http item without its path: POST only (the http module answers OPTIONS with Accept-Post, and 405 to any
 * other method, before authentication), CORS for `cors_origins`.
 */
export function createApp(module: ModuleApi, settings: PostMsgSettings): Omit<HttpApp, 'defaultPath'> {
  return {
    router: createRouter(module, settings),
    methods: ['POST'],
    // B/openapi.json is read with GET (§15); OPTIONS and every other path still answer `Allow: OPTIONS, POST`.
    pathMethods: { '/openapi.json': ['GET'] },
    optionsHeaders: { 'Accept-Post': ACCEPT_POST },
    corsOrigins: settings.corsOrigins,
  };
}

/** The router: routes are relative; the host prefixes them with the base path (`router.prefix`). */
export function createRouter(module: ModuleApi, settings: PostMsgSettings): Router {
  const router = new Router();
  // `all`: the http module has let only POST through; one handler for it under every path.
  router.get('/openapi.json', (ctx) => serveOpenApi(ctx, module));
  router.all('/', (ctx) => withIdempotency(ctx, () => handle(ctx, module, settings, '')));
  // A wildcard, not `:recipient`: a full JID has a "/" (`/msg/alice@example.org/phone`). The raw capture
  // is used rather than ctx.params, which koa-router decodes with "+" → space and keeps malformed escapes.
  router.all('/*recipient', (ctx) => withIdempotency(ctx, () => handle(ctx, module, settings, (ctx as unknown as { captures?: string[] }).captures?.[0] ?? '')));
  return router;
}

async function handle(ctx: HttpContext, module: ModuleApi, settings: PostMsgSettings, pathRecipient: string): Promise<void> {
  const state = ctx.state as HttpLogState;
  const auth = await authenticate(ctx, module);
  if (!auth.ok) {
    logFields(state).auth = auth.reason;
    sendProblem(ctx, auth.problem);
    return;
  }
  state.account = auth.account;

  const wait = settings.limiter.take(auth.bare);
  if (wait > 0) {
    sendProblem(ctx, { status: 429, detail: `Too many messages from ${auth.bare}; wait ${wait} s (rate_per_second, rate_burst).`, headers: { 'Retry-After': String(wait) } });
    return;
  }

  const early = checkBeforeReading(ctx, settings.maxBodyBytes);
  if (early) {
    sendProblem(ctx, early);
    return;
  }
  const read = takeBufferedBody(ctx.req, settings.maxBodyBytes) ?? (await readBody(ctx.req, settings.maxBodyBytes));
  if (!read.ok) {
    if (read.reason === 'too-large') sendProblem(ctx, tooLarge(settings.maxBodyBytes));
    else sendProblem(ctx, { status: 400, detail: 'The request body was cut off before its end; send it again.' });
    return;
  }

  // §15: every check runs, nothing is sent or recorded.
  const isDryRun = ctx.query.dry_run === '1' || ctx.query.dry_run === 'true';
  let slot: Slot | undefined;
  const key = ctx.get('idempotency-key') || undefined;
  if (key !== undefined && settings.idempotency && !isDryRun) {
    const bad = Idempotency.checkHeader(key);
    if (bad) {
      sendProblem(ctx, bad);
      return;
    }
    const admission = await settings.idempotency.begin(ctx, auth.bare, key, read.body, (p) => sendProblem(ctx, p));
    if (!admission.proceed) return;
    slot = admission.slot;
    holdSlot(ctx, slot);
  }
  // §13–14: several recipients, title, Markdown, url: built and checked all together, then sent.
  const composed = composeRequest(ctx.get('content-type') || undefined, read.body, settings.maxRecipients ?? 20, pathRecipient !== '');
  if (!composed.ok) {
    sendProblem(ctx, composed.problem);
    return;
  }
  if (composed.value.kind === 'composed') {
    const { account, bare, token } = auth;
    await sendComposed(ctx, module, { parts: composed.value.parts, pathRecipient, account, bare, token, slot, isDryRun, limiter: settings.limiter, newId: settings.newId }, (p) => sendProblem(ctx, p));
    return;
  }
  // A retry after a crash between routing and recording sends with the ids of the first attempt (§12).
  const id = slot?.reusedIds?.[0] ?? (settings.newId ?? randomUUID)();
  await slot?.reserve([id]);
  const plan = buildMessage({
    contentType: ctx.get('content-type') || undefined,
    body: read.body,
    pathRecipient,
    account: auth.account,
    host: module.host,
    id,
    isLocalHost: (domain) => module.isLocalHost(domain),
    isFederated: federation(module) !== undefined,
    isRoomService: (domain) => module.isComponent(domain) && module.serviceAt(domain, 'muc') !== undefined,
  });
  if (!plan.ok) {
    sendProblem(ctx, plan.problem);
    return;
  }
  const { stanza, to } = plan.value;
  const outOfScope = scopeProblem(auth.token ? tokenService(module) : undefined, auth.token, to.full);
  if (outOfScope) {
    sendProblem(ctx, outOfScope);
    return;
  }
  const fields = logFields(state);
  fields.recipient = to.full;
  fields.stanza_id = id;
  if (module.log.isLevelEnabled('debug')) module.log.debug({ stanza_id: id, body: stanza.getChildText('body') }, 'post_msg message body');

  // §15: a room and a remote server check by taking the message; a dry run stops before them, with the stanza.
  if (isDryRun && (plan.value.isRoom || !module.isLocalHost(to.domain))) {
    ctx.status = 200;
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = JSON.stringify(dryRunBody([{ to: to.full, stanza }]));
    return;
  }
  if (plan.value.isRoom) {
    await postToRoom(ctx, module, plan.value, auth.bare);
    return;
  }

  // post_msg.md §9: buildMessage let a domain not served here through only because the host federates.
  const s2s = module.isLocalHost(to.domain) ? undefined : federation(module);
  if (s2s) {
    const answer = await answerRemote(module, s2s, plan.value);
    if (!answer.ok) {
      sendProblem(ctx, answer.problem);
      return;
    }
    fields.outcome = answer.value.outcome;
    ctx.status = 201;
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = JSON.stringify(answer.value);
    return;
  }

  if (!(await module.users.exists(to.bare))) {
    sendProblem(ctx, { status: 404, detail: `There is no account ${to.bare} on this server; check the recipient.` });
    return;
  }

  if (isDryRun) {
    ctx.status = 200;
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = JSON.stringify(dryRunBody([{ to: to.full, stanza }]));
    return;
  }
  let outcome;
  try {
    outcome = await module.send(stanza);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    const mapped = deliveryProblem(err, to.full);
    if (mapped.isInternal) module.log.error({ err, stanza_id: id }, 'post_msg: routing failed');
    sendProblem(ctx, mapped);
    return;
  }
  const created = createdResponse(plan.value, outcome);
  fields.outcome = outcome;
  ctx.status = created.status;
  // Set directly: koa's `type` setter looks the type up in mime-db on every request.
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(created.body);
}

/**
 * post_msg.md §10: the room's service posts as the account under its nick, without a join; 201 posted, or 403 naming
 * the rule that refused, 409 for a nick that is someone else's, 404 for no such room (post_msg never creates rooms).
 */
async function postToRoom(ctx: HttpContext, module: ModuleApi, plan: MessagePlan, account: string): Promise<void> {
  const rooms = module.serviceAt(plan.to.domain, 'muc');
  const { stanza } = plan;
  const result = rooms
    ? await rooms.post({
        room: plan.to.bare,
        account,
        nick: plan.nick,
        body: stanza.getChildText('body') ?? '',
        html: stanza.getChild('html') ?? undefined,
        subject: stanza.getChildText('subject') ?? undefined,
        id: stanza.attrs.id!,
      })
    : ({ outcome: 'not-found', detail: `There is no room ${plan.to.bare} on this server.` } as const);
  const fields = logFields(ctx.state as HttpLogState);
  fields.outcome = result.outcome;
  if (result.outcome !== 'posted') {
    const status = result.outcome === 'forbidden' ? 403 : result.outcome === 'conflict' ? 409 : 404;
    sendProblem(ctx, { status, detail: result.detail });
    return;
  }
  const created = createdResponse(plan, 'posted');
  ctx.status = created.status;
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(created.body);
}

/** The fields of this request's log line (written by the host at log_level info), created on first use. */
function logFields(state: HttpLogState): NonNullable<HttpLogState['log']> {
  // Set one by one: spreading a fresh object per field was measurable on the hot path.
  return (state.log ??= {});
}

/** Basic credentials → the account; 401 for anything wrong (never saying what), 429 when throttled. */
async function authenticate(ctx: HttpContext, module: ModuleApi): Promise<Authenticated> {
  // Built only for a refusal: most requests authenticate.
  const challenge = (): Problem => ({
    status: 401,
    detail: 'Authenticate with HTTP Basic as an account of this server: user (or user@host) and its password.',
    headers: { 'WWW-Authenticate': basicChallenge(module.host) },
  });
  const header = ctx.get('authorization') || undefined;
  const token = presentedToken(header);
  const tokens = token !== undefined || isBearer(header) ? tokenService(module) : undefined;
  if (token !== undefined && tokens) return authenticateToken(ctx, module, tokens, token);
  if (isBearer(header)) {
    // A malformed Bearer header, or tokens not served here (tokenauth not loaded): the schemes this host takes.
    const problem = tokens ? { ...challenge(), headers: { 'WWW-Authenticate': tokenChallenges(module.host, true) } } : challenge();
    return { ok: false, problem, reason: 'bearer' };
  }
  const parsed = parseBasicAuthorization(header);
  if (!parsed.ok) return { ok: false, problem: challenge(), reason: parsed.reason };
  const { username, password } = parsed.credentials;
  const who = resolveAddress(username, module.host);
  if (!who.ok || who.jid.local === null) return { ok: false, problem: challenge(), reason: 'jid' };
  // The credentials may name another virtual host of this server (as in Prosody), never a remote one.
  if (!module.isLocalHost(who.jid.domain)) return { ok: false, problem: challenge(), reason: 'host' };
  const result = await module.users.authenticate({ jid: who.jid.bare, password, address: ctx.request.ip });
  if (result.ok) {
    const account = who.jid.resource === null ? result.jid : `${result.jid}/${who.jid.resource}`;
    return { ok: true, account, bare: result.jid };
  }
  if (result.reason === 'throttled') {
    return {
      ok: false,
      reason: 'throttled',
      problem: {
        status: 429,
        detail: `Too many failed logins from this address; wait ${result.retryAfterSeconds} s.`,
        headers: { 'Retry-After': String(result.retryAfterSeconds) },
      },
    };
  }
  return { ok: false, problem: challenge(), reason: 'invalid' };
}

/** What can be refused before reading a byte: the media type (415), an encoding (415), the declared length (413). */
function checkBeforeReading(ctx: HttpContext, maxBodyBytes: number): Problem | undefined {
  const media = parseMediaType(ctx.get('content-type') || undefined);
  if (!media.ok) return media.problem;
  const encoding = ctx.get('content-encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    return { status: 415, detail: `Content-Encoding ${encoding} is not supported; send the body uncompressed.`, headers: { 'Accept-Encoding': 'identity' } };
  }
  const length = ctx.get('content-length');
  if (length !== '' && Number(length) > maxBodyBytes) return tooLarge(maxBodyBytes);
  return undefined;
}

function tooLarge(maxBodyBytes: number): Problem {
  // Connection: close, so the unread rest of the body is not read (and thrown away) after the answer.
  return { status: 413, detail: `The request body is larger than ${maxBodyBytes} bytes (max_body_bytes); send a shorter message.`, headers: { Connection: 'close' } };
}
