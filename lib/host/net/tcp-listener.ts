// Servers for XMPP streams: plain ports that offer STARTTLS (RFC 6120 §5) and direct TLS ports (XEP-0368), like
// Prosody's c2s and c2s_direct_tls port sets. The port manager (core/ports.ts) binds and closes them.
// Bounded before login (XEP-0205 §4.3): unfinished TLS handshakes time out; unauthenticated connections per address are capped.

import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { clientKey } from '../util/throttle.js';

/** A connection's place in its address's count of unauthenticated connections. */
export interface Admission {
  /** The stream authenticated: it no longer counts (closing the socket also frees it). */
  authenticated(): void;
}

/** Unauthenticated connections per client address, shared by the servers of one service (c2s and c2s_direct_tls). */
export class UnauthenticatedLimit {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Count a new connection; undefined (and nothing counted) when its address has `max` already. */
  admit(address: string | undefined): Admission | undefined {
    const key = clientKey(address ?? 'unknown');
    const count = this.counts.get(key) ?? 0;
    if (count >= this.max) return undefined;
    this.counts.set(key, count + 1);
    let isCounted = true;
    return {
      authenticated: () => {
        if (!isCounted) return;
        isCounted = false;
        const left = this.counts.get(key)! - 1;
        if (left > 0) this.counts.set(key, left);
        else this.counts.delete(key);
      },
    };
  }

  count(address: string): number {
    return this.counts.get(clientKey(address)) ?? 0;
  }
}

const UNLIMITED: Admission = { authenticated: () => undefined };

export interface StreamServerOptions {
  kind: 'starttls' | 'direct_tls';
  /** For direct TLS ports; a tls.Server takes the pair itself (it has no `secureContext` option). */
  tls: { key: string | Buffer; cert: string | Buffer };
  /** Direct TLS asks the peer for a certificate, verified against `ca` (Node's roots when undefined) but never refused (s2s). */
  requestCert?: { ca: string | undefined };
  log: Logger;
  /** A direct TLS handshake not finished by then is dropped (Prosody's ssl_handshake_timeout). Default 60 s. */
  handshakeTimeoutMs?: number;
  /** Caps unauthenticated connections per address: one over it is closed at once, before any byte is read. */
  unauthenticated?: UnauthenticatedLimit;
  onConnection(socket: Socket, isSecure: boolean, admission: Admission): void;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

/** Count a new TCP connection; close it at once when its address is over the limit. */
function admitOrClose(socket: Socket, opts: StreamServerOptions): Admission | undefined {
  if (!opts.unauthenticated) return UNLIMITED;
  const admission = opts.unauthenticated.admit(socket.remoteAddress);
  if (!admission) {
    opts.log.debug({ address: socket.remoteAddress }, 'too many unauthenticated connections from this address; closed');
    socket.destroy();
    return undefined;
  }
  socket.once('close', () => admission.authenticated());
  return admission;
}

export function createStreamServer(opts: StreamServerOptions): NetServer {
  if (opts.kind === 'starttls') {
    return createTcpServer((socket) => {
      const admission = admitOrClose(socket, opts);
      if (admission) opts.onConnection(socket, false, admission);
    });
  }
  // The raw socket's peer names its admission until the handshake ends (the TLS socket reports the same peer).
  const pending = new Map<string, Admission>();
  const peer = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;
  const server = createTlsServer(
    {
      key: opts.tls.key,
      cert: opts.tls.cert,
      minVersion: 'TLSv1.2',
      handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      ...(opts.requestCert ? { requestCert: true, rejectUnauthorized: false, ca: opts.requestCert.ca } : {}),
    },
    (socket: TLSSocket) => {
      const key = peer(socket);
      const admission = pending.get(key) ?? UNLIMITED;
      pending.delete(key);
      opts.onConnection(socket, true, admission);
    },
  );
  server.on('connection', (raw: Socket) => {
    const key = peer(raw);
    const admission = admitOrClose(raw, opts);
    if (!admission) return;
    pending.set(key, admission);
    raw.once('close', () => pending.delete(key));
  });
  // A failed or timed-out handshake is the client's problem (bad SNI, untrusted certificate, silence): note it,
  // drop the socket (Node leaves it open once this event has a listener), keep serving.
  server.on('tlsClientError', (err, socket) => {
    opts.log.debug({ err: err.message }, 'TLS handshake failed');
    socket.destroy();
  });
  return server;
}
