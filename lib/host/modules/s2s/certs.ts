// Is a peer's certificate valid for an XMPP domain (RFC 6125 §6 with RFC 6120 §13.7.1.2, XEP-0178)? DNS-ID (one
// wildcard label), the XmppAddr otherName, the SRV-ID `_xmpp-server.<domain>`; CN-ID only without DNS names.
// Prosody's util/x509.lua verify_identity.

import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from '../../net/connection.js';

/** The names of `kind` (`XmppAddr`, `SRVName`) in Node's subjectAltName text (`othername:XmppAddr:b.test, DNS:…`). */
function otherNames(cert: X509Certificate, kind: string): string[] {
  const san = cert.subjectAltName ?? '';
  const out: string[] = [];
  // Node quotes a value with separators or quotes in it as a JSON string.
  const entry = new RegExp(`(?:^|, )othername:${kind}:("(?:[^"\\\\]|\\\\.)*"|[^,]*)`, 'g');
  for (const m of san.matchAll(entry)) {
    const raw = m[1]!;
    try {
      out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
    } catch {
      // A value we cannot read names nothing.
    }
  }
  return out;
}

const same = (a: string, b: string): boolean => a.toLowerCase().replace(/\.$/, '') === b.toLowerCase();

export function isCertificateFor(cert: X509Certificate, domain: string): boolean {
  if (cert.checkHost(domain, { wildcards: true, partialWildcards: false, multiLabelWildcards: false }) !== undefined) return true;
  if (otherNames(cert, 'XmppAddr').some((name) => same(name, domain))) return true;
  return otherNames(cert, 'SRVName').some((name) => same(name, `_xmpp-server.${domain}`));
}

/** Why a peer's certificate does not authenticate `domain`, or undefined when it does (chain trusted and name valid). */
export function certificateProblem(peer: PeerCertificate | undefined, domain: string): string | undefined {
  if (!peer?.cert) return 'it presented no certificate';
  if (!peer.isTrusted) return `its certificate is not trusted (${peer.error ?? 'unverified'})`;
  if (!isCertificateFor(peer.cert, domain)) return `its certificate is not valid for ${domain}`;
  return undefined;
}
