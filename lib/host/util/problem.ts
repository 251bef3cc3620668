// Problem details for HTTP APIs (RFC 9457): every 4xx/5xx body the host or a plugin sends.

import { STATUS_CODES } from 'node:http';
import type { Context } from 'koa';

export interface ProblemInit {
  status: number;
  /** One sentence that says what to fix. */
  detail: string;
  headers?: Record<string, string>;
}

/** Answer with `application/problem+json`; title is the standard reason phrase. */
export function sendProblem(ctx: Context, init: ProblemInit): void {
  ctx.status = init.status;
  for (const [name, value] of Object.entries(init.headers ?? {})) ctx.set(name, value);
  ctx.type = 'application/problem+json';
  ctx.body = JSON.stringify({
    type: 'about:blank',
    title: STATUS_CODES[init.status] ?? 'Unknown Status',
    status: init.status,
    detail: init.detail,
  });
}
