// XHTML-IM (XEP-0071): a strict parser for the `html` field and the §6 integration-set whitelist.
// Written here rather than using ltx (@xmpp/xml's parser): ltx skips DOCTYPEs, PIs and unclosed tags
// silently and throws from inside write() on bad references, so it cannot tell "not well-formed" apart.

import { xml, findIllegalXmlChar, describeCodePoint, type Element } from '../host/api.js';
import { problem, ok, quote, type Result } from './problem.js';

export const XHTML_IM_NS = 'http://jabber.org/protocol/xhtml-im';
export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Deeper nesting than this is refused (no message needs it; keeps the walk cheap). */
export const MAX_DEPTH = 64;

interface XElement {
  kind: 'element';
  name: string;
  attrs: Array<[string, string]>;
  children: XNode[];
}
interface XText {
  kind: 'text';
  text: string;
}
type XNode = XElement | XText;

const NAME_START = ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
// XML 1.0 §2.3 NameChar lists combining marks by code point; with the u flag each is matched on its own.
// eslint-disable-next-line no-misleading-character-class
const NAME_RE = new RegExp(`[${NAME_START}][${NAME_CHAR}]*`, 'uy');
const SPACE_RE = /[ \t\r\n]*/y;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

const notWellFormed = (what: string): { ok: false; problem: { status: number; detail: string } } =>
  problem(400, `The html is not well-formed XML: ${what}.`);

/**
 * Parse an XML fragment (the content of an element): elements, text, the five predefined entities,
 * character references, CDATA and comments (dropped). DOCTYPE, entity declarations and
 * processing instructions are refused before anything is expanded.
 */
export function parseFragment(src: string): Result<XNode[]> {
  const root: XElement = { kind: 'element', name: '', attrs: [], children: [] };
  const stack: XElement[] = [root];
  let i = 0;
  const top = (): XElement => stack[stack.length - 1]!;
  const readName = (): string | undefined => {
    NAME_RE.lastIndex = i;
    const m = NAME_RE.exec(src);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const skipSpace = (): number => {
    SPACE_RE.lastIndex = i;
    const m = SPACE_RE.exec(src)!;
    i += m[0].length;
    return m[0].length;
  };
  const addText = (text: string): void => {
    const children = top().children;
    const last = children[children.length - 1];
    if (last?.kind === 'text') last.text += text;
    else children.push({ kind: 'text', text });
  };

  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end === -1) return notWellFormed('a comment is not closed with -->');
      if (src.slice(i + 4, end).includes('--')) return notWellFormed('a comment contains --');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9);
      if (end === -1) return notWellFormed('a CDATA section is not closed with ]]>');
      addText(src.slice(i + 9, end));
      i = end + 3;
    } else if (src.startsWith('<!', i)) {
      return problem(400, 'The html must not contain a DOCTYPE or entity declarations (<!…>); send the markup only.');
    } else if (src.startsWith('<?', i)) {
      return problem(400, 'The html must not contain processing instructions (<?…?>); send the markup only.');
    } else if (src.startsWith('</', i)) {
      i += 2;
      const name = readName();
      skipSpace();
      if (name === undefined || src[i] !== '>') return notWellFormed('a closing tag is malformed');
      i += 1;
      if (stack.length === 1) return notWellFormed(`</${name}> closes nothing`);
      if (top().name !== name) return notWellFormed(`</${name}> closes <${top().name}>`);
      stack.pop();
    } else if (src[i] === '<') {
      i += 1;
      const name = readName();
      if (name === undefined) return notWellFormed('"<" must start a tag; write &lt; for a literal "<"');
      const element: XElement = { kind: 'element', name, attrs: [], children: [] };
      let selfClosing = false;
      for (;;) {
        const spaced = skipSpace() > 0;
        if (src.startsWith('/>', i)) {
          selfClosing = true;
          i += 2;
          break;
        }
        if (src[i] === '>') {
          i += 1;
          break;
        }
        if (i >= src.length) return notWellFormed(`the tag <${name}> is not closed with >`);
        if (!spaced) return notWellFormed(`attributes of <${name}> must be separated by spaces`);
        const attr = readName();
        if (attr === undefined) return notWellFormed(`<${name}> has a malformed attribute`);
        skipSpace();
        if (src[i] !== '=') return notWellFormed(`the attribute ${attr} of <${name}> has no value`);
        i += 1;
        skipSpace();
        const q = src[i];
        if (q !== '"' && q !== "'") return notWellFormed(`the value of ${attr} on <${name}> must be quoted`);
        const end = src.indexOf(q, i + 1);
        if (end === -1) return notWellFormed(`the value of ${attr} on <${name}> is not closed`);
        const raw = src.slice(i + 1, end);
        if (raw.includes('<')) return notWellFormed(`the value of ${attr} on <${name}> contains "<"; write &lt;`);
        const value = expandReferences(raw);
        if (!value.ok) return value;
        if (element.attrs.some(([n]) => n === attr)) return notWellFormed(`<${name}> has the attribute ${attr} twice`);
        element.attrs.push([attr, value.value.replace(/[\t\n\r]/g, ' ')]);
        i = end + 1;
      }
      top().children.push(element);
      if (!selfClosing) {
        if (stack.length > MAX_DEPTH) return problem(400, `The html is nested more than ${MAX_DEPTH} elements deep.`);
        stack.push(element);
      }
    } else {
      let end = src.indexOf('<', i);
      if (end === -1) end = src.length;
      const raw = src.slice(i, end);
      if (raw.includes(']]>')) return notWellFormed('text contains "]]>"; write ]]&gt;');
      const text = expandReferences(raw);
      if (!text.ok) return text;
      addText(text.value);
      i = end;
    }
  }
  if (stack.length > 1) return notWellFormed(`<${top().name}> is not closed`);
  return ok(root.children);
}

