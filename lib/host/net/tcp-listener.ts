// Servers for XMPP streams: plain ports that offer STARTTLS (RFC 6120 §5) and direct TLS ports (XEP-0368), like
// Prosody's c2s and c2s_direct_tls port sets. The port manager (core/ports.ts) binds and closes them.

import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';

export interface StreamServerOptions {
  kind: 'starttls' | 'direct_tls';
  /** For direct TLS ports; a tls.Server takes the pair itself (it has no `secureContext` option). */
  tls: { key: string | Buffer; cert: string | Buffer };
  log: Logger;
  onConnection(socket: Socket, isSecure: boolean): void;
}

export function createStreamServer(opts: StreamServerOptions): NetServer {
  if (opts.kind === 'starttls') return createTcpServer((socket) => opts.onConnection(socket, false));
  const server = createTlsServer({ key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' }, (socket: TLSSocket) => opts.onConnection(socket, true));
  // A failed handshake is the client's problem (bad SNI, untrusted certificate): note it, keep serving.
  server.on('tlsClientError', (err) => opts.log.debug({ err: err.message }, 'TLS handshake failed'));
  return server;
}
