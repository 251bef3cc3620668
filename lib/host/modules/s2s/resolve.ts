// Where a remote XMPP server listens (RFC 6120 §3.2, XEP-0368): SRV `_xmpps-server._tcp` (direct TLS) and
// `_xmpp-server._tcp` (STARTTLS), ordered by priority and weight; without SRV records the domain itself on 5269.
// Prosody's net/resolvers/service.lua.

import { Resolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface Target {
  /** An IP address to connect to. */
  address: string;
  port: number;
  /** XEP-0368: TLS from the first byte. */
  isDirectTls: boolean;
  /** The SRV target (or the domain) the address belongs to, for logs. */
  host: string;
}

/** A domain that cannot be reached by name: no such domain, or its SRV says "no service" (RFC 2782 "."). */
export class ResolveError extends Error {}

const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA', 'ESERVFAIL', 'ENONAME', 'NXDOMAIN']);

export class TargetResolver {
  private readonly resolver: Resolver | undefined;

  /** `servers` like `127.0.0.1:5353`; empty: the system's resolver (and /etc/hosts for addresses). */
  constructor(servers: readonly string[], timeoutMs = 5_000) {
    if (servers.length === 0) return;
    this.resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
    this.resolver.setServers([...servers]);
  }

  async targets(domain: string): Promise<Target[]> {
    const [secure, plain] = await Promise.all([this.srv(`_xmpps-server._tcp.${domain}`), this.srv(`_xmpp-server._tcp.${domain}`)]);
    const records = [...secure.map((r) => ({ ...r, isDirectTls: true })), ...plain.map((r) => ({ ...r, isDirectTls: false }))];
    // A single "." target: the domain says it offers no such service (RFC 2782, RFC 6120 §3.2.1).
    const usable = records.filter((r) => r.name !== '' && r.name !== '.');
    if (records.length > 0 && usable.length === 0) throw new ResolveError(`${domain} publishes no XMPP server service (SRV target ".")`);
    // Lower priority first; within one, heavier first, direct TLS before STARTTLS (XEP-0368 §3).
    usable.sort((a, b) => a.priority - b.priority || b.weight - a.weight || Number(b.isDirectTls) - Number(a.isDirectTls));
    const hosts = usable.length > 0 ? usable.map((r) => ({ host: r.name, port: r.port, isDirectTls: r.isDirectTls })) : [{ host: domain, port: 5269, isDirectTls: false }];
    const out: Target[] = [];
    let lastError: unknown;
    for (const h of hosts) {
      try {
        for (const address of await this.addresses(h.host)) out.push({ ...h, address });
      } catch (err) {
        lastError = err;
      }
    }
    if (out.length === 0) throw new ResolveError(`${domain} has no address (${describe(lastError) ?? 'no A or AAAA record'})`);
    return out;
  }

  private async srv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>> {
    try {
      return this.resolver ? await this.resolver.resolveSrv(name) : await new Resolver().resolveSrv(name);
    } catch (err) {
      if (NO_RECORDS.has((err as NodeJS.ErrnoException).code ?? '')) return [];
      throw new ResolveError(`looking up ${name} failed (${describe(err)})`);
    }
  }

  private async addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    if (!this.resolver) return (await lookup(host, { all: true })).map((a) => a.address);
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (found.length === 0) throw v4.status === 'rejected' ? v4.reason : new ResolveError(`${host} has no address`);
    return found;
  }
}

function describe(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND') return 'no such domain';
  return code ?? (err as Error).message;
}
