// Body reading (lib/post_msg/read-body.ts) on a real node:http server fed over raw TCP, so each test decides how the
// request is cut into segments: all at once (the body is already buffered: takeBufferedBody), headers first and the
// body later, chunked, several requests on one keep-alive connection.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { readBody, takeBufferedBody } from '../../lib/post_msg/read-body.js';

const LIMIT = 64;

/** Answers `<path>:<how the body was read>:<body>`; `buffered` when takeBufferedBody had all of it. */
async function answer(req: IncomingMessage): Promise<string> {
  // As in post_msg's handler, the body is read after some awaits (credentials, rate limit).
  await new Promise((r) => setImmediate(r));
  const buffered = takeBufferedBody(req, LIMIT);
  const read = buffered ?? (await readBody(req, LIMIT));
  const how = buffered ? 'buffered' : 'stream';
  return read.ok ? `${req.url}:${how}:${read.body.toString('utf8')}` : `${req.url}:${how}:${read.reason}`;
}

/** Writes each part after the previous one with a pause; resolves with everything the server sent back. */
async function exchange(port: number, parts: string[], answers: number): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let received = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  await new Promise((r) => socket.once('connect', r));
  for (const part of parts) {
    socket.write(part);
    await new Promise((r) => setTimeout(r, 40));
  }
  const deadline = Date.now() + 3000;
  while (bodies(received).length < answers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  return bodies(received);
}

/** The bodies of the server's 200 answers (each has a Content-Length, in bytes). */
function bodies(raw: Buffer): string[] {
  const out: string[] = [];
  let rest = raw;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return out;
    const length = Number(/content-length: (\d+)/i.exec(rest.subarray(0, end).toString('latin1'))?.[1] ?? NaN);
    if (rest.length < end + 4 + length) return out;
    out.push(rest.subarray(end + 4, end + 4 + length).toString('utf8'));
    rest = rest.subarray(end + 4 + length);
  }
}

const post = (path: string, body: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('reading the request body', () => {
  let server: Server;
  let port: number;

  before(async () => {
    server = createServer((req, res) => {
      void answer(req).then((text) => res.end(text));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  it('takes a body that came with its headers at once, byte for byte', async () => {
    assert.deepEqual(await exchange(port, [post('/a', 'db1 is down ✓')], 1), ['/a:buffered:db1 is down ✓']);
    assert.deepEqual(await exchange(port, [post('/empty', '')], 1), ['/empty:buffered:']);
  });

  it('waits for a body that comes after its headers, or only partly with them', async () => {
    const whole = post('/late', 'later');
    const cut = whole.indexOf('\r\n\r\n') + 4;
    assert.deepEqual(await exchange(port, [whole.slice(0, cut), whole.slice(cut)], 1), ['/late:stream:later']);
    assert.deepEqual(await exchange(port, [whole.slice(0, cut + 2), whole.slice(cut + 2)], 1), ['/late:stream:later']);
  });

  it('reads a chunked body as a stream', async () => {
    const chunked = 'POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n';
    assert.deepEqual(await exchange(port, [chunked], 1), ['/chunked:stream:abcde']);
  });

  it('leaves a body over the limit to the stream, which stops at the limit', async () => {
    assert.deepEqual(await exchange(port, [post('/big', 'x'.repeat(LIMIT + 1))], 1), ['/big:stream:too-large']);
  });

  it('keeps the requests of one keep-alive connection apart, sent one by one or pipelined', async () => {
    const three = [post('/1', 'one'), post('/2', ''), post('/3', 'three')];
    const expected = ['/1:buffered:one', '/2:buffered:', '/3:buffered:three'];
    assert.deepEqual(await exchange(port, three, 3), expected);
    const pipelined = await exchange(port, [three.join('')], 3);
    assert.deepEqual(pipelined.map((a) => a.replace(':stream:', ':buffered:')), expected);
  });
});
