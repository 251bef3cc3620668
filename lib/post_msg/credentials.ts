// HTTP Basic credentials (RFC 7617) for post_msg: decoded strictly as UTF-8, split at the first colon.
// DIFF: Prosody crashes (500) on malformed base64 and on a user without @host; both are a plain 401 here.

import { decodeUtf8 } from './payload.js';

export interface BasicCredentials {
  /** `user`, `user@host` or `user@host/resource`, as sent (not yet normalised). */
  username: string;
  password: string;
}

/** Why credentials could not be read; never shown to the client (the 401 does not say which part was wrong). */
export type CredentialsFailure = 'missing' | 'scheme' | 'base64' | 'utf8' | 'colon' | 'empty';

export type CredentialsResult = { ok: true; credentials: BasicCredentials } | { ok: false; reason: CredentialsFailure };

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decode an Authorization header. Never throws. */
export function parseBasicAuthorization(header: string | undefined): CredentialsResult {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing' };
  const match = /^[ \t]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]+([^ \t]+)[ \t]*$/.exec(header);
  if (!match || match[1]!.toLowerCase() !== 'basic') return { ok: false, reason: 'scheme' };
  const token = match[2]!;
  if (!BASE64_RE.test(token) || token.replace(/=+$/, '').length % 4 === 1 || (token.includes('=') && token.length % 4 !== 0)) {
    return { ok: false, reason: 'base64' };
  }
  const decoded = decodeUtf8(Buffer.from(token, 'base64'));
  if (decoded === undefined) return { ok: false, reason: 'utf8' };
  const colon = decoded.indexOf(':');
  if (colon === -1) return { ok: false, reason: 'colon' };
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (username === '' || password === '') return { ok: false, reason: 'empty' };
  return { ok: true, credentials: { username, password } };
}

/** The value of `WWW-Authenticate` for a virtual host (RFC 7617 §2.1: realm and charset). */
export function basicChallenge(host: string): string {
  return `Basic realm="${host}/post_msg", charset="UTF-8"`;
}
