// Reads a request body as raw bytes with a hard limit, for post_msg's payload checks.
// Why not koa-bodyparser (the project's body parser): it picks its parser from its own Content-Type
// match (type-is rejects `text/plain;`, which RFC 9110 allows, and then reads nothing), decodes to a
// string replacing invalid UTF-8 with U+FFFD (the spec needs a 400), and parses forms with qs, which
// merges repeated fields and builds nested objects from `a[b]=`. The spec needs the bytes, so this does
// the one thing left: count them and stop reading as soon as there are too many.

import type { IncomingMessage } from 'node:http';

export type ReadBodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

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
