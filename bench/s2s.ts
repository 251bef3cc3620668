// BENCH_SERIES=s2s: messages per second over server-to-server streams on one machine, in one run: xmppd→xmppd,
// xmppd→Prosody, Prosody→xmppd and Prosody→Prosody (Debian's prosody, spec/helpers/prosody.ts), the peers found
// through the specs' loopback DNS server (spec/helpers/dns.ts; Prosody through its test plugin). A c2s client of the
// sending server writes chat messages to an account of the receiving server, whose client counts them.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Child } from './child.js';
import { processCpuSeconds } from './cpu.js';
import { S2sBenchClient } from './s2s-client.js';
import { fixed, integer, markdownTable } from './table.js';
import type { BenchDir } from './setup.js';
import type { Runtime } from './build.js';
import { openUsers, readConfig } from '../lib/host/core/server.js';
import { startTestDns, type TestDns } from '../spec/helpers/dns.js';
import { freePort, prosodyMissing, startProsody, type ProsodyPeer } from '../spec/helpers/prosody.js';

/** Messages in flight between the sender's write and the receiver's count: bounded, so no server queues without end. */
const WINDOW = 500;
/** Messages written in one socket write. */
const BATCH = 50;
const WARMUP_MESSAGES = 200;
/** After the sending time, how long the last messages may take to arrive. */
const DRAIN_MS = 30_000;
const PASSWORD = 'bench-s2s-pw';

export interface S2sRow {
  pair: string;
  samples: Array<{ messages: number; seconds: number; cpuSender: number; cpuReceiver: number; lost: number }>;
}