/** Expand the five predefined entities and character references; anything else is refused. */
function expandReferences(raw: string): Result<string> {
  if (!raw.includes('&')) return ok(raw);
  let out = '';
  let i = 0;
  for (;;) {
    const amp = raw.indexOf('&', i);
    if (amp === -1) return ok(out + raw.slice(i));
    out += raw.slice(i, amp);
    const semi = raw.indexOf(';', amp);
    const ref = semi === -1 ? raw.slice(amp, amp + 12) : raw.slice(amp + 1, semi);
    if (semi === -1 || !/^(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]*)$/.test(ref)) {
      return notWellFormed(`${quote(ref)} is not a valid reference; write &amp; for a literal "&"`);
    }
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      const ch = cp <= 0x10ffff ? String.fromCodePoint(cp) : undefined;
      if (ch === undefined || findIllegalXmlChar(ch) !== null) {
        return problem(400, `The html refers to the character ${cp <= 0x10ffff ? describeCodePoint(cp) : ref}, which XML 1.0 does not allow.`);
      }
      out += ch;
    } else {
      const ch = PREDEFINED[ref];
      if (ch === undefined) {
        return problem(400, `The html uses the entity &${ref};, which is not defined in XML; write the character itself or a character reference such as &#160;.`);
      }
      out += ch;
    }
    i = semi + 1;
  }
}

