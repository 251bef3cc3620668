// Sending a composed request (post_msg.md §13–15): every message is built and checked (payload, recipient, token
// scope, account, rate) before any is sent; then each is sent in request order; `?dry_run=1` stops before sending.
// Rooms (§10) and remote recipients (§9) in a composed request are refused for now (422), local accounts only.

import { randomUUID } from 'node:crypto';
import { serialize, StanzaError, xml, type HttpContext, type ModuleApi, type Outcome, type Stanza, type TokenInfo } from '../host/api.js';
import { buildMessage, deliveryProblem } from './message.js';
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
  id: string;
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
    });
    if (!plan.ok) return answerProblem(plan.problem);
    const to = plan.value.to;
    // §13: the same recipient twice (after normalisation) gets one message.
    const key = `${to.full}\n${part.oob ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (!module.isLocalHost(to.domain)) {
      return answerProblem({ status: 422, detail: `${to.full} is not an account of this server; several recipients, Markdown, title and url go to local accounts for now.` });
    }
    const outOfScope = scopeProblem(req.token ? tokenService(module) : undefined, req.token, to.full);
    if (outOfScope) return answerProblem(outOfScope);
    if (!(await module.users.exists(to.bare))) return answerProblem({ status: 404, detail: `There is no account ${to.bare} on this server; check the recipient.` });
    if (part.oob) plan.value.stanza.append(xml('x', { xmlns: NS_OOB }, xml('url', {}, part.oob)));
    planned.push({ stanza: plan.value.stanza, to: to.full, id });
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
  const results: Array<{ id: string; to: string; outcome: Outcome }> = [];
  for (const p of planned) {
    try {
      results.push({ id: p.id, to: p.to, outcome: await module.send(p.stanza) });
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      const mapped = deliveryProblem(err, p.to);
      if (mapped.isInternal) module.log.error({ err, stanza_id: p.id }, 'post_msg: routing failed');
      const sent = results.length > 0 ? ` Already sent: ${results.map((r) => `${r.to} (${r.id})`).join(', ')}.` : '';
      return answerProblem({ status: mapped.status, detail: `${mapped.detail}${sent}`, ...(mapped.headers ? { headers: mapped.headers } : {}) });
    }
  }
  // A single message keeps the shape of §5.
  answer(ctx, 201, results.length === 1 ? results[0] : { messages: results });
}

function answer(ctx: HttpContext, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(body);
}
