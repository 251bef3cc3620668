// One XML stream (RFC 6120 §4, §11): UTF-8 decoding, then one strict namespace-aware parser (xml-reader.ts)
// that enforces the stanza size limit as bytes arrive; FrameParser reads RFC 7395 WebSocket frames the same way.

import type { Element } from '@xmpp/xml';
import { XmlReader, type StreamFailure } from './xml-reader.js';

export { MAX_DEPTH, MAX_NS_PER_ELEMENT, MAX_NS_PER_STANZA, type StreamFailure } from './xml-reader.js';

export interface StreamParserEvents {
  onStreamStart(header: Element): void;
  /** A complete, validated top-level element (a stanza or a stream-level element such as `<auth/>`). */
  onElement(element: Element): void;
  onStreamEnd(): void;
  /** The stream is broken; nothing more will be emitted. */
  onError(failure: StreamFailure): void;
}

const INVALID_UTF8: StreamFailure = { condition: 'not-well-formed', text: 'Invalid UTF-8 (RFC 6120 §11.6).' };

export class StreamParser {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly reader: XmlReader;
  private isStopped = false;
  /** UTF-16 units written to the reader so far: the frame of reference of its boundary positions. */
  private charsWritten = 0;
  /**
   * Bytes of the unit being read (the stream header, or the next stanza with the whitespace before it): the
   * most the parser holds. Never above the limit: bytes are handed over at most up to it.
   */
  private pending = 0;

  constructor(private readonly maxStanzaBytes: number, private readonly events: StreamParserEvents) {
    this.reader = new XmlReader(false, {
      onRoot: (header) => this.events.onStreamStart(header),
      onElement: (el) => this.events.onElement(el),
      onRootEnd: () => {
        this.stop();
        this.events.onStreamEnd();
      },
    });
  }

  /** Bytes held for the unfinished stanza (or header) right now: for tests and logs. */
  get bufferedBytes(): number {
    return this.pending;
  }

  /** Feed bytes from the socket. Ignored once the parser stopped (error, stream end or `stop()`). */
  write(chunk: Uint8Array): void {
    for (let offset = 0; offset < chunk.length && !this.isStopped; ) {
      const room = this.maxStanzaBytes - this.pending;
      // The unit already has the limit's worth of bytes and is not finished: one more byte is one too many.
      if (room <= 0) return this.fail({ condition: 'policy-violation', text: `Stanza larger than ${this.maxStanzaBytes} bytes.` });
      const end = Math.min(chunk.length, offset + room);
      this.feed(chunk.subarray(offset, end));
      offset = end;
    }
  }

  /** Stop emitting (stream restart after STARTTLS or SASL, or close); later bytes are dropped. */
  stop(): void {
    this.isStopped = true;
    this.reader.stop();
  }

  /** One piece that cannot take the current unit past the limit. */
  private feed(piece: Uint8Array): void {
    let text: string;
    try {
      text = this.decoder.decode(piece, { stream: true });
    } catch {
      return this.fail(INVALID_UTF8);
    }
    const start = this.charsWritten;
    this.charsWritten += text.length;
    const before = this.reader.lastBoundary;
    const failure = this.reader.write(text);
    if (failure) return this.fail(failure);
    const boundary = this.reader.lastBoundary;
    // A unit ended in this piece: what follows it starts the next one (a UTF-8 tail held by the decoder is
    // counted with the next piece).
    this.pending = boundary === before ? this.pending + piece.length : Buffer.byteLength(text.slice(Math.max(0, boundary - start)));
  }

  private fail(failure: StreamFailure): void {
    if (this.isStopped) return;
    this.stop();
    this.events.onError(failure);
  }
}

export type FrameResult = { ok: true; element: Element } | { ok: false; failure: StreamFailure };

/**
 * RFC 7395 framing: each WebSocket message is one complete element (`<open/>`, a stanza, `<close/>`),
 * read with the same rules and limits as a stream. The element keeps the `xmlns` it declares.
 */
export class FrameParser {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly maxStanzaBytes: number) {}

  parse(message: string | Uint8Array): FrameResult {
    const size = typeof message === 'string' ? Buffer.byteLength(message) : message.length;
    if (size > this.maxStanzaBytes) return { ok: false, failure: { condition: 'policy-violation', text: `Stanza larger than ${this.maxStanzaBytes} bytes.` } };
    let text: string;
    try {
      text = typeof message === 'string' ? message : this.decoder.decode(message);
    } catch {
      return { ok: false, failure: INVALID_UTF8 };
    }
    let element: Element | undefined;
    const reader = new XmlReader(true, { onElement: (el) => (element = el) });
    const failure = reader.write(text) ?? reader.end();
    if (failure) return { ok: false, failure };
    if (!element) return { ok: false, failure: { condition: 'not-well-formed', text: 'A frame must hold one element (RFC 7395 §3.3.3).' } };
    return { ok: true, element };
  }
}
