// Reads a request body as raw bytes with a hard limit, for post_msg's payload checks.
// Why not koa-bodyparser (fine for JSON, which the token app will take): it picks its parser from its own Content-Type
// match (type-is rejects `text/plain;`, which RFC 9110 allows, and then reads nothing), decodes to a
// string replacing invalid UTF-8 with U+FFFD (the spec needs a 400), and parses forms with qs, which
// merges repeated fields and builds nested objects from `a[b]=`. The spec needs the bytes, so this does
// the one thing left: count them and stop reading as soon as there are too many.

import type { IncomingMessage } from 'node:http';

export type ReadBodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

/**
 * The body at once, when all of it is already buffered: a short POST usually arrives in the same TCP segment as its
 * headers, and Node has pushed the body into the request before the handler gets here. Taking it with one `read()`
 * saves the promise, the four listeners and the stream's `data`/`end` turns of `readBody` (a visible share of the
 * CPU of a 201). `read()` marks the request as consumed, so Node's server does not dump it; the stream's `end`
 * is left to come or not (nothing here waits for it, and the parser drops the request at the connection's next one).
 * Undefined when the body is not all there yet, has no declared length (chunked), or is over the limit: then
 * `readBody` does the work.
 */
export function takeBufferedBody(req: IncomingMessage, limit: number): ReadBodyResult | undefined {
  const declared = req.headers['content-length'];
  if (declared === undefined || req.readableFlowing !== null) return undefined;
  const length = req.readableLength;
  if (length !== Number(declared) || length > limit) return undefined;
  if (length === 0) return { ok: true, body: Buffer.alloc(0) };
  const body = req.read() as Buffer | null;
  return body === null ? undefined : { ok: true, body };
}

/**
 * Collect the body; resolves `too-large` as soon as more than `limit` bytes arrived, leaving the
 * rest unread (the caller answers 413 with `Connection: close`, so the socket is closed after it).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<ReadBodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: ReadBodyResult): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle({ ok: true, body: Buffer.concat(chunks, size) });
    const onAbort = (): void => settle({ ok: false, reason: 'aborted' });
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    if (req.readableEnded) {
      settle({ ok: false, reason: 'aborted' });
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
    req.resume();
  });
}
