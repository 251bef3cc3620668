// The one check for text that is about to become XML: which characters XML 1.0 §2.2 ("Characters") allows,
// and how to name an offending one in an error message. Used for message bodies, JIDs and attribute values.

// XML 1.0 §2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
// With the `u` flag the regex walks code points: a well-formed surrogate pair is one astral code point
// (allowed), while a lone surrogate is matched as U+D800..U+DFFF, which no range allows. No `g` flag, so
// `exec` keeps no state between calls and always scans from the start in a single pass.
const ILLEGAL_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

// Control-code abbreviations from ISO 6429 / Unicode's NameAliases.txt: what people see in hex dumps.
const C0_NAMES = [
  'NUL', 'SOH', 'STX', 'ETX', 'EOT', 'ENQ', 'ACK', 'BEL', 'BS', 'HT', 'LF', 'VT', 'FF', 'CR', 'SO', 'SI',
  'DLE', 'DC1', 'DC2', 'DC3', 'DC4', 'NAK', 'SYN', 'ETB', 'CAN', 'EM', 'SUB', 'ESC', 'FS', 'GS', 'RS', 'US',
];
const C1_NAMES = [
  'PAD', 'HOP', 'BPH', 'NBH', 'IND', 'NEL', 'SSA', 'ESA', 'HTS', 'HTJ', 'VTS', 'PLD', 'PLU', 'RI', 'SS2', 'SS3',
  'DCS', 'PU1', 'PU2', 'STS', 'CCH', 'MW', 'SPA', 'EPA', 'SOS', 'SGC', 'SCI', 'CSI', 'ST', 'OSC', 'PM', 'APC',
];

// Only characters that render as themselves are shown; marks, spaces and format characters would be
// invisible or attach to the parenthesis.
const VISIBLE = /^[\p{L}\p{N}\p{P}\p{S}]$/u;

/** The first character XML 1.0 §2.2 forbids in `text`, or null when all are legal. */
export function findIllegalXmlChar(text: string): { index: number; codePoint: number } | null {
  const match = ILLEGAL_XML_CHAR.exec(text);
  if (match === null) return null;
  return { index: match.index, codePoint: match[0].codePointAt(0) as number };
}

/** A short human description like "U+001B (ESC)" for error messages. */
export function describeCodePoint(codePoint: number): string {
  const label = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = nameOf(codePoint);
  return name === null ? label : `${label} (${name})`;
}

function nameOf(codePoint: number): string | null {
  if (codePoint < 0x20) return C0_NAMES[codePoint] ?? null;
  if (codePoint === 0x20) return 'SPACE';
  if (codePoint === 0x7f) return 'DEL';
  if (codePoint >= 0x80 && codePoint < 0xa0) return C1_NAMES[codePoint - 0x80] ?? null;
  if (codePoint >= 0xd800 && codePoint <= 0xdfff) return 'lone surrogate';
  if (isNoncharacter(codePoint)) return 'noncharacter';
  if (codePoint > 0x10ffff || codePoint < 0) return null;
  const char = String.fromCodePoint(codePoint);
  return VISIBLE.test(char) ? char : null;
}

// Unicode §23.7: U+FDD0..U+FDEF and the last two code points of every plane are permanently unassigned.
function isNoncharacter(codePoint: number): boolean {
  if (codePoint >= 0xfdd0 && codePoint <= 0xfdef) return true;
  return codePoint >= 0 && codePoint <= 0x10ffff && (codePoint & 0xfffe) === 0xfffe;
}
