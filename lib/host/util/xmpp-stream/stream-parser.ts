// One XML stream (RFC 6120 §4): the byte guard, then UTF-8 decoding, then ltx (@xmpp/xml's Parser).
// Emits the stream header, each top-level element, and the stream end; any fault is a stream error condition.

import { Parser, type Element } from '@xmpp/xml';
import { describeCodePoint, findIllegalXmlChar } from '../xml-text.js';
import { bindStreamPrefixes, prefixDeclarations } from './prefixes.js';
import { XmlGuard, type GuardFailure } from './xml-guard.js';

export interface StreamParserEvents {
  onStreamStart(header: Element): void;
  onElement(element: Element): void;
  onStreamEnd(): void;
  /** The stream is broken; nothing more will be emitted. */
  onError(failure: GuardFailure): void;
}

export class StreamParser {
  private readonly guard: XmlGuard;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly parser = new Parser();
  private isStopped = false;
  /** Text before the stream header is complete; bounded by the guard's size limit. */
  private prelude = '';
  private streamPrefixes: Record<string, string> = {};

  constructor(maxStanzaBytes: number, private readonly events: StreamParserEvents) {
    this.guard = new XmlGuard(maxStanzaBytes);
    this.parser.on('start', (el) => this.emit(() => this.onStart(el)));
    this.parser.on('element', (el) => this.emit(() => this.onElement(el)));
    this.parser.on('end', () => this.emit(() => this.events.onStreamEnd()));
    this.parser.on('error', (err) => this.fail({ condition: 'not-well-formed', text: err.message }));
  }

  /** Feed bytes from the socket. Ignored once the parser stopped (error or `stop()`). */
  write(chunk: Buffer): void {
    if (this.isStopped) return;
    // Checked before the parser sees a byte, so an oversized or restricted document is never buffered.
    const failure = this.guard.scan(chunk);
    if (failure) {
      this.fail(failure);
      return;
    }
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      this.fail({ condition: 'not-well-formed', text: 'Invalid UTF-8 (RFC 6120 §11.6).' });
      return;
    }
    // ltx passes any character through; one that XML forbids would break every recipient's parser.
    const illegal = findIllegalXmlChar(text);
    if (illegal) {
      this.fail({ condition: 'not-well-formed', text: `${describeCodePoint(illegal.codePoint)} is not allowed in XML (XML 1.0 §2.2).` });
      return;
    }
    if (!this.guard.hasRoot) {
      // ltx cannot end a PI whose `?>` is split across writes: hand it the declaration and header in one piece.
      this.prelude += text;
      return;
    }
    if (this.prelude) {
      // Whitespace before the first markup is legal XML but ltx takes it for text outside the root.
      text = this.prelude.trimStart() + text;
      this.prelude = '';
    }
    try {
      this.parser.write(text);
    } catch (err) {
      // ltx throws on unknown entities (`&custom;`) and illegal character references: never expanded.
      this.fail({ condition: 'not-well-formed', text: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Stop emitting (stream restart after STARTTLS or SASL, or close); later bytes are dropped. */
  stop(): void {
    this.isStopped = true;
  }

  private onStart(header: Element): void {
    this.streamPrefixes = prefixDeclarations(header);
    this.events.onStreamStart(header);
  }

  private onElement(el: Element): void {
    // ltx keeps text found between stanzas (whitespace keepalives) as children of the root: drop it.
    const root = this.parser.root;
    if (root) root.children.length = 0;
    const unbound = bindStreamPrefixes(el, this.streamPrefixes);
    if (unbound !== undefined) {
      this.fail({ condition: 'not-well-formed', text: `The prefix ${unbound}: is not declared.` });
      return;
    }
    this.events.onElement(el);
  }

  private emit(fn: () => void): void {
    if (!this.isStopped) fn();
  }

  private fail(failure: GuardFailure): void {
    if (this.isStopped) return;
    this.isStopped = true;
    this.events.onError(failure);
  }
}
