// XEP-0156 discovery over HTTP: /.well-known/host-meta (XRD) and host-meta.json list how a web client can reach the
// server. After the community module mod_http_altconnect; transports announce themselves as `alt_connection` items.

import Router from 'koa-router';
import type { ModuleApi, ModuleDefinition } from '../../api.js';

/** A way in for web clients (RFC 7395 WebSocket; BOSH would be another). */
export interface AltConnection {
  /** XEP-0156 link relation, e.g. `urn:xmpp:alt-connections:websocket`. */
  rel: string;
  /** The URL for a request that reached this server as `host` (the Host header), over TLS or not. */
  href(request: { host: string; isTls: boolean }): string;
}

declare module '../../api.js' {
  interface Provides {
    /** An alternative connection method announced in host-meta (XEP-0156). */
    alt_connection: AltConnection;
  }
}

const NS_XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';

function escapeAttr(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function load(module: ModuleApi): void {
  const links = new Set<AltConnection>();
  module.handleItems(
    'alt_connection',
    (item) => void links.add(item),
    (item) => void links.delete(item),
  );
  const linksFor = (host: string, isTls: boolean) => [...links].map((l) => ({ rel: l.rel, href: l.href({ host, isTls }) }));

  const router = new Router();
  router.get('/host-meta', (ctx) => {
    const body = linksFor(ctx.host, ctx.secure).map((l) => `<Link rel="${escapeAttr(l.rel)}" href="${escapeAttr(l.href)}"/>`);
    ctx.type = 'application/xrd+xml; charset=utf-8';
    // XEP-0156 §3: a web client on another origin reads it.
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.body = `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${NS_XRD}'>\n${body.map((l) => `  ${l}\n`).join('')}</XRD>\n`;
  });
  router.get('/host-meta.json', (ctx) => {
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.type = 'application/json';
    ctx.body = { links: linksFor(ctx.host, ctx.secure) };
  });
  module.provides('http', { defaultPath: '/.well-known', router, methods: ['GET', 'HEAD'], title: 'Connection discovery (XEP-0156)' });
}

export const httpAltconnect: ModuleDefinition = {
  manifest: {
    id: 'http_altconnect',
    description: 'XEP-0156 discovery: /.well-known/host-meta and host-meta.json list the WebSocket endpoint (community module mod_http_altconnect).',
  },
  load,
};