// XEP-0071 §6: the integration set. Core attributes (class, id, title), the style attribute module,
// and xml:lang are allowed on every element; the table adds the element-specific ones.
const COMMON_ATTRS = ['class', 'id', 'title', 'style', 'xml:lang'];
const TEXT_ELEMENTS = ['abbr', 'acronym', 'address', 'br', 'cite', 'code', 'dfn', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'kbd', 'p', 'pre', 'samp', 'span', 'strong', 'var'];
const LIST_ELEMENTS = ['dl', 'dt', 'dd', 'ol', 'ul', 'li'];
const ELEMENT_ATTRS: Record<string, readonly string[]> = {
  ...Object.fromEntries([...TEXT_ELEMENTS, ...LIST_ELEMENTS].map((n) => [n, []])),
  blockquote: ['cite'],
  q: ['cite'],
  a: ['accesskey', 'charset', 'href', 'hreflang', 'rel', 'rev', 'tabindex', 'type'],
  img: ['alt', 'height', 'longdesc', 'src', 'width'],
};
/** Structure-module elements: `body` only at the top of the fragment; the others never inside a body. */
const STRUCTURE = new Set(['html', 'head', 'title', 'body']);
const URI_ATTRS = new Set(['href', 'src', 'longdesc', 'cite']);
const URI_SCHEME_RE = /^(https?|xmpp|mailto):/i;
const STYLE_FORBIDDEN_RE = /url\s*\(|expression\s*\(|@import|javascript:|\\/i;
const BLOCKS = new Set(['p', 'div', 'li', 'dt', 'dd', 'blockquote', 'pre', 'address', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'dl']);

const UNDERLINE = '<span style="text-decoration: underline">';
const STRIKE = '<span style="text-decoration: line-through">';
/** What to write instead of common HTML that XHTML-IM does not have. */
const REPLACEMENTS: Record<string, string> = {
  b: '<strong>',
  i: '<em>',
  u: UNDERLINE,
  ins: UNDERLINE,
  s: STRIKE,
  strike: STRIKE,
  del: STRIKE,
  tt: '<code>',
  font: '<span style="color: …; font-family: …; font-size: …">',
  center: '<p style="text-align: center">',
  big: '<span style="font-size: larger">',
  small: '<span style="font-size: smaller">',
  sub: '<span style="vertical-align: sub">',
  sup: '<span style="vertical-align: super">',
  mark: '<span style="background-color: yellow">',
  hr: '<br/>',
  ...Object.fromEntries(['section', 'article', 'header', 'footer', 'nav', 'main', 'aside', 'figure', 'figcaption', 'details', 'summary'].map((n) => [n, '<div>'])),
};
const NEVER = new Set(['script', 'style', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'form', 'input', 'button', 'select', 'textarea', 'link', 'meta', 'base', 'svg', 'math', 'audio', 'video', 'canvas', 'template']);

export interface XhtmlIm {
  /** `<html xmlns="http://jabber.org/protocol/xhtml-im">` with one or more XHTML bodies. */
  element: Element;
  /** The text content, for a `<body>` when the payload has none (XEP-0071 §8 requires both). */
  text: string;
}

/**
 * Parse and check an `html` field. The fragment is the content of one XHTML body, or a
 * sequence of `<body>` elements (one per xml:lang, XEP-0071 §5). Undefined value means "no html".
 */
export function buildXhtmlIm(src: string): Result<XhtmlIm | undefined> {
  const illegal = findIllegalXmlChar(src);
  if (illegal) return problem(400, `The field "html" contains the character ${describeCodePoint(illegal.codePoint)} at index ${illegal.index}, which XML 1.0 does not allow.`);
  const parsed = parseFragment(src);
  if (!parsed.ok) return parsed;
  const nodes = parsed.value;
  const elements = nodes.filter((n): n is XElement => n.kind === 'element');
  const hasText = nodes.some((n) => n.kind === 'text' && n.text.trim() !== '');
  if (elements.length === 0 && !hasText) return ok(undefined);

  const bodyCount = elements.filter((e) => e.name === 'body').length;
  let bodies: XElement[];
  if (bodyCount === 0) {
    bodies = [{ kind: 'element', name: 'body', attrs: [], children: nodes }];
  } else if (bodyCount === elements.length && !hasText) {
    bodies = elements;
  } else {
    return problem(400, 'The html is either the content of one body or a sequence of <body> elements, not both mixed.');
  }

  const out = xml('html', { xmlns: XHTML_IM_NS });
  const texts: string[] = [];
  for (const body of bodies) {
    const checked = checkElement(body, 'body');
    if (!checked.ok) return checked;
    const el = xml('body', { ...checked.value, xmlns: XHTML_NS });
    const children = convertChildren(body.children, el);
    if (!children.ok) return children;
    out.cnode(el);
    texts.push(textOf(body).replace(/\n{3,}/g, '\n\n').trim());
  }
  return ok({ element: out, text: texts[0] ?? '' });
}

function convertChildren(nodes: XNode[], parent: Element): Result<true> {
  for (const node of nodes) {
    if (node.kind === 'text') {
      parent.t(node.text);
      continue;
    }
    const checked = checkElement(node, undefined);
    if (!checked.ok) return checked;
    const child = xml(node.name, checked.value);
    const inner = convertChildren(node.children, child);
    if (!inner.ok) return inner;
    parent.cnode(child);
  }
  return ok(true);
}

/** Check one element against the whitelist; returns its attributes (an XHTML xmlns is dropped as redundant). */
function checkElement(node: XElement, as: 'body' | undefined): Result<Record<string, string>> {
  const { name } = node;
  if (as === undefined && STRUCTURE.has(name)) {
    return problem(400, `The html contains <${name}> inside a body; send the body's content, or <body> elements only at the top.`);
  }
  if (as === undefined && !(name in ELEMENT_ATTRS)) return problem(400, unknownElementDetail(name));
  const allowed = as === 'body' ? COMMON_ATTRS : [...COMMON_ATTRS, ...ELEMENT_ATTRS[name]!];
  const attrs: Record<string, string> = {};
  for (const [attr, value] of node.attrs) {
    if (attr === 'xmlns') {
      if (value !== XHTML_NS) return problem(400, `The html element <${name}> is in the namespace ${quote(value)}; only XHTML (${XHTML_NS}) is allowed.`);
      continue;
    }
    if (!allowed.includes(attr)) return problem(400, unknownAttributeDetail(name, attr));
    if (URI_ATTRS.has(attr) && !URI_SCHEME_RE.test(value)) {
      return problem(400, `The html attribute ${attr} of <${name}> is ${quote(value)}; links must be absolute http, https, xmpp or mailto URIs.`);
    }
    if (attr === 'style' && STYLE_FORBIDDEN_RE.test(value)) {
      return problem(400, `The style of <${name}> must not load resources or run script (url(), expression(), @import, escapes).`);
    }
    attrs[attr] = value;
  }
  return ok(attrs);
}

function unknownElementDetail(name: string): string {
  const lower = name.toLowerCase();
  if (name.includes(':')) return `The html contains <${name}>; elements of other namespaces are not allowed in XHTML-IM.`;
  if (NEVER.has(lower)) return `The html contains <${name}>, which is never passed (XHTML-IM has no scripts, style sheets, frames, objects or forms).`;
  const replacement = REPLACEMENTS[lower] ?? (lower !== name && (lower in ELEMENT_ATTRS) ? `<${lower}>` : undefined);
  if (replacement) return `The html contains <${name}>, which XHTML-IM does not allow; use ${replacement} instead.`;
  return `The html contains <${name}>, which XHTML-IM (XEP-0071 §6) does not allow.`;
}

function unknownAttributeDetail(element: string, attr: string): string {
  const lower = attr.toLowerCase();
  if (lower.startsWith('on')) return `The html attribute ${attr} on <${element}> is not allowed: event handlers are never passed.`;
  if (lower.startsWith('xmlns')) return `The html attribute ${attr} on <${element}> is not allowed: namespace prefixes are not used in XHTML-IM.`;
  if (['align', 'color', 'bgcolor', 'face', 'size', 'border', 'valign'].includes(lower)) {
    return `The html attribute ${attr} on <${element}> is not allowed in XHTML-IM; use style instead.`;
  }
  return `The html attribute ${attr} on <${element}> is not allowed in XHTML-IM (XEP-0071 §6).`;
}

/** Plain text of a body: text nodes, alt text of images, line breaks for <br/> and block ends. */
function textOf(node: XNode): string {
  if (node.kind === 'text') return node.text;
  if (node.name === 'br') return '\n';
  if (node.name === 'img') return node.attrs.find(([n]) => n === 'alt')?.[1] ?? '';
  const inner = node.children.map(textOf).join('');
  return BLOCKS.has(node.name) ? `${inner}\n` : inner;
}
