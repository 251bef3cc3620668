// What the s2s specs share: an xmppd instance serving one domain with federation on, its SRV and A records in the
// spec's loopback DNS, and a raw c2s login (STARTTLS, PLAIN, bind, initial presence).

import { startTestServer, type TestServer } from './server.js';
import type { TestDns } from './dns.js';
import { RawClient } from '../host/c2s/helpers.js';

const open = (to: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`;

/**
 * STARTTLS, PLAIN and bind for an account of `domain`, then initial presence. `plaintext`: no STARTTLS, for a server
 * with c2s_require_encryption off whose certificate is not the one the c2s test client trusts (made for the domain).
 */
export async function login(port: number, domain: string, user: string, password: string, opts: { plaintext?: boolean } = {}): Promise<RawClient> {
  const raw = await RawClient.connect(port);
  raw.send(open(domain));
  await raw.waitFor(/<\/stream:features>/, 'features');
  if (!opts.plaintext) {
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await raw.waitFor(/<proceed[^>]*\/>/, 'proceed');
    await raw.starttls();
    raw.send(open(domain));
    await raw.waitFor(/<\/stream:features>/, 'features after TLS');
  }
  raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
  await raw.waitFor(/<success/, 'SASL success');
  raw.send(open(domain));
  await raw.waitFor(/<\/stream:features>/, 'features after SASL');
  raw.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>");
  await raw.waitFor(/<jid>/, 'bind');
  raw.send('<presence/>');
  await raw.waitFor(/<presence/, 'own presence');
  return raw;
}

/** The SRV and A records that make `domain` found at the server's first s2s port. */
export function publish(dns: TestDns, domain: string, ts: TestServer): void {
  dns.srv(`_xmpp-server._tcp.${domain}`, [{ target: `xmpp.${domain}`, port: ts.server.ports.ports('s2s')[0]! }]);
  dns.a(`xmpp.${domain}`, ['127.0.0.1']);
}

/** An instance serving `domain` with alice, bob and carol, federating through the spec's DNS; `extra` over the config. */
export async function federatedServer(domain: string, dns: TestDns, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const ts = await startTestServer({
    config: { virtual_hosts: { [domain]: {} }, http_default_host: domain, modules_enabled: [], s2s_ports: [0], s2s_interfaces: ['127.0.0.1'], dns_servers: [dns.address], s2s_timeout: 10, ...extra },
    users: [[`alice@${domain}`, 'alice-pw'], [`bob@${domain}`, 'bob-pw'], [`carol@${domain}`, 'carol-pw']],
  });
  publish(dns, domain, ts);
  return ts;
}
