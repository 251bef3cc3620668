// XEP-0198 §4 counting shared by stream management on client streams (modules/smacks.ts) and server-to-server
// streams (modules/s2s/): h as a decimal below 2^32, wrapping; how many stanzas an <a h/> newly acknowledges.

export const NS_SM = 'urn:xmpp:sm:3';
/** h counts modulo 2^32 (XEP-0198 §4). */
export const WRAP = 2 ** 32;

/** The peer's h: a decimal integer below 2^32, or undefined. */
export function parseH(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const h = Number(value);
  return h < WRAP ? h : undefined;
}

/** How many stanzas an h acknowledges beyond `acked` (a running total), wrapping at 2^32. */
export function newlyAcked(acked: number, h: number): number {
  return (h - (acked % WRAP) + WRAP) % WRAP;
}

/** A running total as h on the wire. */
export const wireH = (n: number): string => String(n % WRAP);
