// The one place the server parses and normalises JIDs: RFC 7622 (XMPP address format), with the PRECIS
// profiles of RFC 8265 (UsernameCaseMapped for the localpart, OpaqueString for the resourcepart) over the
// RFC 8264 string classes, and IDNA (UTS #46, as WHATWG URL applies it) for the domainpart.

import { isIPv4 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { HostError } from './errors.js';
import { describeCodePoint, findIllegalXmlChar } from './xml-text.js';
import { escapeInvisible } from './invisible.js';

export interface Jid {
  local: string | null;
  domain: string;
  resource: string | null;
  bare: string;
  full: string;
}

export type JidResult = { ok: true; jid: Jid } | { ok: false; error: string };

type PartResult = { ok: true; value: string } | { ok: false; reason: string };
type PartName = 'localpart' | 'domainpart' | 'resourcepart';
type PrecisClass = 'identifier' | 'freeform';

// RFC 7622 §3.2-3.4: every part is 1..1023 octets once prepared.
const MAX_PART_BYTES = 1023;
// RFC 1035 §2.3.4 / RFC 5890 §2.3.2.1: a DNS label (and so an A-label) is at most 63 octets.
const MAX_LABEL_BYTES = 63;
// The WHATWG URL "ends in a number" test: a last label of digits, or of "0x" and hex digits.
const ENDS_IN_NUMBER = /(^|\.)(\d+|0x[0-9a-f]*)$/i;
// Quoting a 256 KiB input back in full would turn an error message into a second payload.
const MAX_QUOTED_CHARS = 80;

// RFC 7622 §3.3.1: characters a localpart may not contain even though IdentifierClass allows them.
const LOCALPART_FORBIDDEN = new Set(['"', '&', "'", '/', ':', '<', '>', '@']);

// RFC 8265 §3.3.1 step 1 (width mapping): code points whose decomposition is <wide> or <narrow>.
// Mapped one by one, so halfwidth katakana plus voiced mark become two code points that NFC then joins.
const WIDE_OR_NARROW = /[\u3000\uFF01-\uFFEF]/gu;

// RFC 8264 §9 categories, as Unicode properties the regex engine knows.
const UNASSIGNED = /^\p{Cn}$/u;
const CONTROL = /^\p{Cc}$/u;
const SPACE = /^\p{Zs}$/u;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const LETTER_DIGIT = /^[\p{Ll}\p{Lu}\p{Lo}\p{Lm}\p{Mn}\p{Mc}\p{Nd}]$/u;
// FreeformClass also takes OtherLetterDigits (Lt Nl No Me), spaces, symbols and punctuation.
const FREEFORM_VALID = /^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]$/u;
// RFC 8264 §9.9: Hangul_Syllable_Type L, V or T (conjoining jamo that NFC did not fold into a syllable).
const OLD_HANGUL_JAMO = /^[\u1100-\u11FF\uA960-\uA97C\uD7B0-\uD7C6\uD7CB-\uD7FB]$/u;
const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_OR_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

// RFC 5892 §2.6 exceptions, which RFC 8264 §9.1 applies before every other rule.
const EXCEPTION_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);

// Every request and stanza parses the same few addresses again (sender, recipient, host), and PRECIS plus
// IDNA costs microseconds per call: results (frozen, so callers cannot change a shared one) are kept for
// the most recent inputs. A bound, so random addresses cannot grow it; short inputs only, so it holds
// at most MEMO_ENTRIES × MEMO_MAX_INPUT characters of keys.
const MEMO_ENTRIES = 1024;
const MEMO_MAX_INPUT = 256;
const memo = new Map<string, JidResult>();

/** Parses and normalises `input` as a JID per RFC 7622; a bad JID is a result, only a non-string throws. */
export function parseJid(input: string): JidResult {
  // Misuse from untyped callers (an absent attribute): "undefined" would otherwise parse as a domain.
  if (typeof input !== 'string') {
    throw new HostError('HOST_ERR_JID_INVALID', `parseJid expects a string, got ${input === null ? 'null' : typeof input}.`);
  }
  const known = memo.get(input);
  if (known !== undefined) return known;
  const result = Object.freeze(parseUncached(input));
  if (input.length <= MEMO_MAX_INPUT) {
    // Maps iterate in insertion order: the first key is the oldest.
    if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
    memo.set(input, result);
  }
  return result;
}

