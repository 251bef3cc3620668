// The client address behind reverse proxies: X-Forwarded-For is believed only from `trusted_proxies`
// (Prosody's mod_http trusted_proxies and its get_ip_from_request); throttles and logs use the result.

import { BlockList, isIP } from 'node:net';

/** A BlockList of the trusted proxies: addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`). */
export function trustedProxies(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const version = isIP(address);
  return version !== 0 && list.check(address, version === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address: the peer itself unless it is a trusted proxy; then X-Forwarded-For read from the right,
 * the first address that is not a trusted proxy (anything left of it may be made up by the client). When every
 * hop is trusted, the leftmost one.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | undefined, trusted: BlockList): string | undefined {
  if (forwardedFor === undefined || peer === undefined || !isTrusted(trusted, peer)) return peer;
  const hops = forwardedFor.split(',').map((h) => h.trim()).filter((h) => h !== '');
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    // A hop that is not an address (`unknown`, obfuscated) ends what can be believed.
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return client;
}
