// Benchmark: c2s stream parsing alone (lib/host/util/xmpp-stream/stream-parser.ts), MB/s and stanzas/s over
// realistic client stanzas fed in 16 KiB pieces (a TLS record). BENCH_PARSER=<file> measures another copy.
// Run: node --import tsx bench/c2s-parse.ts [MiB=32] [repeats=5]

import { pathToFileURL } from 'node:url';
import type { Element } from '@xmpp/xml';

interface Parser {
  write(chunk: Buffer): void;
}
type ParserClass = new (
  limit: number,
  events: { onStreamStart(h: Element): void; onElement(e: Element): void; onStreamEnd(): void; onError(f: { condition: string; text: string }): void },
) => Parser;

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const CHUNK = 16 * 1024;

/** The mix a chat client sends: mostly messages, some presence and iq, a little non-ASCII and escaping. */
function stanzas(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 100; i++) {
    const body = i % 5 === 0 ? `Grüße, ça va? 😀 &amp; &lt;ok&gt; #${i}` : `Message number ${i}: ${'lorem ipsum dolor sit amet '.repeat(1 + (i % 8))}`;
    out.push(`<message to='user${i % 17}@localhost' type='chat' id='m${i}'><body>${body}</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='a5c1e2f0-${i}'/></message>`);
    if (i % 10 === 0) out.push(`<presence><show>away</show><status>back at ${i}</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`);
    if (i % 20 === 0) out.push(`<iq type='get' id='r${i}'><query xmlns='jabber:iq:roster'/></iq>`);
    if (i % 25 === 0) out.push(`<iq type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  }
  return out;
}

async function loadParser(): Promise<ParserClass> {
  const file = process.env.BENCH_PARSER ?? new URL('../lib/host/util/xmpp-stream/stream-parser.ts', import.meta.url).pathname;
  const mod = (await import(pathToFileURL(file).href)) as { StreamParser: ParserClass };
  return mod.StreamParser;
}

function once(StreamParser: ParserClass, input: Buffer): { seconds: number; count: number } {
  let count = 0;
  const parser = new StreamParser(262144, {
    onStreamStart: () => undefined,
    onElement: () => count++,
    onStreamEnd: () => undefined,
    onError: (f) => {
      throw new Error(`${f.condition}: ${f.text}`);
    },
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < input.length; i += CHUNK) parser.write(input.subarray(i, i + CHUNK));
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, count };
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 32);
  const repeats = Number(process.argv[3] ?? 5);
  const mix = stanzas().join('');
  const body = mix.repeat(Math.ceil((mib * 1024 * 1024) / Buffer.byteLength(mix)));
  const input = Buffer.from(HEADER + body);
  const StreamParser = await loadParser();
  once(StreamParser, input.subarray(0, 4 * 1024 * 1024)); // warm-up
  const runs = Array.from({ length: repeats }, () => once(StreamParser, input)).sort((a, b) => a.seconds - b.seconds);
  const median = runs[Math.floor(runs.length / 2)]!;
  const mbps = input.length / 1e6 / median.seconds;
  console.log(
    JSON.stringify({
      parser: process.env.BENCH_PARSER ?? 'lib',
      bytes: input.length,
      stanzas: median.count,
      medianSeconds: Number(median.seconds.toFixed(3)),
      mbPerSecond: Number(mbps.toFixed(1)),
      stanzasPerSecond: Math.round(median.count / median.seconds),
    }),
  );
}

await main();
