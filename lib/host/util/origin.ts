// Web origins (RFC 6454) and the cross-site decision the http module makes for every app (Fetch standard §3.2).
// DIFF: Prosody's mod_http answers cross-site posts, so a browser holding cached Basic credentials could be made
// to act by any web page; here an unsafe request from an origin the app does not allow is refused.

export interface OriginInput {
  /** The `Origin` request header, if any. */
  origin: string | undefined;
  /** The `Sec-Fetch-Site` request header, if any. */
  secFetchSite: string | undefined;
  /** This server's own origin as the request sees it: `http://host:port` from the scheme and `Host`. */
  selfOrigin: string;
  /** The origins the app allows (post_msg's `cors_origins` option). */
  allowedOrigins: readonly string[];
}

export type OriginDecision =
  /** Same-origin or non-browser request: nothing to add. */
  | { allowed: true; corsOrigin: undefined }
  /** Cross-origin but allowed: echo it in `Access-Control-Allow-Origin`. */
  | { allowed: true; corsOrigin: string }
  | { allowed: false };

/** Lowercase scheme and host, drop a default port: `HTTP://Example.org:80` → `http://example.org`. */
export function normaliseOrigin(origin: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#@\s]+)\/?$/.exec(origin.trim());
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  let host = m[2]!.toLowerCase();
  if ((scheme === 'http' && host.endsWith(':80')) || (scheme === 'https' && host.endsWith(':443'))) {
    host = host.replace(/:\d+$/, '');
  }
  return `${scheme}://${host}`;
}

/** Decide whether a request may proceed (and which origin to echo for CORS). */
export function checkOrigin(input: OriginInput): OriginDecision {
  const crossSite = input.secFetchSite?.trim().toLowerCase() === 'cross-site';
  if (input.origin === undefined) return crossSite ? { allowed: false } : { allowed: true, corsOrigin: undefined };
  const origin = normaliseOrigin(input.origin);
  if (origin === undefined) return { allowed: false };
  if (origin === normaliseOrigin(input.selfOrigin)) return { allowed: true, corsOrigin: undefined };
  if (input.allowedOrigins.some((o) => normaliseOrigin(o) === origin)) return { allowed: true, corsOrigin: input.origin };
  return { allowed: false };
}

/** Headers that let an allowed origin read the answer. */
export function corsHeaders(origin: string): Record<string, string> {
  return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
}
