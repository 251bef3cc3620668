// The http module (Prosody's mod_http): one koa app for the whole server; every host's `http` items mounted under
// their base path (http_paths: virtual host > global > the app's default), behind the app's policy; listens as the
// `http` and `https` net items.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { HttpApp, ModuleApi, ModuleDefinition } from '../../api.js';
import { closeHttpServer } from '../../net/http-server.js';
import { createHttpApp, HttpApps } from './apps.js';
import { trustedProxies } from './client-address.js';
import { upgradeHandler, UpgradedSockets } from './upgrade.js';

type PathMap = Readonly<Record<string, string>>;

declare module '../../api.js' {
  interface Services {
    /** The http module: where apps are mounted. */
    http: HttpService;
  }
}

export interface HttpService {
  /** The base path of `app` on `host` (http_paths: virtual host > global > `defaultPath`), e.g. `/xmpp-websocket`. */
  path(host: string, app: string, defaultPath: string): string;
  /**
   * Where clients reach this server's HTTP for `host` (Prosody's module:http_url() less the path): http_external_url
   * when set, else https://<host>:<port> on the first HTTPS listener, else http://<host>:<port>; no trailing slash.
   * Read when called, so the ports are the bound ones.
   */
  baseUrl(host: string): string;
}

/** `http_paths` of the virtual host, then the global one, then the app's default (Prosody's mod_http get_base_path). */
export function resolveHttpPath(module: ModuleApi, host: string, app: string, defaultPath: string): string {
  const hosts = (module.setting('virtual_hosts') ?? {}) as Readonly<Record<string, { http_paths?: PathMap }>>;
  const path = (Object.hasOwn(hosts, host) ? hosts[host] : undefined)?.http_paths?.[app] ?? (module.setting('http_paths') as PathMap | undefined)?.[app] ?? defaultPath;
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

function load(module: ModuleApi): void {
  const apps = new HttpApps(() => module.setting('http_default_host') as string | undefined, Object.keys((module.setting('virtual_hosts') ?? {}) as object));
  const proxies = trustedProxies((module.setting('trusted_proxies') as string[] | undefined) ?? []);
  const koa = createHttpApp(apps, module.log, { trustedProxies: proxies });
  const virtualHosts = (): string[] => Object.keys((module.setting('virtual_hosts') ?? {}) as object);

  const unmounts = new Map<HttpApp, Array<() => void>>();
  module.handleItems(
    'http',
    (app, info) => {
      // A global module's app is served on every virtual host.
      const hosts = info.host === '*' ? virtualHosts() : [info.host];
      const undo: Array<() => void> = [];
      try {
        for (const host of hosts) undo.push(apps.mount(host, info.module, resolveHttpPath(module, host, app.name ?? info.module, app.defaultPath), app.router, app));
      } catch (err) {
        for (const u of undo) u();
        throw err;
      }
      unmounts.set(app, undo);
    },
    (app) => {
      for (const unmount of unmounts.get(app) ?? []) unmount();
      unmounts.delete(app);
    },
  );

  const callback = koa.callback();
  const upgraded = new UpgradedSockets();
  const listening: Array<{ server: HttpServer; isTls: boolean }> = [];
  const withUpgrades = (server: HttpServer, isTls: boolean): HttpServer => {
    listening.push({ server, isTls });
    server.once('close', () => {
      const i = listening.findIndex((l) => l.server === server);
      if (i !== -1) listening.splice(i, 1);
    });
    return server.on('upgrade', upgradeHandler(server, { apps, log: module.log, isTls, trustedProxies: proxies, upgraded }));
  };
  const baseUrl = (host: string): string => {
    const external = module.setting('http_external_url') as string | undefined;
    if (external) return external.replace(/\/+$/, '');
    const bound = (isTls: boolean) => listening.find((l) => l.isTls === isTls && l.server.listening);
    const found = bound(true) ?? bound(false);
    const address = found?.server.address();
    const port = address && typeof address === 'object' ? address.port : (module.setting('http_ports') as number[] | undefined)?.[0] ?? 5280;
    return `${found?.isTls ? 'https' : 'http'}://${host}:${port}`;
  };
  const close = async (server: import('node:net').Server): Promise<void> => {
    const done = upgraded.closeLater(server as HttpServer, 2000);
    await closeHttpServer(server as HttpServer);
    done();
  };
  module.provides('net', { name: 'http', createServer: () => withUpgrades(createHttpServer(callback), false), close });
  module.provides('net', {
    name: 'https',
    interfacesSetting: 'http_interfaces',
    tls: true,
    createServer: (tls) => withUpgrades(createHttpsServer({ key: tls!.key, cert: tls!.cert, minVersion: 'TLSv1.2' }, callback), true),
    close,
  });
  // Prosody's module:http_url(): where an app of a host is mounted, for modules that link to one another's apps.
  module.setService({ path: (host: string, app: string, defaultPath: string) => resolveHttpPath(module, host, app, defaultPath), baseUrl });
}

export const http: ModuleDefinition = {
  manifest: { id: 'http', global: true, description: "HTTP server for modules' apps (Prosody's mod_http): http_paths, OPTIONS/405, CORS and the cross-site guard, trusted_proxies." },
  load,
};
