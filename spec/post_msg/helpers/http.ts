// A small HTTP client for specs: full control over headers (Host, Origin, Authorization) and over how
// the body is sent (one piece, or chunked without Content-Length), on node:http only.

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface SpecResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface SpecRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body in these pieces with Transfer-Encoding: chunked (no Content-Length). */
  chunks?: AsyncIterable<Buffer> | Iterable<Buffer>;
  timeoutMs?: number;
  /** Connect from this local address (another loopback address, 127.0.0.2, is another client). */
  localAddress?: string;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

export function request(url: string, opts: SpecRequest = {}): Promise<SpecResponse> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined && opts.chunks === undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const req = httpRequest(url, { method: opts.method ?? 'POST', headers, agent: false, localAddress: opts.localAddress });
    const timer = setTimeout(() => {
      req.destroy(new Error(`request to ${url} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    if (opts.chunks !== undefined) {
      req.flushHeaders();
      void (async () => {
        try {
          for await (const chunk of opts.chunks!) {
            if (req.destroyed || req.writableEnded) return;
            if (!req.write(chunk)) await new Promise<void>((r) => { req.once('drain', r); req.once('close', r); });
          }
          req.end();
        } catch {
          // The server may close the connection mid-body (413); the response tells the rest.
        }
      })();
    } else {
      req.end(opts.body);
    }
  });
}
