// A DNS server for tests on 127.0.0.1 (UDP, an ephemeral port) answering SRV, A and AAAA from a table the spec
// fills, NXDOMAIN for any other name: s2s finds its peers without the Internet (dns_servers: [server.address]).

import { createSocket, type Socket } from 'node:dgram';
import * as packet from 'dns-packet';

export interface SrvRecord {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface TestDns {
  /** `127.0.0.1:<port>`, for the dns_servers key. */
  address: string;
  port: number;
  /** SRV records of a name such as `_xmpp-server._tcp.a.test`. */
  srv(name: string, records: SrvRecord[]): void;
  /** A records of a name. */
  a(name: string, addresses: string[]): void;
  /** Answer questions about this name only after `ms` (a slow resolver, for deadlines). */
  delay(name: string, ms: number): void;
  /** Names asked for so far, as `TYPE name`. */
  queries: string[];
  close(): Promise<void>;
}

const NXDOMAIN = 3;

export async function startTestDns(): Promise<TestDns> {
  const srv = new Map<string, SrvRecord[]>();
  const a = new Map<string, string[]>();
  const queries: string[] = [];
  const delays = new Map<string, number>();
  const socket: Socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    let query: packet.Packet;
    try {
      query = packet.decode(msg);
    } catch {
      return;
    }
    const answers: packet.Answer[] = [];
    let isKnown = false;
    let wait = 0;
    for (const q of query.questions ?? []) {
      const name = q.name.toLowerCase();
      queries.push(`${q.type} ${name}`);
      wait = Math.max(wait, delays.get(name) ?? 0);
      if (srv.has(name) || a.has(name)) isKnown = true;
      if (q.type === 'SRV') {
        for (const r of srv.get(name) ?? []) answers.push({ type: 'SRV', name: q.name, ttl: 5, data: { target: r.target, port: r.port, priority: r.priority ?? 0, weight: r.weight ?? 0 } });
      } else if (q.type === 'A') {
        for (const address of a.get(name) ?? []) answers.push({ type: 'A', name: q.name, ttl: 5, data: address });
      }
    }
    const response = packet.encode({
      type: 'response',
      id: query.id,
      flags: packet.AUTHORITATIVE_ANSWER | packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (isKnown ? 0 : NXDOMAIN),
      questions: query.questions,
      answers,
    });
    const answer = (): void => socket.send(response, rinfo.port, rinfo.address);
    if (wait > 0) setTimeout(answer, wait).unref();
    else answer();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    srv: (name, records) => void srv.set(name.toLowerCase(), records),
    a: (name, addresses) => void a.set(name.toLowerCase(), addresses),
    delay: (name, ms) => void delays.set(name.toLowerCase(), ms),
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
