// HTTP and HTTPS listeners for the koa app (Prosody's net/http/server.lua): listen on every interface × port,
// a taken port named in the error, and a graceful close.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type Koa from 'koa';
import { HostError } from '../util/errors.js';

export interface Listener {
  kind: 'http' | 'https';
  address: string;
  port: number;
  server: HttpServer;
}

/** Listen on every interface × port; a taken port is a clear error naming it. */
export async function listenHttp(
  app: Koa,
  opts: { interfaces: readonly string[]; httpPorts: readonly number[]; httpsPorts: readonly number[]; tls?: { key: string; cert: string } },
): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const callback = app.callback();
  try {
    for (const address of opts.interfaces) {
      for (const port of opts.httpPorts) listeners.push(await listenOne('http', createHttpServer(callback), address, port));
      for (const port of opts.httpsPorts) {
        const server = createHttpsServer({ key: opts.tls!.key, cert: opts.tls!.cert, minVersion: 'TLSv1.2' }, callback);
        listeners.push(await listenOne('https', server, address, port));
      }
    }
  } catch (err) {
    await closeListeners(listeners);
    throw err;
  }
  return listeners;
}

function listenOne(kind: 'http' | 'https', server: HttpServer, address: string, port: number): Promise<Listener> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const what = `${kind} port ${port} on ${address}`;
      if (err.code === 'EADDRINUSE') {
        reject(new HostError('HOST_ERR_PORT_IN_USE', `${what} is already in use; stop the other program or change ${kind}_ports.`));
      } else {
        reject(new HostError('HOST_ERR_PORT_IN_USE', `cannot listen on ${what}: ${err.message}.`, { cause: err }));
      }
    });
    server.listen(port, address, () => {
      const bound = server.address();
      resolve({ kind, address, port: typeof bound === 'object' && bound ? bound.port : port, server });
    });
  });
}

/** Stop accepting, end idle keep-alive connections, give busy ones a moment, then cut them. */
export async function closeListeners(listeners: Listener[], graceMs = 2000): Promise<void> {
  await Promise.all(
    listeners.map(
      ({ server }) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => server.closeAllConnections(), graceMs);
          timer.unref();
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
          server.closeIdleConnections();
        }),
    ),
  );
}