function parseUncached(input: string): JidResult {
  const illegal = findIllegalXmlChar(input);
  if (illegal !== null) {
    return fail(input, `it contains ${describeCodePoint(illegal.codePoint)}, which XML does not allow`);
  }
  if (input === '') return fail(input, 'it is empty');

  // RFC 7622 §3.1: split on the separators before any mapping, which could create new ones. Not with
  // @xmpp/jid's parse: it escapes a localpart it finds unescaped (XEP-0106:
  // "a b@x" becomes a valid "a\20b@x" where RFC 7622 needs an error), cannot tell "@x" or "x/" from "x",
  // and keeps "b@c" as a domain; undoing that would cost more than these few lines.
  const slash = input.indexOf('/');
  const rawResource = slash === -1 ? null : input.slice(slash + 1);
  const beforeResource = slash === -1 ? input : input.slice(0, slash);
  const at = beforeResource.indexOf('@');
  const rawLocal = at === -1 ? null : beforeResource.slice(0, at);
  const rawDomain = at === -1 ? beforeResource : beforeResource.slice(at + 1);

  if (rawDomain.includes('@')) return fail(input, 'more than one "@" before the domain');
  if (rawLocal === '') return fail(input, 'the localpart before "@" is empty');
  if (rawResource === '') return fail(input, 'the resourcepart after "/" is empty');

  const domain = prepareDomainpart(rawDomain);
  if (!domain.ok) return fail(input, domain.reason);
  const local = rawLocal === null ? null : prepareLocalpart(rawLocal);
  if (local !== null && !local.ok) return fail(input, local.reason);
  const resource = rawResource === null ? null : prepareResourcepart(rawResource);
  if (resource !== null && !resource.ok) return fail(input, resource.reason);

  return { ok: true, jid: buildJid(local?.value ?? null, domain.value, resource?.value ?? null) };
}

function buildJid(local: string | null, domain: string, resource: string | null): Jid {
  const bare = local === null ? domain : `${local}@${domain}`;
  const full = resource === null ? bare : `${bare}/${resource}`;
  return Object.freeze({ local, domain, resource, bare, full });
}

function fail(input: string, reason: string): JidResult {
  return { ok: false, error: `${quote(input)} is not a valid JID: ${reason}.` };
}

// The message ends up in logs, HTTP problem bodies and stanza <text/> elements, so the quoted input is
// short, XML-legal and free of invisible characters (a U+202E could make a log line read backwards).
function quote(input: string): string {
  if (input.length <= MAX_QUOTED_CHARS) return escapeInvisible(JSON.stringify(input));
  let end = MAX_QUOTED_CHARS - 16;
  // Do not cut a surrogate pair in half.
  if (/[\uD800-\uDBFF]/.test(input.charAt(end - 1))) end -= 1;
  return `${escapeInvisible(JSON.stringify(input.slice(0, end)))}… (${input.length} characters)`;
}


// ---------------------------------------------------------------------------------------------------------
// localpart: RFC 7622 §3.3, PRECIS UsernameCaseMapped (RFC 8265 §3.3).

function prepareLocalpart(raw: string): PartResult {
  const mapped = raw
    .replace(WIDE_OR_NARROW, (char) => char.normalize('NFKC'))
    .toLowerCase()
    .normalize('NFC');
  // DIFF: the directionality (Bidi) rule of RFC 8265 §3.3.1 step 5 is not applied: it needs the Bidi_Class
  // property, which JavaScript regular expressions cannot query, and a hand-made table would go stale.
  const tooLong = checkLength('localpart', mapped);
  if (tooLong !== null) return tooLong;
  for (const char of mapped) {
    if (LOCALPART_FORBIDDEN.has(char)) {
      return refuse('localpart', `contains ${describeOne(char)}, which RFC 7622 §3.3.1 does not allow in a localpart`);
    }
  }
  return checkPrecisClass('localpart', mapped, 'identifier');
}

// ---------------------------------------------------------------------------------------------------------
// resourcepart: RFC 7622 §3.4, PRECIS OpaqueString (RFC 8265 §4.2).

