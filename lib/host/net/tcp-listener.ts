// TCP listeners for client streams: plain ports that offer STARTTLS (RFC 6120 §5) and direct TLS ports
// (XEP-0368), like Prosody's c2s and c2s_direct_tls port sets.

import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { HostError } from '../util/errors.js';

export interface Listener {
  kind: 'starttls' | 'direct_tls';
  address: string;
  port: number;
  server: NetServer;
}

export interface ListenOptions {
  kind: 'starttls' | 'direct_tls';
  address: string;
  port: number;
  /** For direct TLS ports; a tls.Server takes the pair itself (it has no `secureContext` option). */
  tls: { key: string | Buffer; cert: string | Buffer };
  log: Logger;
  onConnection(socket: Socket, isSecure: boolean): void;
}

function createServer(opts: ListenOptions): NetServer {
  if (opts.kind === 'starttls') return createTcpServer((socket) => opts.onConnection(socket, false));
  const server = createTlsServer({ key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' }, (socket: TLSSocket) => opts.onConnection(socket, true));
  // A failed handshake is the client's problem (bad SNI, untrusted certificate): note it, keep serving.
  server.on('tlsClientError', (err) => opts.log.debug({ err: err.message }, 'TLS handshake failed'));
  return server;
}

export function listen(opts: ListenOptions): Promise<Listener> {
  const server = createServer(opts);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.close();
      if (err.code === 'EADDRINUSE') {
        reject(new HostError('HOST_ERR_PORT_IN_USE', `c2s port ${opts.port} on ${opts.address} is already in use; stop the other server or change c2s_${opts.kind === 'starttls' ? '' : 'direct_tls_'}ports.`, { cause: err }));
        return;
      }
      reject(new HostError('HOST_ERR_PORT_IN_USE', `cannot listen for clients on ${opts.address}:${opts.port}: ${err.message}.`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.address, () => {
      server.off('error', onError);
      server.on('error', (err) => opts.log.error({ err }, 'c2s listener error'));
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      resolve({ kind: opts.kind, address: opts.address, port, server });
    });
  });
}

export function closeListener(listener: Listener): Promise<void> {
  return new Promise((resolve) => listener.server.close(() => resolve()));
}
