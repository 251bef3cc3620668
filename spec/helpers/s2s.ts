// What the s2s specs share: an xmppd instance serving one domain with federation on, its SRV and A records in the
// spec's loopback DNS, a raw c2s login (STARTTLS, PLAIN, bind, initial presence), and a raw s2s peer with a fake
// authoritative server for the domain it claims (dialback, XEP-0220), to test what a server accepts from a peer.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { startTestServer, testTls, type TestServer } from './server.js';
import type { TestDns } from './dns.js';
import { RawClient } from '../host/c2s/helpers.js';

const open = (to: string, ns = 'jabber:client', extra = ''): string =>
  `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'${extra}>`;

/**
 * STARTTLS, PLAIN and bind for an account of `domain`, then initial presence. `plaintext`: no STARTTLS, for a server
 * with c2s_require_encryption off whose certificate is not the one the c2s test client trusts (made for the domain).
 * `presence: false`: no initial presence, for a spec that sends it and reads everything that follows (ejabberd sends
 * stored offline messages before the echo of the presence, which waiting for the echo would consume).
 */
export async function login(port: number, domain: string, user: string, password: string, opts: { plaintext?: boolean; presence?: boolean } = {}): Promise<RawClient> {
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
  if (opts.presence === false) return raw;
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

/**
 * A fake server for `domain` that answers every db:verify "valid" (it is authoritative for `domain`), over STARTTLS
 * as the peers require. Publish it (SRV) for the server under test to ask it.
 */
export async function fakeAuthoritative(domain: string): Promise<{ server: NetServer; port: number }> {
  const { key, cert } = testTls();
  const pair = { key: readFileSync(key), cert: readFileSync(cert) };
  const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='fake1' from='${domain}' version='1.0'>`;
  const attr = (tag: string, name: string): string | undefined => new RegExp(`\\s${name}=["']([^"']+)["']`).exec(tag)?.[1];
  const server = createServer((socket: Socket) => {
    let buffer = '';
    const onPlain = (d: Buffer): void => {
      buffer += d.toString();
      if (buffer.includes('<stream:stream') && !buffer.includes('#sent')) {
        buffer += '#sent';
        socket.write(`${header}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`);
      }
      if (buffer.includes('<starttls')) {
        socket.off('data', onPlain);
        socket.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        const tls = new TLSSocket(socket, { isServer: true, ...pair });
        let secured = '';
        tls.on('data', (d: Buffer) => {
          secured += d.toString();
          if (secured.includes('<stream:stream') && !secured.includes('#sent')) {
            secured += '#sent';
            tls.write(`${header}<stream:features/>`);
          }
          // Attributes in any order and quoting: xmppd and ejabberd write them differently.
          const m = /<db:verify\b[^>]*>/.exec(secured);
          if (m) {
            secured = secured.replace(m[0], '');
            tls.write(`<db:verify from='${domain}' to='${attr(m[0], 'from') ?? ''}' id='${attr(m[0], 'id') ?? ''}' type='valid'/>`);
          }
        });
        tls.on('error', () => undefined);
      }
    };
    socket.on('data', onPlain);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** An s2s stream to `port` from `from` to `to` over STARTTLS, with a dialback key sent; returns the client. */
export async function s2sPeer(port: number, from: string, to: string, key: string): Promise<RawClient> {
  const raw = await RawClient.connect(port);
  const header = open(to, 'jabber:server', ` from='${from}' xmlns:db='jabber:server:dialback'`);
  raw.send(header);
  await raw.waitFor(/<\/stream:features>/, 'features');
  raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await raw.waitFor(/<proceed[^>]*\/>/, 'proceed');
  await raw.starttls();
  raw.send(header);
  await raw.waitFor(/<\/stream:features>/, 'features after TLS');
  raw.send(`<db:result from='${from}' to='${to}'>${key}</db:result>`);
  return raw;
}