function prepareResourcepart(raw: string): PartResult {
  // RFC 8265 §4.2.1: non-ASCII spaces become U+0020; no case mapping; NFC. Nothing forbids a leading or
  // trailing space, so "juliet@example.com/ foo" (listed as invalid in RFC 7622 §3.5.2) is accepted, as
  // the profile it cites says and as other PRECIS implementations do.
  // DIFF: Prosody's resourceprep (stringprep) silently deletes U+FE0F and ZERO WIDTH JOINER; PRECIS refuses
  // default-ignorable code points, so a resource such as "❤️" (U+2764 U+FE0F) is an error here.
  const mapped = raw.replace(/\p{Zs}/gu, ' ').normalize('NFC');
  const tooLong = checkLength('resourcepart', mapped);
  if (tooLong !== null) return tooLong;
  return checkPrecisClass('resourcepart', mapped, 'freeform');
}

// ---------------------------------------------------------------------------------------------------------
// domainpart: RFC 7622 §3.2. IP literals as written in RFC 3986 §3.2.2, otherwise an IDNA domain name.

function prepareDomainpart(raw: string): PartResult {
  // RFC 7622 §3.2: one final label separator is stripped before anything else.
  const domain = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (domain === '') return refuse('domainpart', 'is empty');
  if (domain.startsWith('[')) return prepareIpv6(domain);
  if (isIPv4(domain)) return { ok: true, value: domain };
  return prepareDomainName(domain);
}

function prepareIpv6(domain: string): PartResult {
  // domainToASCII parses "[...]" as an IPv6 literal and prints the RFC 5952 canonical form. Zone ids
  // ("%eth0") are refused by it, as RFC 3986 has no syntax for them.
  const canonical = domain.endsWith(']') ? domainToASCII(domain) : '';
  if (canonical === '') return refuse('domainpart', 'is not a valid IPv6 address in brackets');
  return { ok: true, value: canonical };
}

function prepareDomainName(domain: string): PartResult {
  // Checked on the raw text too, because domainToASCII percent-decodes ("a%2eb" would become "a.b").
  const rawProblem = findNonLdhProblem(domain);
  if (rawProblem !== null) return refuse('domainpart', rawProblem);
  // WHATWG URL reads names ending in a number as IPv4 ("1.2.3" becomes "1.2.0.3", "a.123" fails); RFC 7622
  // only knows dotted-decimal IPv4, handled before, and RFC 3696 §2 rules out all-numeric top-level labels.
  if (ENDS_IN_NUMBER.test(domain)) return refuse('domainpart', 'ends in a number but is not an IPv4 address');
  const ascii = domainToASCII(domain);
  if (ascii === '' || isIPv4(ascii)) return refuse('domainpart', 'is not a valid domain name or IP address');
  // Mapping can turn non-ASCII into ASCII that is not LDH (U+FF01 becomes "!"), so check the result too.
  const asciiProblem = findNonLdhProblem(ascii) ?? findLabelProblem(ascii);
  if (asciiProblem !== null) return refuse('domainpart', asciiProblem);
  const unicode = domainToUnicode(ascii).normalize('NFC');
  const tooLong = checkLength('domainpart', unicode);
  if (tooLong !== null) return tooLong;
  return { ok: true, value: unicode };
}

// COMPAT: Prosody converts with libidn's IDNA_USE_STD3_ASCII_RULES, so ASCII in a domain name is limited
// to letters, digits, hyphen and dot (RFC 1123 §2.1); WHATWG URL alone would let "a_b" or "a!b" through.
function findNonLdhProblem(domain: string): string | null {
  for (const char of domain) {
    const codePoint = char.codePointAt(0) as number;
    if (codePoint >= 0x80 || /[a-zA-Z0-9.-]/.test(char)) continue;
    if (codePoint === 0x20) return 'contains a space';
    return `contains ${describeCodePoint(codePoint)}, which a domain name may not contain`;
  }
  for (const char of domain) {
    if (SPACE.test(char)) return `contains a space character, ${describeOne(char)}`;
  }
  return null;
}

