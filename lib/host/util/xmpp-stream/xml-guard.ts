// Byte-level guard in front of the XML parser: restricted XML (RFC 6120 §11.1) and the stanza size limit.
// Like Prosody's util/xmppstream.lua (restricted_handler, stanza_size_limit), but before ltx, which is lax:
// it silently skips DOCTYPEs, comments and PIs, so anything it would skip must be refused here first.

/** Why the guard stopped a stream; the condition is the stream error to send (RFC 6120 §4.9.3). */
export interface GuardFailure {
  condition: 'restricted-xml' | 'policy-violation' | 'not-well-formed';
  text: string;
}

const enum State {
  Text,
  /** Just after `<`. */
  Open,
  /** Inside a start tag, outside attribute values. */
  StartTag,
  /** Inside a quoted attribute value. */
  AttrValue,
  /** Inside an end tag. */
  EndTag,
  /** After `<!`, matching `[CDATA[`. */
  Bang,
  Cdata,
  /** After `<?`, reading the target name; only `<?xml` is allowed, once, before the root. */
  PiTarget,
  /** Inside the XML declaration, until `?>`. */
  XmlDecl,
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const QUOT = 0x22;
const APOS = 0x27;
const RBRACKET = 0x5d;
const CDATA_OPEN = Buffer.from('[CDATA[');
/**
 * Deepest element nesting accepted (stream root = 1). Real payloads (XHTML-IM, pubsub) stay far below; a
 * stanza of 50,000 nested tags fits the size limit but would overflow every recursive walk (toString, clone).
 */
export const MAX_DEPTH = 128;
const XML_TARGET = 'xml';

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * Tracks element depth over raw bytes. Depth 0 is before the stream header, 1 is inside `<stream:stream>`,
 * 2 and more is inside a stanza. All of it is plain ASCII, and UTF-8 never puts ASCII bytes inside a
 * multi-byte character, so scanning bytes is exact and needs no decoding.
 */
export class XmlGuard {
  private state = State.Text;
  private depth = 0;
  /** Bytes the parser holds for the current top-level element (or text run) since it started. */
  private pending = 0;
  private hasSeenRoot = false;
  private quote = 0;
  private prev = 0;
  private matched = 0;
  private target = '';
  private brackets = 0;

  constructor(private readonly maxStanzaBytes: number) {}

  /** Scan the next chunk. Returns the first violation, or undefined when the chunk may go to the parser. */
  scan(chunk: Uint8Array): GuardFailure | undefined {
    for (let i = 0; i < chunk.length; i++) {
      const failure = this.step(chunk[i]!);
      if (failure) return failure;
    }
    return undefined;
  }

  /** The stream header has been read in full. */
  get hasRoot(): boolean {
    return this.hasSeenRoot;
  }

  /** Bytes counted against the size limit right now (for tests and logs). */
  get pendingBytes(): number {
    return this.pending;
  }

  private step(b: number): GuardFailure | undefined {
    this.pending++;
    if (this.pending > this.maxStanzaBytes) {
      return { condition: 'policy-violation', text: `Stanza larger than ${this.maxStanzaBytes} bytes.` };
    }
    const failure = this.advance(b);
    this.prev = b;
    return failure;
  }

  private advance(b: number): GuardFailure | undefined {
    switch (this.state) {
      case State.Text:
        if (b === LT) this.onLessThan();
        return undefined;
      case State.Open:
        return this.onOpen(b);
      case State.StartTag:
        return this.onStartTag(b);
      case State.AttrValue:
        if (b === this.quote) this.state = State.StartTag;
        return undefined;
      case State.EndTag:
        if (b === GT) this.closeElement();
        return undefined;
      case State.Bang:
        return this.onBang(b);
      case State.Cdata:
        return this.onCdata(b);
      case State.PiTarget:
        return this.onPiTarget(b);
      case State.XmlDecl:
        if (b === GT && this.prev === QUESTION) this.state = State.Text;
        return undefined;
    }
  }

  private onLessThan(): void {
    // A new top-level element or the root starts here: the parser flushed what came before.
    if (this.depth <= 1) this.pending = 1;
    this.state = State.Open;
  }

  private onOpen(b: number): GuardFailure | undefined {
    if (b === SLASH) {
      this.state = State.EndTag;
      return undefined;
    }
    if (b === BANG) {
      this.state = State.Bang;
      this.matched = 0;
      return undefined;
    }
    if (b === QUESTION) {
      this.state = State.PiTarget;
      this.target = '';
      return undefined;
    }
    this.state = State.StartTag;
    return undefined;
  }

  private onStartTag(b: number): GuardFailure | undefined {
    if (b === QUOT || b === APOS) {
      this.quote = b;
      this.state = State.AttrValue;
      return undefined;
    }
    if (b !== GT) return undefined;
    this.state = State.Text;
    this.depth++;
    if (this.depth > MAX_DEPTH) return { condition: 'policy-violation', text: `Elements nested deeper than ${MAX_DEPTH} levels.` };
    if (this.depth === 1) {
      // The stream header is complete; the parser emitted it and holds nothing more.
      this.hasSeenRoot = true;
      this.pending = 0;
    }
    if (this.prev === SLASH) this.closeElement();
    return undefined;
  }

  private closeElement(): void {
    this.state = State.Text;
    this.depth--;
    // Back at stream level: the stanza is complete and the parser has emitted it.
    if (this.depth <= 1) this.pending = 0;
  }

  private onBang(b: number): GuardFailure | undefined {
    // CDATA is fine inside a stanza; any other `<!` is a comment, DOCTYPE or ENTITY declaration.
    if (this.depth >= 2 && b === CDATA_OPEN[this.matched]) {
      this.matched++;
      if (this.matched === CDATA_OPEN.length) {
        this.state = State.Cdata;
        this.brackets = 0;
      }
      return undefined;
    }
    return { condition: 'restricted-xml', text: 'Comments, DOCTYPE and entity declarations are not allowed (RFC 6120 §11.1).' };
  }

  private onCdata(b: number): GuardFailure | undefined {
    if (b === GT && this.brackets >= 2) {
      this.state = State.Text;
      return undefined;
    }
    this.brackets = b === RBRACKET ? this.brackets + 1 : 0;
    return undefined;
  }

  private onPiTarget(b: number): GuardFailure | undefined {
    if (!isSpace(b) && b !== QUESTION) {
      this.target += String.fromCharCode(b);
      if (this.target.length <= XML_TARGET.length) return undefined;
    }
    // Only the XML declaration, and only before the stream header (RFC 6120 §11.5 allows it there).
    if (this.target.toLowerCase() === XML_TARGET && this.depth === 0 && !this.hasSeenRoot) {
      this.state = State.XmlDecl;
      return undefined;
    }
    return { condition: 'restricted-xml', text: 'Processing instructions are not allowed (RFC 6120 §11.1).' };
  }
}