interface Peer {
  domain: string;
  c2sPort: number;
  s2sPort: number;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface S2sOptions {
  bench: BenchDir;
  runtime: Runtime;
  nodeFlags: string[];
  root: string;
  seconds: number;
  repeat: number;
  log(text: string): void;
}

export async function s2sSeries(opts: S2sOptions): Promise<S2sRow[]> {
  const missing = prosodyMissing();
  if (missing) throw new Error(`BENCH_SERIES=s2s needs Debian's prosody: ${missing}`);
  opts.log('s2s: xmppd a.test and b.test, Prosody p.test and q.test, a loopback DNS server');
  const dns = await startTestDns();
  const peers: Peer[] = [];
  const clients: S2sBenchClient[] = [];
  try {
    const ports = { a: await freePort(), b: await freePort(), p: await freePort(), q: await freePort() };
    const a = await startXmppd(opts, 'a.test', ports.a, dns);
    peers.push(a);
    const b = await startXmppd(opts, 'b.test', ports.b, dns);
    peers.push(b);
    const p = await prosodyPeer('p.test', ports.p, { 'a.test': ports.a, 'b.test': ports.b, 'q.test': ports.q });
    peers.push(p);
    const q = await prosodyPeer('q.test', ports.q, { 'p.test': ports.p });
    peers.push(q);
    for (const peer of [a, b, p]) {
      dns.srv(`_xmpp-server._tcp.${peer.domain}`, [{ target: `xmpp.${peer.domain}`, port: peer.s2sPort }]);
      dns.a(`xmpp.${peer.domain}`, ['127.0.0.1']);
    }
    const pairs: Array<{ name: string; from: Peer; to: Peer }> = [
      { name: 'xmppd → xmppd', from: a, to: b },
      { name: 'xmppd → Prosody', from: a, to: p },
      { name: 'Prosody → xmppd', from: p, to: b },
      { name: 'Prosody → Prosody', from: p, to: q },
    ];
    const rows: S2sRow[] = pairs.map((pair) => ({ pair: pair.name, samples: [] }));
    const sessions = [];
    for (const [n, pair] of pairs.entries()) {
      // A resource per pair: an account sends (or receives) in more than one pair.
      const sender = await S2sBenchClient.login(pair.from.c2sPort, pair.from.domain, 'alice', PASSWORD, `pair${n}`);
      const receiver = await S2sBenchClient.login(pair.to.c2sPort, pair.to.domain, 'bob', PASSWORD, `pair${n}`);
      clients.push(sender, receiver);
      const to = `bob@${pair.to.domain}/pair${n}`;
      opts.log(`s2s: warming up ${pair.name}`);
      // Sets up the stream (and dialback both ways) before anything is timed.
      await run(sender, receiver, to, { count: WARMUP_MESSAGES });
      sessions.push({ pair, sender, receiver, to });
    }
    for (let i = 0; i < opts.repeat; i++) {
      for (const [n, s] of sessions.entries()) {
        opts.log(`s2s: ${s.pair.name}, sample ${i + 1}`);
        const cpu0 = [s.pair.from.cpuSeconds(), s.pair.to.cpuSeconds()];
        const result = await run(s.sender, s.receiver, s.to, { seconds: opts.seconds });
        rows[n]!.samples.push({ ...result, cpuSender: s.pair.from.cpuSeconds() - cpu0[0]!, cpuReceiver: s.pair.to.cpuSeconds() - cpu0[1]! });
      }
    }
    return rows;
  } finally {
    for (const c of clients) c.close();
    for (const peer of peers.reverse()) await peer.stop().catch(() => undefined);
    await dns.close();
  }

  async function prosodyPeer(domain: string, s2sPort: number, known: Record<string, number>): Promise<Peer> {
    const peer: ProsodyPeer = await startProsody({
      domain, users: [['alice', PASSWORD], ['bob', PASSWORD]], tls: { cert: opts.bench.cert, key: opts.bench.key }, peers: known, s2sPort, logLevel: 'info',
    });
    return { domain, c2sPort: peer.c2sPort, s2sPort, cpuSeconds: () => processCpuSeconds(peer.pid), stop: () => peer.stop() };
  }
}

/** The real server as a child (bench/server-child), compiled like the other series, its accounts made first. */
async function startXmppd(opts: S2sOptions, domain: string, s2sPort: number, dns: TestDns): Promise<Peer> {
  const c2sPort = await freePort();
  const dataDir = join(opts.bench.dir, `s2s-${domain}`);
  mkdirSync(dataDir, { recursive: true });
  const path = join(opts.bench.dir, `s2s-${domain}.yaml`);
  const config = {
    data_dir: dataDir,
    log_level: 'warn',
    http_ports: [0],
    http_interfaces: ['127.0.0.1'],
    c2s_ports: [c2sPort],
    c2s_direct_tls_ports: [],
    c2s_interfaces: ['127.0.0.1'],
    s2s_ports: [s2sPort],
    s2s_interfaces: ['127.0.0.1'],
    dns_servers: [dns.address],
    tls: { cert: opts.bench.cert, key: opts.bench.key },
    http_default_host: domain,
    modules_enabled: [],
    virtual_hosts: { [domain]: {} },
  };
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  const { config: parsed } = readConfig({ configPath: path });
  const { storage, users } = await openUsers(parsed);
  try {
    for (const user of ['alice', 'bob']) await users.create(`${user}@${domain}`, PASSWORD);
  } finally {
    storage.close();
  }
  const child = await Child.start({ name: `xmppd (${domain})`, script: opts.runtime.file('bench/server-child'), args: [path], nodeFlags: opts.nodeFlags, cwd: opts.root });
  return { domain, c2sPort, s2sPort, cpuSeconds: () => child.cpuSeconds(), stop: () => child.stop() };
}

/**
 * Send as fast as the window allows, for `seconds` or `count` messages, then wait for the rest to arrive. The time
 * runs from the first write to the last message counted.
 */
async function run(sender: S2sBenchClient, receiver: S2sBenchClient, to: string, limit: { seconds?: number; count?: number }): Promise<{ messages: number; seconds: number; lost: number }> {
  const base = receiver.received;
  const start = process.hrtime.bigint();
  const stopAt = limit.seconds === undefined ? Infinity : Date.now() + limit.seconds * 1000;
  const stanza = `<message to='${to}' type='chat'><body>s2s bench message, a short line of text</body></message>`;
  const batch = stanza.repeat(BATCH);
  let sent = 0;
  while (Date.now() < stopAt && (limit.count === undefined || sent < limit.count)) {
    const inFlight = sent - (receiver.received - base);
    if (inFlight + BATCH > WINDOW) {
      await receiver.waitFor(base + sent - WINDOW + BATCH, 1_000);
      if (receiver.received - base === sent - inFlight) throw new Error(`s2s bench: nothing arrived at ${to} for 1 s (${sent - inFlight} of ${sent} so far)`);
      continue;
    }
    if (!sender.write(batch)) await sender.drain();
    sent += BATCH;
  }
  await receiver.waitFor(base + sent, DRAIN_MS);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const messages = receiver.received - base;
  return { messages, seconds, lost: sent - messages };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export function renderS2sTable(rows: readonly S2sRow[]): string {
  const rate = (s: S2sRow['samples'][number]): number => s.messages / s.seconds;
  return markdownTable<S2sRow>([
    { title: 'sender → receiver (s2s)', align: 'left', value: (r) => r.pair },
    { title: 'msg/s (median)', value: (r) => integer(median(r.samples.map(rate))) },
    { title: 'min–max', value: (r) => `${integer(Math.min(...r.samples.map(rate)))}–${integer(Math.max(...r.samples.map(rate)))}` },
    { title: 'received', value: (r) => integer(r.samples.reduce((n, s) => n + s.messages, 0)) },
    { title: 'lost', value: (r) => integer(r.samples.reduce((n, s) => n + s.lost, 0)) },
    {
      title: 'CPU ms / 1,000 msgs sender+receiver',
      value: (r) => {
        const n = r.samples.reduce((m, s) => m + s.messages, 0) / 1000;
        const sum = (k: 'cpuSender' | 'cpuReceiver'): number => r.samples.reduce((m, s) => m + s[k], 0) * 1000;
        return `${fixed(sum('cpuSender') / n, 0)}+${fixed(sum('cpuReceiver') / n, 0)}`;
      },
    },
  ], rows);
}
