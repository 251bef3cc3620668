// The Converse.js web client served by this server (Prosody's mod_conversejs): its page at /conversejs, set up for
// this host's WebSocket endpoint, and its files from the converse.js npm package, so the browser asks nothing of
// any other site.

import Router from 'koa-router';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { ModuleApi, ModuleDefinition } from '../../api.js';
import { sendStatic } from './static-files.js';

const DEFAULT_PATH = '/conversejs';
/** The page's Converse plugin that shows a chat when a message arrives in it. */
const SHOW_ALERTS_PLUGIN = 'xmppd-show-new-chats';
/**
 * Everything from this server only (its WebSocket included): a link or an image in a message cannot make the browser
 * ask another site. The inline scripts are the page's own (settings, the footer below); no framing by other sites.
 */
function contentSecurityPolicy(uploadOrigins: readonly string[]): string {
  // The server's own file-sharing components answer at their own domain's origin: uploads (PUT) and the files shown.
  const own = ["'self'", ...uploadOrigins].join(' ');
  return [
    "default-src 'self'",
    // Converse's OMEMO runs WebAssembly: compiling it is allowed, eval is not.
    "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    `img-src ${own} data: blob:`,
    `media-src ${own} data: blob:`,
    `connect-src ${own}`,
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The package's dist folder (converse.min.js, its CSS, fonts, sounds, emoji data and locale chunks). */
function distFolder(): string {
  return dirname(createRequire(import.meta.url).resolve('converse.js/dist/converse.min.js'));
}

/** `</script>` and friends cannot end the inline script: JSON with <, >, & and line separators escaped. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page: Converse.js in full screen, logging in to this host over its own WebSocket endpoint. */
export function clientPage(opts: { host: string; basePath: string; websocketPath: string }): string {
  const assets = `${opts.basePath === '/' ? '' : opts.basePath}/dist`;
  const settings = {
    assets_path: assets,
    authentication: 'login',
    // The endpoint is this page's own origin; discovery would ask https://<domain>/.well-known, maybe elsewhere.
    discover_connection_methods: false,
    default_domain: opts.host,
    domain_placeholder: opts.host,
    // Alerts come from scripts (post_msg), which are not in anyone's roster.
    allow_non_roster_messaging: true,
    allow_registration: false,
    view_mode: 'fullscreen',
    // Our plugin below, which brings a new chat forward; Converse loads no plugin it is not told to trust.
    whitelisted_plugins: [SHOW_ALERTS_PLUGIN],
    // System emojis and English: no image CDN, no locale download.
    use_system_emojis: true,
    i18n: 'en',
  };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat on ${escapeHtml(opts.host)}</title>
<link rel="stylesheet" href="${escapeHtml(assets)}/converse.min.css">
<link rel="icon" href="${escapeHtml(assets)}/images/favicon.ico">
<script>
// DIFF: the full-screen footer shows sponsors' logos loaded from conversejs.org; Converse defines an element only if
// its name is free, so an empty one taken first keeps the page from asking any other site.
customElements.define('converse-footer', class extends HTMLElement {});
</script>
<script type="module" src="${escapeHtml(assets)}/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This web chat needs JavaScript.</noscript>
<!-- Module scripts run in document order: converse.min.js (an ES module) has set window.converse by now. -->
<script type="module">
// Full screen shows one chat at a time, and a message from outside the roster only adds a line to the list on the
// left: an alert from a script would wait there unseen. Converse's own maybeShow() brings its chat forward, unless
// the reader has another chat open (that one stays in front).
converse.plugins.add(${scriptJson(SHOW_ALERTS_PLUGIN)}, {
  initialize() {
    this._converse.api.listen.on('message', (data) => {
      if (data.chatbox && (data.attrs.body || data.attrs.plaintext)) data.chatbox.maybeShow();
    });
  },
});
const settings = ${scriptJson(settings)};
settings.websocket_url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + ${scriptJson(opts.websocketPath)};
converse.initialize(settings);
</script>
</body>
</html>
`;
}

function load(module: ModuleApi): void {
  const http = module.depends('http');
  const websocketPath = module.depends('websocket').path;
  const basePath = http.path(module.host, module.name, DEFAULT_PATH);
  const dist = distFolder();
  const page = clientPage({ host: module.host, basePath, websocketPath });

  // Asked at each request: the http module knows its port only once it listens.
  const uploadOrigins = (): string[] => {
    const components = (module.setting('components') ?? {}) as Record<string, { module?: string }>;
    const domains = Object.entries(components).flatMap(([domain, c]) => (c.module === 'http_file_share' ? [domain] : []));
    return [...new Set(domains.map((d) => new URL(http.baseUrl(d)).origin))];
  };

  const router = new Router();
  router.get('/', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    // The page may not be framed by another site (clickjacking a logged-in chat).
    ctx.set({ 'X-Frame-Options': 'DENY', 'Content-Security-Policy': contentSecurityPolicy(uploadOrigins()), 'Cache-Control': 'no-cache' });
    ctx.body = page;
  });
  router.get('/dist/*file', async (ctx, next) => {
    // path-to-regexp 8 gives a wildcard as its segments (joined here) or, in some versions, one string.
    const file = (ctx.params as { file: string | string[] }).file;
    if (!(await sendStatic(ctx, dist, Array.isArray(file) ? file.join('/') : file))) return next();
  });
  module.provides('http', { defaultPath: DEFAULT_PATH, router, methods: ['GET', 'HEAD'], title: 'Web chat (Converse.js)' });
}

export const conversejs: ModuleDefinition = {
  manifest: {
    id: 'conversejs',
    description: 'The Converse.js web client at /conversejs, set up for this host and its WebSocket endpoint; its files come from this server (Prosody\'s mod_conversejs).',
    depends: ['http', 'websocket', 'http_index'],
  },
  load,
};

export { httpIndex } from './http-index.js';