function findLabelProblem(ascii: string): string | null {
  for (const label of ascii.split('.')) {
    if (label === '') return 'has an empty label (two dots in a row, or a dot at the start or end)';
    if (label.length > MAX_LABEL_BYTES) return `has a label longer than ${MAX_LABEL_BYTES} bytes`;
    if (label.startsWith('-') || label.endsWith('-')) return 'has a label that starts or ends with "-"';
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Shared checks.

function checkLength(part: PartName, value: string): PartResult | null {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes <= MAX_PART_BYTES) return null;
  return refuse(part, `is ${bytes} bytes long in UTF-8, more than the ${MAX_PART_BYTES} RFC 7622 allows`);
}

function checkPrecisClass(part: PartName, value: string, precisClass: PrecisClass): PartResult {
  const codePoints = Array.from(value, (char) => char.codePointAt(0) as number);
  for (let i = 0; i < codePoints.length; i++) {
    const problem = classifyCodePoint(codePoints, i, precisClass);
    if (problem !== null) return refuse(part, `contains ${problem}`);
  }
  return { ok: true, value };
}

// RFC 8264 §8: the derived property of one code point, in the order the RFC evaluates the rules.
// Returns null when the code point is allowed, else a phrase for "the localpart contains ...".
function classifyCodePoint(codePoints: number[], i: number, precisClass: PrecisClass): string | null {
  const codePoint = codePoints[i] as number;
  // Printable ASCII is valid in both classes and none of the rules below singles it out: skip them.
  if (codePoint >= 0x21 && codePoint <= 0x7e) return null;
  const char = String.fromCodePoint(codePoint);
  const what = describeCodePoint(codePoint);
  if (EXCEPTION_PVALID.has(codePoint)) return null;
  if (EXCEPTION_DISALLOWED.has(codePoint)) return `${what}, which RFC 5892 §2.6 disallows`;
  if (isContextO(codePoint)) {
    return contextOHolds(codePoints, i) ? null : `${what} where RFC 5892 Appendix A does not allow it`;
  }
  if (UNASSIGNED.test(char)) return `${what}, which is not an assigned Unicode character`;
  if (OLD_HANGUL_JAMO.test(char)) return `${what}, a conjoining Hangul jamo`;
  // DIFF: ZERO WIDTH (NON-)JOINER are CONTEXTJ (valid after a virama); that test needs the
  // Canonical_Combining_Class property, so they are refused here with the other invisible characters.
  if (IGNORABLE.test(char)) return `${what}, an invisible or reserved character`;
  if (CONTROL.test(char)) return `${what}, a control character`;
  if (precisClass === 'freeform') {
    return FREEFORM_VALID.test(char) ? null : `${what}, which is not a letter, digit, mark, symbol, punctuation or space`;
  }
  if (SPACE.test(char)) return codePoint === 0x20 ? 'a space' : `a space character, ${what}`;
  if (char.normalize('NFKC') !== char) return `${what}, a compatibility character`;
  if (LETTER_DIGIT.test(char)) return null;
  return `${what}, which is not a letter, digit or printable ASCII character`;
}

function isContextO(codePoint: number): boolean {
  return (
    codePoint === 0x00b7 ||
    codePoint === 0x0375 ||
    codePoint === 0x05f3 ||
    codePoint === 0x05f4 ||
    codePoint === 0x30fb ||
    isArabicIndicDigit(codePoint) ||
    isExtendedArabicIndicDigit(codePoint)
  );
}

// RFC 5892 Appendix A.3-A.9; the "label" there is the whole part here (RFC 8264 §9.3).
function contextOHolds(codePoints: number[], i: number): boolean {
  const codePoint = codePoints[i] as number;
  const before = codePoints[i - 1];
  const after = codePoints[i + 1];
  if (codePoint === 0x00b7) return before === 0x6c && after === 0x6c; // Catalan "l·l"
  if (codePoint === 0x0375) return after !== undefined && GREEK.test(String.fromCodePoint(after));
  if (codePoint === 0x05f3 || codePoint === 0x05f4) {
    return before !== undefined && HEBREW.test(String.fromCodePoint(before));
  }
  if (codePoint === 0x30fb) return codePoints.some((other) => KANA_OR_HAN.test(String.fromCodePoint(other)));
  if (isArabicIndicDigit(codePoint)) return !codePoints.some(isExtendedArabicIndicDigit);
  return !codePoints.some(isArabicIndicDigit);
}

function isArabicIndicDigit(codePoint: number): boolean {
  return codePoint >= 0x0660 && codePoint <= 0x0669;
}

function isExtendedArabicIndicDigit(codePoint: number): boolean {
  return codePoint >= 0x06f0 && codePoint <= 0x06f9;
}

function describeOne(char: string): string {
  return describeCodePoint(char.codePointAt(0) as number);
}

function refuse(part: PartName, phrase: string): PartResult {
  return { ok: false, reason: `the ${part} ${phrase}` };
}
