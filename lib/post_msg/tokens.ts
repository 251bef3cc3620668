// App tokens for post_msg (post_msg.md §11): `Authorization: Bearer <token>` (RFC 6750 §2.1) or Basic with an empty
// user (`curl -u :<token>`), checked by the host's tokenauth service, counted by the per-address login throttle.
// DIFF: Prosody's mod_post_msg takes passwords only; its tokens (mod_tokenauth) serve OAuth2, not this module.

import { HostError, type HttpContext, type ModuleApi, type TokenInfo, type TokenService } from '../host/api.js';
import { basicChallenge } from './credentials.js';
import type { Problem } from './problem.js';

export type TokenAuth = { ok: true; account: string; bare: string; token: TokenInfo } | { ok: false; problem: Problem; reason: string };

/**
 * The tokenauth service, or undefined when that module is not loaded on this host: the dependency is optional (not
 * in plugin.json's `depends`), looked up per request, so post_msg loads without it and takes tokens once it is there.
 */
export function tokenService(module: ModuleApi): TokenService | undefined {
  try {
    return module.depends('tokenauth');
  } catch (err) {
    if (err instanceof HostError && err.code === 'HOST_ERR_MODULE_DEPENDENCY') return undefined;
    throw err;
  }
}

/** The token an Authorization header carries (Bearer, or Basic with an empty user), else undefined. */
export function presentedToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const bearer = /^[ \t]*bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^[ \t]*basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('latin1');
  // A token is ASCII; an empty user marks it (RFC 7617 allows one).
  return decoded.startsWith(':') && decoded.length > 1 ? decoded.slice(1) : undefined;
}

/** Is this header a Bearer one (answered 401 even when tokenauth is off, rather than taken as Basic)? */
export function isBearer(header: string | undefined): boolean {
  return header !== undefined && /^[ \t]*bearer[ \t]/i.test(header);
}

/** Both challenges (RFC 7235 §4.1 allows several): Basic for passwords, Bearer with error="invalid_token" (RFC 6750 §3). */
export function tokenChallenges(host: string, error: boolean): string {
  return `${basicChallenge(host)}, Bearer realm="${host}/post_msg"${error ? ', error="invalid_token"' : ''}`;
}

/** Check a presented token; the throttle counts a failed check as it counts a wrong password. */
export async function authenticateToken(ctx: HttpContext, module: ModuleApi, service: TokenService, token: string): Promise<TokenAuth> {
  const invalid = (reason: string): TokenAuth => ({
    ok: false,
    reason,
    problem: {
      status: 401,
      detail: 'The token is unknown, revoked or expired; ask for a new one, or authenticate with HTTP Basic as an account of this server.',
      headers: { 'WWW-Authenticate': tokenChallenges(module.host, true) },
    },
  });
  const admission = await module.users.beginAuthAttempt(ctx.request.ip);
  if (!admission.ok) {
    return {
      ok: false,
      reason: 'throttled',
      problem: { status: 429, detail: `Too many failed logins from this address; wait ${admission.retryAfterSeconds} s.`, headers: { 'Retry-After': String(admission.retryAfterSeconds) } },
    };
  }
  let check;
  try {
    check = await service.verify(token);
  } catch (err) {
    admission.attempt.succeeded();
    throw err;
  }
  if (!check.ok) {
    admission.attempt.failed();
    return invalid(`token-${check.reason}`);
  }
  admission.attempt.succeeded();
  return { ok: true, account: check.info.account, bare: check.info.account, token: check.info };
}

/** 403 naming the scope when a scoped token may not send to this recipient (§11), else undefined. */
export function scopeProblem(service: TokenService | undefined, token: TokenInfo | undefined, recipient: string): Problem | undefined {
  // Without the service (tokenauth unloaded meanwhile) a scoped token sends nowhere.
  if (!token || service?.allows(token, recipient) === true) return undefined;
  if (token.to === undefined) return undefined;
  return { status: 403, detail: `The token "${token.name}" may send only to ${token.to!.join(', ')}; ${recipient} is outside its scope.` };
}
