// Read-only files from one folder over HTTP (the Converse.js dist folder): no listing, no path outside the folder.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { Context } from 'koa';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wasm': 'application/wasm',
};

/** Serve `relative` from `root` if it is a file of a known type inside it; false when there is none. */
export async function sendStatic(ctx: Context, root: string, relative: string): Promise<boolean> {
  const type = TYPES[extname(relative).toLowerCase()];
  if (type === undefined || relative.includes('\0')) return false;
  const base = resolve(root);
  const file = resolve(join(base, relative));
  if (!file.startsWith(base + sep)) return false;
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) return false;
    size = info.size;
  } catch {
    return false;
  }
  ctx.type = type;
  ctx.length = size;
  // The files change only with the package version, which is in the URL of nothing: a day, then revalidate.
  ctx.set('Cache-Control', 'public, max-age=86400');
  ctx.set('X-Content-Type-Options', 'nosniff');
  if (ctx.method === 'HEAD') ctx.status = 200;
  else ctx.body = createReadStream(file);
  return true;
}
