// Strict, namespace-aware XML reading for XMPP (RFC 6120 §11, Namespaces in XML 1.0) over saxes, building
// @xmpp/xml (ltx) elements; like Prosody's util/xmppstream.lua over expat. Used by StreamParser and FrameParser.

import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS, type XMLDecl } from 'saxes';
import { Element } from '@xmpp/xml';
import type { StreamErrorCondition } from './stream-errors.js';

/** Why reading stopped; the condition is the stream error to send (RFC 6120 §4.9.3). */
export interface StreamFailure {
  condition: StreamErrorCondition;
  text: string;
}

/**
 * Deepest element nesting accepted, counting the stream root as 1 (a framed element counts as 2). Real
 * payloads stay far below; 50,000 nested tags fit the size limit but would overflow every recursive walk.
 */
export const MAX_DEPTH = 128;
/** Namespace declarations (`xmlns`, `xmlns:p`) on one element: real ones carry one or two. */
export const MAX_NS_PER_ELEMENT = 32;
/** Namespace declarations in one stanza (or the stream header), all elements together. */
export const MAX_NS_PER_STANZA = 256;

/** Thrown from saxes handlers to leave `write()` at once: saxes would otherwise guess on and keep emitting. */
class Halt {
  constructor(readonly failure: StreamFailure | undefined) {}
}

const XMLNS_PREFIX = 'xmlns';
const XML_PREFIX = 'xml';

interface Frame {
  el: Element;
  uri: string;
  /** The declarations made on this element, prefix → namespace (saxes's own record). */
  ns: Record<string, string>;
}

export interface ReaderEvents {
  /** Stream mode: the root (stream header) is open; its element has the names and attributes as written. */
  onRoot?(root: Element): void;
  /** A complete top-level element: a stanza in stream mode, the frame's element in framed mode. */
  onElement(el: Element): void;
  /** Stream mode: the root was closed. */
  onRootEnd?(): void;
}

type Options = { xmlns: true; position: false; forceXMLVersion: true; defaultXMLVersion: '1.0' };

/**
 * One document, fed in pieces. In stream mode the root is the stream header and its children are the units
 * handed on; in framed mode (RFC 7395) the root itself is the unit. Elements handed on are namespace-normal:
 * local names, `xmlns` wherever the namespace changes, and the `xmlns:p` declarations their attributes need.
 */
export class XmlReader {
  private readonly saxes = new SaxesParser<Options>({ xmlns: true, position: false, forceXMLVersion: true, defaultXMLVersion: '1.0' });
  /** Depth of the units: 2 when the root is a stream header, 1 when the root is the unit. */
  private readonly unitDepth: number;
  private readonly maxDepth: number;
  private depth = 0;
  private frames: Frame[] = [];
  /** The stream header's declarations and default namespace, which stanzas inherit. */
  private rootNs: Record<string, string> = Object.create(null) as Record<string, string>;
  private rootDefault = '';
  private nsOnElement = 0;
  private nsInUnit = 0;
  private isHalted = false;
  private readonly onText = (text: string): void => this.appendText(text);
  /** Position (UTF-16 units into everything written) just after the last unit, header or root end. */
  lastBoundary = -1;

  constructor(isFramed: boolean, private readonly events: ReaderEvents) {
    this.unitDepth = isFramed ? 1 : 2;
    this.maxDepth = isFramed ? MAX_DEPTH - 1 : MAX_DEPTH;
    const s = this.saxes;
    s.on('error', (err) => this.halt(classify(err.message)));
    s.on('xmldecl', (decl) => this.checkDeclaration(decl));
    s.on('doctype', () => this.halt({ condition: 'restricted-xml', text: 'A DOCTYPE is not allowed (RFC 6120 §11.1).' }));
    s.on('comment', () => this.halt({ condition: 'restricted-xml', text: 'Comments are not allowed (RFC 6120 §11.1).' }));
    s.on('processinginstruction', () => this.halt({ condition: 'restricted-xml', text: 'Processing instructions are not allowed (RFC 6120 §11.1).' }));
    s.on('opentagstart', () => this.onOpenTagStart());
    s.on('attribute', (attr) => this.onAttribute(attr));
    s.on('opentag', (tag) => this.onOpenTag(tag));
    s.on('closetag', () => this.onCloseTag());
    s.on('cdata', (text) => this.appendText(text));
    // Text outside a unit (whitespace keepalives between stanzas) is not even gathered by saxes.
    if (isFramed) s.on('text', this.onText);
  }

  /**
   * Parse the next piece of text. Returns the failure that ends the document, or undefined. After a failure,
   * or after `halt()` from a handler, nothing more is emitted and later writes are ignored.
   */
  write(text: string): StreamFailure | undefined {
    if (this.isHalted) return undefined;
    try {
      this.saxes.write(text);
    } catch (err) {
      if (err instanceof Halt) return err.failure;
      throw err;
    }
    return undefined;
  }

  /** Framed mode: the document is complete; report what is missing. */
  end(): StreamFailure | undefined {
    if (this.isHalted) return undefined;
    try {
      this.saxes.close();
    } catch (err) {
      if (err instanceof Halt) return err.failure;
      throw err;
    }
    return undefined;
  }

  /** Stop from inside an event (the stream restarts, or it is over): the rest of the piece is not read. */
  stop(): void {
    this.isHalted = true;
  }

  private halt(failure: StreamFailure | undefined): never {
    this.isHalted = true;
    throw new Halt(failure);
  }

  private checkHalted(): void {
    if (this.isHalted) throw new Halt(undefined);
  }

