// A framed client stream (RFC 7395 §3.3-§3.6): one WebSocket message per element, read by FrameParser and reported
// with the StreamParser's events, so the session handles `<open/>` as the stream header and `<close/>` as its end.

import { xml } from '@xmpp/xml';
import type { StreamParserEvents } from '../../util/xmpp-stream/stream-parser.js';
import { FrameParser } from '../../util/xmpp-stream/stream-parser.js';
import { NS_FRAMING } from '../../util/xmpp-stream/namespaces.js';

export class FrameReader {
  private readonly parser: FrameParser;
  private isStopped = false;
  private isOpen = false;

  constructor(maxStanzaBytes: number, private readonly events: StreamParserEvents) {
    this.parser = new FrameParser(maxStanzaBytes);
  }

  /** One whole WebSocket message. */
  write(message: Uint8Array): void {
    if (this.isStopped) return;
    const result = this.parser.parse(message);
    if (!result.ok) return this.fail(result.failure.condition, result.failure.text);
    const el = result.element;
    const isFraming = el.attrs.xmlns === NS_FRAMING;
    if (isFraming && el.name === 'open') {
      // §3.3.2: <open/> starts (or restarts) the stream once; a second one in the same stream is a framing error.
      if (this.isOpen) return this.fail('bad-format', 'The stream is already open.');
      this.isOpen = true;
      return this.events.onStreamStart(el);
    }
    if (!this.isOpen) return this.fail('bad-format', `The first frame must be <open xmlns='${NS_FRAMING}'/> (RFC 7395 §3.4).`);
    if (isFraming && el.name === 'close') {
      this.stop();
      return this.events.onStreamEnd();
    }
    if (isFraming) return this.fail('bad-format', `<${el.name}/> is not a framing element.`);
    this.events.onElement(el);
  }

  stop(): void {
    this.isStopped = true;
  }

  private fail(condition: Parameters<StreamParserEvents['onError']>[0]['condition'], text: string): void {
    this.stop();
    this.events.onError({ condition, text });
  }
}

/** The server's `<open/>` (RFC 7395 §3.4): the stream header's attributes on an empty framing element. */
export function openFrame(opts: { id: string; from: string | undefined }): string {
  return xml('open', { xmlns: NS_FRAMING, id: opts.id, from: opts.from, version: '1.0', 'xml:lang': 'en' }).toString();
}

/** RFC 7395 §3.6: the end of the stream. */
export const CLOSE_FRAME = `<close xmlns='${NS_FRAMING}'/>`;
