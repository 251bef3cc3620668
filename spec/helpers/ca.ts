// A certificate authority for tests, made with openssl: certificates for XMPP domains with the DNS-ID and the
// XmppAddr (RFC 6120 §13.7.1.4) a peer checks for SASL EXTERNAL (XEP-0178), and self-signed ones it must not trust.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file), for s2s_ca_file. */
  caFile: string;
  /** A key and a certificate signed by the CA for `domain` (DNS:domain and XmppAddr domain unless told otherwise). */
  issue(domain: string, names?: { dns?: boolean; xmppAddr?: boolean }): { key: string; cert: string };
  /** A self-signed key and certificate with the same names: valid names, untrusted chain. */
  selfSigned(domain: string): { key: string; cert: string };
}

const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function san(domain: string, names: { dns?: boolean; xmppAddr?: boolean } = {}): string {
  const parts = [];
  if (names.dns !== false) parts.push(`DNS:${domain}`);
  // id-on-xmppAddr (1.3.6.1.5.5.7.8.5), a UTF8String.
  if (names.xmppAddr !== false) parts.push(`otherName:1.3.6.1.5.5.7.8.5;UTF8:${domain}`);
  return `subjectAltName=${parts.join(',')}`;
}

export function startTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'xmppd-test-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.crt');
  openssl(['req', '-x509', ...EC, '-days', '2', '-subj', '/CN=xmppd test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', caKey, '-out', caFile]);
  let serial = 0;
  return {
    dir,
    caFile,
    issue(domain, names) {
      const n = ++serial;
      const key = join(dir, `${domain}.${n}.key`);
      const csr = join(dir, `${domain}.${n}.csr`);
      const cert = join(dir, `${domain}.${n}.crt`);
      const ext = join(dir, `${domain}.${n}.ext`);
      writeFileSync(ext, `${san(domain, names)}\nbasicConstraints=CA:FALSE\n`);
      openssl(['req', ...EC, '-subj', `/CN=${domain}`, '-keyout', key, '-out', csr]);
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(1000 + n), '-days', '2', '-extfile', ext, '-out', cert]);
      return { key, cert };
    },
    selfSigned(domain) {
      const n = ++serial;
      const key = join(dir, `${domain}.${n}.self.key`);
      const cert = join(dir, `${domain}.${n}.self.crt`);
      openssl(['req', '-x509', ...EC, '-days', '2', '-subj', `/CN=${domain}`, '-addext', san(domain), '-keyout', key, '-out', cert]);
      return { key, cert };
    },
  };
}
