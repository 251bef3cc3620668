// A client session's Connection over a WebSocket (RFC 7395): one text message per element each way. Prosody's
// mod_websocket does the same framing over its net/websocket; here the `ws` package speaks RFC 6455.

import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import type { Connection, ConnectionEvents } from './connection.js';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_CLIENT = 'jabber:client';
const STANZAS = new Set(['message', 'presence', 'iq']);

/** RFC 6455 §7.4.1: the peer sent data this endpoint cannot accept (a binary frame, RFC 7395 §3.2). */
const CLOSE_UNSUPPORTED_DATA = 1003;

/**
 * RFC 7395 §3.3.3: every message is a standalone document, so it declares the namespaces a stream would have
 * given it: `jabber:client` on stanzas, the `stream` prefix on `<stream:features/>` and `<stream:error/>`.
 * Serialised XML escapes `>` in attribute values, so the first `>` ends the root's start tag.
 */
export function standaloneElement(text: string): string {
  const end = text.indexOf('>');
  if (!text.startsWith('<') || end === -1) return text;
  const tag = text.slice(0, end);
  const name = /^<([^\s/>]+)/.exec(tag)?.[1] ?? '';
  const at = 1 + name.length;
  if (name.startsWith('stream:') && !/\sxmlns:stream=["']/.test(tag)) return `${text.slice(0, at)} xmlns:stream="${NS_STREAM}"${text.slice(at)}`;
  if (STANZAS.has(name) && !/\sxmlns=["']/.test(tag)) return `${text.slice(0, at)} xmlns="${NS_CLIENT}"${text.slice(at)}`;
  return text;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' };

/** Answer an HTTP Upgrade request with a plain status and close the socket (nothing else can be said on it). */
export function refuseUpgrade(socket: Duplex, status: number, detail: string): void {
  if (socket.destroyed) return;
  const body = `${detail}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class WebSocketConnection implements Connection {
  readonly isFramed = true;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string | undefined,
    readonly isSecure: boolean,
  ) {}

  get isWritable(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  attach(events: ConnectionEvents): void {
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.ws.close(CLOSE_UNSUPPORTED_DATA, 'XMPP over WebSocket uses text frames (RFC 7395 §3.2).');
        return;
      }
      events.data(toBuffer(data));
    });
    this.ws.on('error', (err) => events.error(err));
    this.ws.once('close', () => events.close());
  }

  write(data: string, onWritten?: (err?: Error | null) => void): void {
    this.ws.send(standaloneElement(data), onWritten);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** After our `<close/>`: the WebSocket closing handshake (RFC 7395 §3.6), which ends the TCP connection. */
  end(): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000);
  }

  destroy(): void {
    this.ws.terminate();
  }
}
