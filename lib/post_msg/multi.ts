// Sending a composed request (post_msg.md §13–15): every message is built and checked (payload, recipient, token
// scope, account, rate) before any is sent; then each is sent in request order; `?dry_run=1` stops before sending.
// Rooms (§10) are checked with the muc service's check-only call, remote recipients (§9) only for federation being on:
// whether another server is reachable is known only when sending, so a remote failure then lists what was sent.

import { randomUUID } from 'node:crypto';
import { serialize, StanzaError, xml, type HttpContext, type ModuleApi, type Outcome, type Services, type Stanza, type TokenInfo } from '../host/api.js';
import { buildMessage, deliveryProblem } from './message.js';
import { federation, sendRemote } from './remote.js';
import type { ComposedPart } from './compose.js';
import type { Problem } from './problem.js';
import type { RateLimiter } from './rate-limit.js';
import type { Slot } from './idempotency.js';
import { scopeProblem, tokenService } from './tokens.js';

const JSON_TYPE = 'application/json; charset=utf-8';
export const NS_OOB = 'jabber:x:oob';

export interface ComposedRequest {
  parts: ComposedPart[];
  pathRecipient: string;
  account: string;
  bare: string;
  token?: TokenInfo;
  slot?: Slot;
  isDryRun: boolean;
  limiter: RateLimiter;
  newId?: () => string;
}

interface Planned {
  stanza: Stanza;
  to: string;
  domain: string;
  id: string;
  /** local: an account here (module.send); room: a local MUC room (posted by its service); remote: over s2s. */
  kind: 'local' | 'room' | 'remote';
  /** The room's bare JID and the nick field, for a room. */
  room?: { bare: string; nick?: string };
}

/** The answer to a refusal of the muc service (§10): 403 the rule, 409 the nick, 404 no such room. */
function roomProblem(result: { outcome: 'forbidden' | 'conflict' | 'not-found'; detail: string }): Problem {
  const status = result.outcome === 'forbidden' ? 403 : result.outcome === 'conflict' ? 409 : 404;
  return { status, detail: result.detail };
}

/** The answer of a dry run (§15): each stanza that would be sent, as XML. */
export function dryRunBody(planned: Array<{ to: string; stanza: Stanza }>): { messages: Array<{ to: string; stanza: string }> } {
  return { messages: planned.map((p) => ({ to: p.to, stanza: serialize(p.stanza) })) };
}

