// The HTTP side of http_file_share (XEP-0363 §5, Prosody's mod_http_file_share): PUT /<slot>/<name> with the
// slot's token stores exactly the announced bytes, streamed to disk; GET serves them with headers that keep a
// browser from running what was uploaded.

import Router from 'koa-router';
import type { Context } from 'koa';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, rm, stat } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sendProblem } from '../../api.js';
import { verifyToken } from './token.js';
import type { Upload, UploadStore } from './store.js';

/** Types a browser may show in place (Prosody's http_file_share_safe_file_types); anything else is a download. */
// DIFF: image/svg+xml is a download here: it can carry script (the CSP sandbox stops it, an old browser may not).
export function isInlineType(type: string): boolean {
  const t = type.toLowerCase();
  if (t === 'image/svg+xml') return false;
  return t.startsWith('image/') || t.startsWith('video/') || t.startsWith('audio/') || t === 'text/plain';
}

/** RFC 6266 Content-Disposition with the name in RFC 8187 form (any character) and an ASCII fallback. */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

class TooLarge extends Error {}

const GONE = 'This upload slot has expired; request a new one.';

/** Passes at most `limit` bytes; one more fails the stream (the body is longer than the slot). */
function byteLimit(limit: number): Transform & { count: number } {
  let count = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      count += chunk.length;
      (t as Transform & { count: number }).count = count;
      if (count > limit) return done(new TooLarge());
      done(null, chunk);
    },
  }) as Transform & { count: number };
  t.count = 0;
  return t;
}

export function createFileShareRouter(store: UploadStore, opts: { secret: Buffer; now: () => number; log: { warn(o: object, m: string): void } }): Router {
  const router = new Router();
  /** Slots with a PUT running: a second one at the same time is a conflict, not a race on the file. */
  const inProgress = new Set<string>();

  router.put('/:slot/:name', async (ctx: Context) => {
    const slot = (ctx.params as { slot: string }).slot;
    const auth = ctx.get('authorization');
    const bearer = /^Bearer ([\w.-]+)$/i.exec(auth)?.[1];
    if (!bearer) {
      return sendProblem(ctx, { status: 401, detail: 'Send the Authorization header the upload slot gave (XEP-0363 §5).', headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    const check = verifyToken(opts.secret, bearer, slot, opts.now());
    if (!check.ok) {
      const detail = check.reason === 'expired' ? 'This upload slot has expired; request a new one.' : 'This token does not allow an upload here.';
      return sendProblem(ctx, { status: 401, detail, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
    const upload = store.get(slot);
    if (!upload) return sendProblem(ctx, { status: 401, detail: GONE });
    const length = ctx.get('content-length');
    if (!/^\d{1,16}$/.test(length)) {
      return sendProblem(ctx, { status: 400, detail: `Send Content-Length: ${upload.size}, the size the slot was requested for.` });
    }
    if (Number(length) > upload.size) return sendProblem(ctx, { status: 413, detail: `This slot takes exactly ${upload.size} bytes, not ${length}.` });
    if (Number(length) < upload.size) return sendProblem(ctx, { status: 400, detail: `This slot takes exactly ${upload.size} bytes, not ${length}.` });
    if (inProgress.has(slot) || (await exists(store.dataPath(slot)))) {
      return sendProblem(ctx, { status: 409, detail: 'A file was already uploaded to this slot; request a new slot for another.' });
    }
    inProgress.add(slot);
    const part = store.partPath(slot);
    const limit = byteLimit(upload.size);
    try {
      // Streamed to disk: memory holds one chunk whatever the size. wx: never over another's file.
      await pipeline(ctx.req, limit, createWriteStream(part, { flags: 'wx', mode: 0o600 }));
      if (limit.count !== upload.size) {
        await rm(part, { force: true });
        return sendProblem(ctx, { status: 400, detail: `The body had ${limit.count} bytes; this slot takes exactly ${upload.size}.` });
      }
      // link, not rename: fails if the file exists, so a finished upload is never replaced.
      await link(part, store.dataPath(slot));
      await rm(part, { force: true });
      // The slot went while the body streamed in (its account was deleted, or it expired): keep nothing of it.
      if (!store.get(slot)) {
        await rm(store.dataPath(slot), { force: true });
        return sendProblem(ctx, { status: 401, detail: GONE });
      }
    } catch (err) {
      await rm(part, { force: true });
      if (!store.get(slot)) return sendProblem(ctx, { status: 401, detail: GONE });
      if (err instanceof TooLarge) return sendProblem(ctx, { status: 413, detail: `The body is longer than the ${upload.size} bytes this slot takes.` });
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return sendProblem(ctx, { status: 409, detail: 'A file was already uploaded to this slot.' });
      // The client went away mid-body: nothing to answer.
      if (ctx.req.destroyed || (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        opts.log.warn({ slot }, 'upload cut short by the client');
        return sendProblem(ctx, { status: 400, detail: 'The upload was cut short.' });
      }
      throw err;
    } finally {
      inProgress.delete(slot);
    }
    ctx.status = 201;
  });

  const serve = async (ctx: Context): Promise<void> => {
    const slot = (ctx.params as { slot: string }).slot;
    const upload = store.get(slot);
    const size = upload && (await fileSize(store.dataPath(slot)));
    if (!upload || size === undefined) return sendProblem(ctx, { status: 404, detail: 'No file here: it was never uploaded, or it has expired.' });
    setFileHeaders(ctx, upload, size);
    ctx.body = ctx.method === 'HEAD' ? null : createReadStream(store.dataPath(slot));
  };
  router.get('/:slot/:name', serve);
  router.head('/:slot/:name', serve);
  return router;
}

function setFileHeaders(ctx: Context, upload: Upload, size: number): void {
  ctx.status = 200;
  ctx.length = size;
  ctx.set({
    // As stored (Koa's ctx.type would add a charset the uploader never said).
    'Content-Type': upload.type,
    'Content-Disposition': contentDisposition(isInlineType(upload.type) ? 'inline' : 'attachment', upload.filename),
    'X-Content-Type-Options': 'nosniff',
    // Whatever was uploaded runs nothing and loads nothing (Prosody sets the same policy).
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
    'Cache-Control': 'public, max-age=31536000, immutable',
  });
}

async function exists(path: string): Promise<boolean> {
  return (await fileSize(path)) !== undefined;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}
