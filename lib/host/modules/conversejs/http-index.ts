// The page at the root of a host (Prosody's mod_http_index): what this server offers over HTTP, with links, so a
// newcomer who opens http://localhost:5280/ finds the web chat and the API.

import Router from 'koa-router';
import type { HttpApp, ModuleApi, ModuleDefinition } from '../../api.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function indexPage(host: string, apps: ReadonlyArray<{ title: string; path: string }>): string {
  const items = apps.map((a) => `<li><a href="${escapeHtml(a.path)}">${escapeHtml(a.title)}</a> <code>${escapeHtml(a.path)}</code></li>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(host)}</title></head>
<body>
<h1>XMPP server ${escapeHtml(host)}</h1>
<p>What this server offers over HTTP:</p>
<ul>
${items}
</ul>
</body>
</html>
`;
}

/**
 * Where to send a reader for an app: its base path, or, where nothing answers GET there but a fixed path under it
 * does (http_altconnect's /.well-known/host-meta), that path. Read from the app's router, mounted by now.
 */
export function pageOf(app: HttpApp, base: string): string {
  const answersGet = (path: string): boolean => app.router.match(path, 'GET').route;
  if (answersGet(base) || answersGet(`${base}/`)) return base;
  const fixed = app.router.stack.find((layer) => layer.methods.includes('GET') && layer.paramNames.length === 0 && layer.path.startsWith(base));
  return fixed?.path ?? base;
}

function load(module: ModuleApi): void {
  const http = module.depends('http');
  const apps = new Map<HttpApp, string>();
  module.handleItems(
    'http',
    (app, info) => {
      if (info.module !== module.name) apps.set(app, info.module);
    },
    (app) => void apps.delete(app),
  );
  const router = new Router();
  router.get('/', (ctx) => {
    const listed = [...apps]
      .map(([app, name]) => ({ title: app.title ?? name, path: pageOf(app, http.path(module.host, name, app.defaultPath)) }))
      .sort((a, b) => a.path.localeCompare(b.path));
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = indexPage(module.host, listed);
  });
  module.provides('http', { defaultPath: '/', router, methods: ['GET', 'HEAD'] });
}

export const httpIndex: ModuleDefinition = {
  manifest: { id: 'http_index', description: "A page at the host's root listing its HTTP apps (Prosody's mod_http_index).", depends: ['http'] },
  load,
};
