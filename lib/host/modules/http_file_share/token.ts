// Upload tokens of http_file_share (XEP-0363 §5 Authorization header): what a slot allows (slot id, exact size,
// expiry, uploader), signed with HMAC-SHA256 under a per-process key, as Prosody's mod_http_file_share signs a JWT.

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface UploadGrant {
  /** The slot id (the path segment of the PUT URL). */
  slot: string;
  /** The exact size in bytes the upload must have. */
  size: number;
  /** Unix time (seconds) after which the token is refused. */
  expires: number;
  /** The uploader's bare JID. */
  uploader: string;
}

export type TokenCheck = { ok: true; grant: UploadGrant } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' | 'other-slot' };

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

/** `<payload>.<signature>`, both base64url: the payload is the grant as JSON. */
export function signToken(secret: Buffer, grant: UploadGrant): string {
  const payload = Buffer.from(JSON.stringify({ s: grant.slot, n: grant.size, e: grant.expires, u: grant.uploader })).toString('base64url');
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** Check a token for `slot` at `now` (seconds): signature first, then what it says. */
export function verifyToken(secret: Buffer, token: string, slot: string, now: number): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 2 || !/^[\w-]{1,2048}$/.test(parts[0]!) || !/^[\w-]{43}$/.test(parts[1]!)) return { ok: false, reason: 'malformed' };
  const [payload, signature] = parts as [string, string];
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const d = data as { s?: unknown; n?: unknown; e?: unknown; u?: unknown };
  if (typeof d.s !== 'string' || typeof d.n !== 'number' || typeof d.e !== 'number' || typeof d.u !== 'string') return { ok: false, reason: 'malformed' };
  if (d.s !== slot) return { ok: false, reason: 'other-slot' };
  if (d.e < now) return { ok: false, reason: 'expired' };
  return { ok: true, grant: { slot: d.s, size: d.n, expires: d.e, uploader: d.u } };
}
