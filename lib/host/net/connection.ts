// The byte stream a client session runs over: TCP (with STARTTLS, RFC 6120 §5) today, a WebSocket (RFC 7395) later.
// Prosody's net/server connection object; a session sees only this, never a net.Socket.

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer, type SecureContext, type Server as TlsServer } from 'node:tls';

/** What the connection reports to its session. */
export interface ConnectionEvents {
  data(chunk: Buffer): void;
  /** The transport is gone (after end(), destroy() or the peer closing). Called once. */
  close(): void;
  error(err: Error): void;
  /** The write buffer emptied after having been full. */
  drain?(): void;
}

export interface Connection {
  /** The peer's address as HTTP sees it (Koa's request.ip), undefined if the transport does not know it. */
  readonly remoteAddress: string | undefined;
  /** Encrypted now (direct TLS, after STARTTLS, or wss). */
  readonly isSecure: boolean;
  /** Writes still make sense (not ended or destroyed). */
  readonly isWritable: boolean;
  /**
   * Message framing (RFC 7395 WebSocket): each `data` chunk is one complete element and each `write` is sent as one
   * message; the session reads frames (`<open/>`, `<close/>`) instead of a stream. Absent or false: a byte stream.
   */
  readonly isFramed?: boolean;
  /** Bytes queued but not sent: a peer that does not read lets it grow. */
  readonly writableLength: number;
  /** Set the session's callbacks; once, right after the connection is made. */
  attach(events: ConnectionEvents): void;
  /** `onWritten` runs once the data left for the network, or with an error if the connection went first (in write order). */
  write(data: string, onWritten?: (err?: Error | null) => void): void;
  /** Stop and restart reading (backpressure on a flooding peer). */
  pause(): void;
  resume(): void;
  /** Close after the queued writes. */
  end(): void;
  /** Drop at once. */
  destroy(): void;
  /**
   * STARTTLS (RFC 6120 §5.4.3.3): stop reading plaintext, write `proceed`, then speak TLS. `onStarted` runs
   * synchronously once the TLS layer is in place, before any of its data; `onSecure` after the handshake.
   * Absent where TLS is below the transport (WebSocket).
   */
  startTls?(proceed: string, onStarted: () => void, onSecure: (protocol: string | null) => void): void;
  /** The certificate the peer presented over TLS, and whether its chain verified against the trust anchors; undefined without TLS. */
  peerCertificate?(): PeerCertificate | undefined;
}

export interface PeerCertificate {
  /** Undefined when the peer sent none. */
  cert: X509Certificate | undefined;
  /** OpenSSL verified the chain to a trust anchor (names are the caller's to check, RFC 6125). */
  isTrusted: boolean;
  /** Why it is not trusted (OpenSSL's code, e.g. DEPTH_ZERO_SELF_SIGNED_CERT). */
  error: string | undefined;
}

/** A TLS socket's peer certificate as Node verified it. */
export function peerCertificateOf(socket: TLSSocket): PeerCertificate {
  const cert = socket.getPeerX509Certificate();
  const error = socket.authorizationError as unknown as string | Error | null | undefined;
  return {
    cert,
    isTrusted: cert !== undefined && socket.authorized,
    error: cert === undefined ? 'NO_CERTIFICATE' : error ? String(error instanceof Error ? error.message : error) : undefined,
  };
}

/**
 * STARTTLS that asks the peer for a certificate and lets OpenSSL verify it against `ca` (server-to-server, RFC 6120
 * §13.7.2): a server-side TLSSocket built by hand never sets `authorized`, so the raw socket is handed to a tls.Server
 * that never listens (emitting 'connection' is how Node's docs inject a socket), which verifies as for its own.
 */
export class CertificateRequestingTls {
  private readonly server: TlsServer;
  private readonly waiting = new Map<string, (tls: TLSSocket) => void>();

  constructor(opts: { key: string; cert: string; ca: string | undefined; handshakeTimeoutMs: number }) {
    this.server = createTlsServer({
      key: opts.key,
      cert: opts.cert,
      ca: opts.ca,
      minVersion: 'TLSv1.2',
      // Verified, never refused here: an untrusted certificate still allows dialback (XEP-0220 §1.2).
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: opts.handshakeTimeoutMs,
    });
    this.server.on('secureConnection', (tls: TLSSocket) => {
      const key = connectionKey(tls);
      const onSecure = this.waiting.get(key);
      this.waiting.delete(key);
      if (onSecure) onSecure(tls);
      else tls.destroy();
    });
    // A failed handshake: drop the socket (Node leaves it open once this event has a listener).
    this.server.on('tlsClientError', (_err, tls) => {
      this.waiting.delete(connectionKey(tls));
      tls.destroy();
    });
  }

  /** Start TLS on `raw` (paused, its data listeners gone); `onSecure` gets the TLS socket once the handshake ended. */
  upgrade(raw: Socket, onSecure: (tls: TLSSocket) => void): void {
    const key = connectionKey(raw);
    // The four addresses name one live TCP connection; a second upgrade of the same one is a confused caller.
    if (this.waiting.has(key)) return void raw.destroy();
    this.waiting.set(key, onSecure);
    raw.once('close', () => {
      if (this.waiting.get(key) === onSecure) this.waiting.delete(key);
    });
    this.server.emit('connection', raw);
  }
}

function connectionKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

/** A Connection over a net.Socket, or a tls.TLSSocket for direct TLS (XEP-0368). */
export class TcpConnection implements Connection {
  private socket: Socket;
  private secure: boolean;
  private events: ConnectionEvents | undefined;
  private readonly onData = (chunk: Buffer): void => this.events?.data(chunk);
  private readonly onError = (err: Error): void => this.events?.error(err);
  private readonly onDrain = (): void => this.events?.drain?.();

  /** `verifyingTls`: STARTTLS asks for and verifies the peer's certificate (s2s); else plain server TLS (c2s). */
  constructor(socket: Socket, isSecure: boolean, private readonly secureContext: SecureContext, private readonly verifyingTls?: CertificateRequestingTls) {
    this.socket = socket;
    this.secure = isSecure;
    this.wire(socket);
    // The raw socket's close is the connection's close (a TLS layer over it destroys it when it closes).
    socket.on('close', () => this.events?.close());
    socket.setNoDelay(true);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get isSecure(): boolean {
    return this.secure;
  }

  get isWritable(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  attach(events: ConnectionEvents): void {
    this.events = events;
  }

  write(data: string, onWritten?: (err?: Error | null) => void): void {
    this.socket.write(data, onWritten);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  startTls(proceed: string, onStarted: () => void, onSecure: (protocol: string | null) => void): void {
    const raw = this.socket;
    // Anything the client sent after <starttls/> in plaintext is discarded (it would be an injection).
    raw.off('data', this.onData);
    raw.pause();
    raw.write(proceed, () => {
      if (raw.destroyed) return;
      if (this.verifyingTls) {
        this.verifyingTls.upgrade(raw, (tls) => {
          this.socket = tls;
          this.wire(tls);
          tls.on('close', () => raw.destroy());
          this.secure = true;
          onSecure(tls.getProtocol());
        });
        onStarted();
        return;
      }
      const tls = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
      this.socket = tls;
      this.wire(tls);
      tls.on('secure', () => {
        this.secure = true;
        onSecure(tls.getProtocol());
      });
      tls.on('close', () => raw.destroy());
      onStarted();
    });
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.socket instanceof TLSSocket ? peerCertificateOf(this.socket) : undefined;
  }

  private wire(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
  }
}
