// Problem details for HTTP APIs (RFC 9457): every 4xx/5xx body the host or a plugin sends.

import { STATUS_CODES } from 'node:http';
import type { Context } from 'koa';
import { escapeInvisible } from './invisible.js';

export interface ProblemInit {
  status: number;
  /** One sentence that says what to fix. Invisible and bidi characters of quoted input are escaped when sent. */
  detail: string;
  headers?: Record<string, string>;
}

/**
 * Answer with `application/problem+json`; title is the standard reason phrase. The detail quotes user input (a path,
 * a JID, a header), so its invisible and format characters (U+202E, U+2066–2069, U+200B…) go out as \uXXXX escapes.
 */
export function sendProblem(ctx: Context, init: ProblemInit): void {
  ctx.status = init.status;
  for (const [name, value] of Object.entries(init.headers ?? {})) ctx.set(name, value);
  ctx.type = 'application/problem+json';
  ctx.body = JSON.stringify({
    type: 'about:blank',
    title: STATUS_CODES[init.status] ?? 'Unknown Status',
    status: init.status,
    detail: escapeInvisible(init.detail),
  });
}
