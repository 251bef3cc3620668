// Benchmark child: the ceiling — a bare koa app that parses the same HTTP Basic header, reads the body and
// answers 201 with a JSON body shaped like post_msg's, doing no XMPP work. Run with BENCH_USER/BENCH_PASSWORD set.

import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Koa from 'koa';

const expectedUser = Buffer.from(process.env.BENCH_USER ?? '', 'utf8');
const expectedPassword = Buffer.from(process.env.BENCH_PASSWORD ?? '', 'utf8');
const MAX_BODY_BYTES = 262_144;

function isSame(given: string, expected: Buffer): boolean {
  const buf = Buffer.from(given, 'utf8');
  return buf.length === expected.length && timingSafeEqual(buf, expected);
}

/** `Basic base64(user:password)` → true when it names the expected account (RFC 7617 §2). */
function isAuthorized(header: string | undefined): boolean {
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'basic') return false;
  const decoded = Buffer.from(header.slice(space + 1).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return false;
  return isSame(decoded.slice(0, colon), expectedUser) && isSame(decoded.slice(colon + 1), expectedPassword);
}

async function readBody(req: IncomingMessage): Promise<number> {
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
  }
  return size;
}

const app = new Koa();
app.silent = true;
app.use(async (ctx) => {
  if (!isAuthorized(ctx.get('authorization') || undefined)) {
    ctx.status = 401;
    ctx.set('WWW-Authenticate', 'Basic realm="ceiling"');
    return;
  }
  await readBody(ctx.req);
  const to = `${decodeURIComponent(ctx.path.split('/').pop() ?? '')}@localhost`;
  ctx.status = 201;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify({ id: randomUUID(), to, outcome: 'delivered' });
});

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.send?.({ msg: 'bench-ready', http: port });
});

const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