/** Build, check, then send (or, for a dry run, show) every message of a composed request; answers ctx. */
export async function sendComposed(ctx: HttpContext, module: ModuleApi, req: ComposedRequest, answerProblem: (p: Problem) => void): Promise<void> {
  const ids = req.slot?.reusedIds;
  const planned: Planned[] = [];
  const seen = new Set<string>();
  const s2s = federation(module);
  for (const [i, part] of req.parts.entries()) {
    const id = ids?.[i] ?? (req.newId ?? randomUUID)();
    const plan = buildMessage({
      contentType: part.contentType,
      body: part.body,
      pathRecipient: part.usePath ? req.pathRecipient : '',
      account: req.account,
      host: module.host,
      id,
      isLocalHost: (domain) => module.isLocalHost(domain),
      isFederated: s2s !== undefined,
      isRoomService: (domain) => module.isComponent(domain) && module.serviceAt(domain, 'muc') !== undefined,
    });
    if (!plan.ok) return answerProblem(plan.problem);
    const to = plan.value.to;
    // §13: the same recipient twice (after normalisation) gets one message.
    const key = `${to.full}\n${part.oob ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const outOfScope = scopeProblem(req.token ? tokenService(module) : undefined, req.token, to.full);
    if (outOfScope) return answerProblem(outOfScope);
    if (part.oob) plan.value.stanza.append(xml('x', { xmlns: NS_OOB }, xml('url', {}, part.oob)));
    const { stanza } = plan.value;
    if (plan.value.isRoom) {
      // §13: the room's refusals now, before anything is sent (the post repeats them, for a room that changed since).
      const rooms = module.serviceAt(to.domain, 'muc');
      const checked = rooms ? rooms.check({ room: to.bare, account: req.bare, nick: plan.value.nick }) : ({ outcome: 'not-found', detail: `There is no room ${to.bare} on this server.` } as const);
      if (checked.outcome !== 'allowed') return answerProblem(roomProblem(checked));
      planned.push({ stanza, to: to.full, domain: to.domain, id, kind: 'room', room: { bare: to.bare, nick: plan.value.nick } });
    } else if (!module.isLocalHost(to.domain)) {
      // buildMessage let another server's domain through only because the host federates (§9); reachability is known when sending.
      planned.push({ stanza, to: to.full, domain: to.domain, id, kind: 'remote' });
    } else {
      if (!(await module.users.exists(to.bare))) return answerProblem({ status: 404, detail: `There is no account ${to.bare} on this server; check the recipient.` });
      planned.push({ stanza, to: to.full, domain: to.domain, id, kind: 'local' });
    }
  }

  // §13: each recipient counts as one message (the request's first was taken before reading the body).
  for (let i = 1; i < planned.length; i++) {
    const wait = req.limiter.take(req.bare);
    if (wait > 0) {
      return answerProblem({ status: 429, detail: `Too many messages from ${req.bare}: this request has ${planned.length}; wait ${wait} s (rate_per_second, rate_burst).`, headers: { 'Retry-After': String(wait) } });
    }
  }

  if (req.isDryRun) return answer(ctx, 200, dryRunBody(planned));

  await req.slot?.reserve(planned.map((p) => p.id));
  const results: Array<{ id: string; to: string; outcome: Outcome | 'posted' }> = [];
  const alreadySent = (): string => (results.length > 0 ? ` Already sent: ${results.map((r) => `${r.to} (${r.id})`).join(', ')}.` : ' Nothing was sent.');
  for (const p of planned) {
    try {
      if (p.kind === 'room') {
        const posted = await postToRoom(module, p, req.bare);
        if (posted.outcome !== 'posted') {
          const problem = roomProblem(posted);
          return answerProblem({ ...problem, detail: `${problem.detail}${alreadySent()}` });
        }
        results.push({ id: p.id, to: p.to, outcome: 'posted' });
      } else if (p.kind === 'remote' && s2s) {
        results.push({ id: p.id, to: p.to, outcome: await sendRemote(module, s2s, p.stanza, p.domain, Number(module.options.remote_timeout) * 1000) });
      } else {
        results.push({ id: p.id, to: p.to, outcome: await module.send(p.stanza) });
      }
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      const mapped = deliveryProblem(err, p.to);
      if (mapped.isInternal) module.log.error({ err, stanza_id: p.id }, 'post_msg: routing failed');
      return answerProblem({ status: mapped.status, detail: `${mapped.detail}${alreadySent()}`, ...(mapped.headers ? { headers: mapped.headers } : {}) });
    }
  }
  // A single message keeps the shape of §5.
  answer(ctx, 201, results.length === 1 ? results[0] : { messages: results });
}

/** Post to a local room through its service (§10), with the stanza's body, html and subject. */
async function postToRoom(module: ModuleApi, p: Planned, account: string): Promise<Awaited<ReturnType<Services['muc']['post']>>> {
  const rooms = module.serviceAt(p.domain, 'muc');
  if (!rooms) return { outcome: 'not-found', detail: `There is no room ${p.room!.bare} on this server.` };
  return rooms.post({
    room: p.room!.bare,
    account,
    nick: p.room!.nick,
    body: p.stanza.getChildText('body') ?? '',
    html: p.stanza.getChild('html') ?? undefined,
    subject: p.stanza.getChildText('subject') ?? undefined,
    id: p.id,
  });
}

function answer(ctx: HttpContext, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(body);
}
