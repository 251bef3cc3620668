// Server dialback keys (XEP-0220 §2.1.2) generated as XEP-0185 recommends: HMAC-SHA256 keyed with the hex SHA-256
// of a per-server secret, over "receiving originating stream-id". Prosody's mod_dialback generate_dialback().

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export function dialbackKey(secret: Buffer, receiving: string, originating: string, streamId: string): string {
  const key = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', key).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

/** Constant-time comparison of a key a peer sent with the one we would have made. */
export function isValidKey(secret: Buffer, receiving: string, originating: string, streamId: string, key: string): boolean {
  const expected = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const given = Buffer.from(key.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
