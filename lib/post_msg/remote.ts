// Remote recipients (post_msg.md §9): a message for an account on another server goes over the host's federation
// (route/remote, the s2s module); the answer waits until it is on an authenticated stream there, at most
// remote_timeout, and a stanza the client no longer waits for is withdrawn, never sent behind its back.

import { HostError, StanzaError, type ModuleApi, type Outcome, type S2sService, type Stanza } from '../host/api.js';
import { createdResponse, deliveryProblem, type MessagePlan } from './message.js';
import { ok, type Result } from './problem.js';

/** The host's federation, or undefined when the s2s module is not loaded (`modules_disabled: [s2s]`). */
export function federation(module: ModuleApi): S2sService | undefined {
  try {
    return module.depends('s2s');
  } catch (err) {
    if (err instanceof HostError && err.code === 'HOST_ERR_MODULE_DEPENDENCY') return undefined;
    throw err;
  }
}

/**
 * Send a stanza to another server through module.send (the account's pre-events first, as for any message): resolves
 * once it is on an authenticated stream to that domain; rejects with StanzaError remote-server-not-found (cannot be
 * reached or authenticated) or remote-server-timeout (not within `timeoutMs`, the stanza withdrawn).
 */
export async function sendRemote(module: ModuleApi, s2s: S2sService, stanza: Stanza, domain: string, timeoutMs: number): Promise<Outcome> {
  const deadline = new AbortController();
  s2s.withdrawOnAbort(stanza, deadline.signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      deadline.abort();
      reject(new StanzaError('remote-server-timeout', `${domain} could not be reached within remote_timeout (${timeoutMs / 1000} s); nothing was sent.`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([module.send(stanza), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The answer for a remote recipient: 201's body, or the 502/504 (or other delivery) problem. */
export async function answerRemote(module: ModuleApi, s2s: S2sService, plan: MessagePlan): Promise<Result<{ id: string; to: string; outcome: Outcome | 'posted' }>> {
  try {
    const outcome = await sendRemote(module, s2s, plan.stanza, plan.to.domain, Number(module.options.remote_timeout) * 1000);
    return ok(createdResponse(plan, outcome).body);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    const mapped = deliveryProblem(err, plan.to.full);
    if (mapped.isInternal) module.log.error({ err, stanza_id: plan.stanza.attrs.id }, 'post_msg: routing failed');
    return { ok: false, problem: mapped };
  }
}