  private checkDeclaration(decl: XMLDecl): void {
    // RFC 6120 §11.6: UTF-8 only; the bytes were decoded as UTF-8 whatever the declaration says.
    if (decl.encoding !== undefined && !/^utf-?8$/i.test(decl.encoding)) {
      this.halt({ condition: 'unsupported-encoding', text: 'Only UTF-8 is supported (RFC 6120 §11.6).' });
    }
  }

  private onOpenTagStart(): void {
    this.checkHalted();
    this.depth++;
    if (this.depth > this.maxDepth) this.halt({ condition: 'policy-violation', text: `Elements nested deeper than ${MAX_DEPTH} levels.` });
    this.nsOnElement = 0;
  }

  private onAttribute(attr: { name: string; prefix: string }): void {
    this.checkHalted();
    if (attr.name === XMLNS_PREFIX || attr.prefix === XMLNS_PREFIX) {
      // Counted as they arrive, before saxes resolves anything against them.
      if (++this.nsOnElement > MAX_NS_PER_ELEMENT) this.halt({ condition: 'policy-violation', text: `More than ${MAX_NS_PER_ELEMENT} namespace declarations on one element.` });
      if (++this.nsInUnit > MAX_NS_PER_STANZA) this.halt({ condition: 'policy-violation', text: `More than ${MAX_NS_PER_STANZA} namespace declarations in one stanza.` });
    }
    // An own property named __proto__ cannot be made by assignment: it would vanish from the routed stanza.
    if (attr.name === '__proto__') this.halt({ condition: 'bad-format', text: 'The attribute name __proto__ is not supported.' });
  }

  private onOpenTag(tag: SaxesTagNS): void {
    this.checkHalted();
    if (this.depth < this.unitDepth) return this.openRoot(tag);
    const parent = this.frames.at(-1);
    const parentUri = parent ? parent.uri : this.unitDepth === 2 ? this.rootDefault : '';
    const attrs: Record<string, string> = {};
    // The element's own namespace, written only where it changes, so prefixes never reach the recipient.
    if (tag.uri !== parentUri) attrs.xmlns = tag.uri;
    for (const name in tag.attributes) {
      if (name === XMLNS_PREFIX) continue;
      const attr = tag.attributes[name]!;
      attrs[name] = attr.value;
      if (attr.prefix !== '' && attr.prefix !== XML_PREFIX && attr.prefix !== XMLNS_PREFIX) this.bindAttributePrefix(attr, tag, attrs);
    }
    const el = new Element(tag.local, attrs);
    if (parent) {
      el.parent = parent.el;
      parent.el.children.push(el);
    } else if (this.unitDepth === 2) {
      this.saxes.on('text', this.onText);
    }
    this.frames.push({ el, uri: tag.uri, ns: tag.ns });
  }

  private openRoot(tag: SaxesTagNS): void {
    const attrs: Record<string, string> = {};
    for (const name in tag.attributes) attrs[name] = tag.attributes[name]!.value;
    this.rootNs = tag.ns;
    this.rootDefault = tag.ns[''] ?? '';
    this.lastBoundary = this.saxes.position;
    this.nsInUnit = 0;
    this.events.onRoot?.(new Element(tag.name, attrs));
  }

  /**
   * A prefixed attribute bound on the stream header: copy the declaration onto the stanza, so that it stays
   * well-formed on its own when routed (Namespaces in XML 1.0 §5). `attrs` are those of `tag`, being built.
   */
  private bindAttributePrefix(attr: SaxesAttributeNS, tag: SaxesTagNS, attrs: Record<string, string>): void {
    if (attr.prefix in tag.ns) return;
    for (let i = this.frames.length - 1; i >= 0; i--) if (attr.prefix in this.frames[i]!.ns) return;
    const uri = this.rootNs[attr.prefix];
    if (uri === undefined) return;
    const unit = this.frames[0];
    (unit ? unit.el.attrs : attrs)[`${XMLNS_PREFIX}:${attr.prefix}`] = uri;
  }

  private onCloseTag(): void {
    this.checkHalted();
    this.depth--;
    if (this.depth < this.unitDepth - 1) {
      // Only in stream mode: the root closed.
      this.lastBoundary = this.saxes.position;
      this.events.onRootEnd?.();
      return;
    }
    const frame = this.frames.pop()!;
    if (this.frames.length > 0) return;
    this.lastBoundary = this.saxes.position;
    this.nsInUnit = 0;
    if (this.unitDepth === 2) this.saxes.off('text');
    this.events.onElement(frame.el);
  }

  private appendText(text: string): void {
    this.checkHalted();
    const frame = this.frames.at(-1);
    if (!frame) return;
    const { children } = frame.el;
    const last = children.length - 1;
    if (last >= 0 && typeof children[last] === 'string') children[last] += text;
    else children.push(text);
  }
}

/** The stream error for a saxes well-formedness error (RFC 6120 §4.9.3.13, §4.9.3.18). */
function classify(message: string): StreamFailure {
  const m = message.toLowerCase();
  // RFC 6120 §11.1: entity references other than the five predefined ones are restricted XML.
  const isRestricted = ['doctype', 'undefined entity', 'processing instruction', 'at the start of the document', 'comment'].some((w) => m.includes(w));
  if (isRestricted) {
    return { condition: 'restricted-xml', text: `Restricted XML (RFC 6120 §11.1): ${message}` };
  }
  return { condition: 'not-well-formed', text: `Not well-formed XML: ${message}` };
}
