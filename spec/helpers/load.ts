// Load driver shared by the reliability spec (5,000 POSTs) and bench/nothing-lost.ts (100,000):
// keep-alive POSTs from N workers to online receivers, then a count of what arrived against every 201.

import { Agent, request } from 'node:http';
import { xml, type Element } from '@xmpp/xml';
import type { Client } from '@xmpp/client';
import type { TestServer } from './server.js';
import { startClient, withTimeout } from '../host/c2s/helpers.js';

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function post(
  base: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; localAddress?: string; agent?: Agent; method?: string } = {},
): Promise<Answer> {
  return new Promise((resolvePost, reject) => {
    const req = request(
      `${base}${path}`,
      { method: opts.method ?? 'POST', headers: opts.headers, localAddress: opts.localAddress, agent: opts.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolvePost({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${path} within 10 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The messages a client receives, by id. */
export function collect(c: Client): { ids: string[]; stanzas: Element[] } {
  const got = { ids: [] as string[], stanzas: [] as Element[] };
  c.on('stanza', (s: Element) => {
    if (!s.is('message')) return;
    got.stanzas.push(s);
    got.ids.push(s.attrs.id ?? '');
  });
  return got;
}

export async function waitFor(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A receiving client: logged in, available, its presence processed. */
export async function online(ts: TestServer, username: string, password: string): Promise<{ client: Client; got: ReturnType<typeof collect> }> {
  const client = await startClient({ port: ts.c2sPort, username, password });
  const got = collect(client);
  await client.send(xml('presence'));
  // One ping round trip: the presence has been processed when its answer arrives.
  await withTimeout(client.iqCaller.get(xml('ping', { xmlns: 'urn:xmpp:ping' }), 'localhost'), 'ping');
  return { client, got };
}

export interface LoadResult {
  total: number;
  ms: number;
  statuses: Map<number, number>;
  acked: string[];
  received: string[];
  duplicates: number;
  /** Acknowledged but never received. */
  lost: number;
}

/**
 * POST `total` messages from `connections` keep-alive workers, alternating between the receivers,
 * then wait (bounded) until every acknowledged message has arrived.
 */
export async function runLoad(opts: {
  url: string;
  total: number;
  connections: number;
  sender: [user: string, password: string];
  receivers: Array<{ name: string; got: { ids: string[] } }>;
  deadlineMs: number;
}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const authorization = basic(...opts.sender);
  const statuses = new Map<number, number>();
  const acked: string[] = [];
  const deadline = Date.now() + opts.deadlineMs;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.total && Date.now() < deadline) {
      const i = next++;
      const to = opts.receivers[i % opts.receivers.length]!.name;
      const res = await post(opts.url, `/msg/${to}`, { agent, headers: { authorization, 'content-type': 'text/plain' }, body: `load message ${i}` });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) acked.push((JSON.parse(res.body) as { id: string }).id);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const ms = Date.now() - started;
  agent.destroy();
  const count = (): number => opts.receivers.reduce((n, r) => n + r.got.ids.length, 0);
  await waitFor('every acknowledged message to arrive', () => count() >= acked.length, 30_000).catch(() => undefined);
  const received = opts.receivers.flatMap((r) => r.got.ids);
  const receivedSet = new Set(received);
  return {
    total: next,
    ms,
    statuses,
    acked,
    received,
    duplicates: received.length - receivedSet.size,
    lost: acked.filter((id) => !receivedSet.has(id)).length,
  };
}
