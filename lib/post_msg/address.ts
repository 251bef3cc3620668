// Addresses for post_msg: the recipient (path or `to` field) and the account in the credentials.
// Both go through the host's one JID normaliser (parseJid, RFC 7622); this file only adds the
// "no @ means a user of the serving host" rule.
// DIFF: Prosody's code treats `/msg/alice` as the domain "alice" although its README promises alice@<host>.

import { parseJid, type Jid } from '../host/api.js';
import { problem, ok, quote, type Result } from './problem.js';

/**
 * `alice` → alice@<host>; `alice@example.org/phone` as written. Returns the parser's error
 * (which quotes the value) when the address is not a valid JID.
 */
export function resolveAddress(raw: string, servingHost: string): { ok: true; jid: Jid } | { ok: false; error: string } {
  if (raw.includes('@')) return parseJid(raw);
  if (raw.includes('/')) {
    return { ok: false, error: `${quote(raw)} has no "@", so it is a user name on ${servingHost}, and a user name cannot contain "/"; write user@${servingHost}/resource for a resource.` };
  }
  if (raw === '') return { ok: false, error: 'the address is empty.' };
  const parsed = parseJid(`${raw}@${servingHost}`);
  if (parsed.ok) return parsed;
  return { ok: false, error: `${quote(raw)} is not a valid user name: ${parsed.error}` };
}

export interface Recipient {
  jid: Jid;
  isLocal: boolean;
}

/**
 * Validate and normalise a recipient; 400 for a bad JID. A domain this server does not serve is a remote recipient
 * when the host federates (post_msg.md §9), else 422.
 */
export function resolveRecipient(raw: string, servingHost: string, isLocalHost: (domain: string) => boolean, field: string, isFederated = false): Result<Recipient> {
  const parsed = resolveAddress(raw, servingHost);
  if (!parsed.ok) return problem(400, `The recipient (${field}) is not valid: ${parsed.error}`);
  const { jid } = parsed;
  if (jid.local === null) return problem(400, `The recipient (${field}) ${quote(raw)} is a server, not an account; address user@domain.`);
  if (!isLocalHost(jid.domain)) {
    if (isFederated) return ok({ jid, isLocal: false });
    return problem(422, `Remote domains are not supported: ${jid.domain} is not served by this server, and federation is off here (the s2s module is disabled).`);
  }
  return ok({ jid, isLocal: true });
}

/** Percent-decode the path part after the base path once (RFC 3986 §2.1); undefined when malformed. */
export function decodePathRecipient(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
