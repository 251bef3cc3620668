// HTTP Upgrade requests (RFC 9110 §7.8, the WebSocket handshake of RFC 6455 §4): dispatched like any request, by
// Host and path, to the app mounted there if it takes upgrades; anything else is refused on the raw socket.

import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { BlockList } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { HttpApps } from './apps.js';
import { clientAddress } from './client-address.js';
import { refuseUpgrade } from '../../net/ws-connection.js';

/** Sockets upgraded on one server: a server does not close them itself, so shutdown does. */
export class UpgradedSockets {
  private readonly sockets = new Map<HttpServer, Set<Duplex>>();

  add(server: HttpServer, socket: Duplex): void {
    let set = this.sockets.get(server);
    if (!set) this.sockets.set(server, (set = new Set()));
    set.add(socket);
    socket.once('close', () => set.delete(socket));
  }

  /** Drop what is still open after `graceMs` (their owners had that long to say goodbye). */
  closeLater(server: HttpServer, graceMs: number): () => void {
    const timer = setTimeout(() => {
      for (const socket of this.sockets.get(server) ?? []) socket.destroy();
    }, graceMs);
    timer.unref();
    return () => {
      clearTimeout(timer);
      this.sockets.delete(server);
    };
  }
}

/** The `upgrade` listener of one HTTP(S) server. */
export function upgradeHandler(
  server: HttpServer,
  opts: { apps: HttpApps; log: Logger; isTls: boolean; trustedProxies: BlockList; upgraded: UpgradedSockets },
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    // A peer that vanishes mid-handshake must not take the process down.
    socket.on('error', (err) => opts.log.debug({ err: err.message }, 'upgrade socket error'));
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      refuseUpgrade(socket, 400, 'Bad request target.');
      return;
    }
    const found = opts.apps.find(req.headers.host ?? '', path);
    if (!found?.app.upgrade) {
      refuseUpgrade(socket, 404, `Nothing takes an upgrade at ${path} on this host.`);
      return;
    }
    const forwarded = req.headers['x-forwarded-for'];
    const address = clientAddress(req.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(',') : forwarded, opts.trustedProxies);
    opts.upgraded.add(server, socket);
    try {
      found.app.upgrade({ req, socket, head, clientAddress: address, isTls: opts.isTls, host: found.host });
    } catch (err) {
      opts.log.error({ err, module: found.app.module, host: found.host }, 'HTTP upgrade handler failed');
      refuseUpgrade(socket, 500, 'The server failed to handle this request; the cause is in the server log.');
    }
  };
}
