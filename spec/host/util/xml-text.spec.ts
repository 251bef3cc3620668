// Specs for lib/host/xml-text.ts: the XML 1.0 §2.2 character check and code point descriptions.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeCodePoint, findIllegalXmlChar } from '../../../lib/host/util/xml-text.js';

// The reference walks code points one by one with for...of, which yields a lone surrogate as itself.
function isLegalXmlCodePoint(codePoint: number): boolean {
  if (codePoint === 0x9 || codePoint === 0xa || codePoint === 0xd) return true;
  if (codePoint >= 0x20 && codePoint <= 0xd7ff) return true;
  if (codePoint >= 0xe000 && codePoint <= 0xfffd) return true;
  return codePoint >= 0x10000 && codePoint <= 0x10ffff;
}

function referenceFind(text: string): { index: number; codePoint: number } | null {
  let index = 0;
  for (const char of text) {
    const codePoint = char.codePointAt(0) as number;
    if (!isLegalXmlCodePoint(codePoint)) return { index, codePoint };
    index += char.length;
  }
  return null;
}

// Strings that hit the edges often: controls, the range limits and both halves of surrogate pairs on their own.
const edgeUnit = fc.oneof(
  fc.constantFrom('\t', '\n', '\r', ' ', '\u0000', '\u001b', '\u007f', '\u0085', '\uD7FF', '\uE000', '\uFFFD', '\uFFFE', '\uFFFF'),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
  fc.constantFrom('\u{10000}', '\u{1F600}', '\u{10FFFF}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

describe('findIllegalXmlChar', () => {
  describe('refuses what XML 1.0 §2.2 forbids', () => {
    const cases: Array<[string, string, number, number]> = [
      ['NUL', 'a\u0000b', 1, 0x0],
      ['ESC', 'ab\u001b', 2, 0x1b],
      ['a C0 control next to tab', '\t\u0001', 1, 0x1],
      ['U+FFFE', 'x\uFFFE', 1, 0xfffe],
      ['U+FFFF', '\uFFFF', 0, 0xffff],
      ['a lone high surrogate at the end', 'ok\uD83D', 2, 0xd83d],
      ['a lone high surrogate followed by a letter', '\uD83Dx', 0, 0xd83d],
      ['a lone low surrogate', 'a\uDE00', 1, 0xde00],
      ['a low surrogate before a high one (reversed pair)', '\uDE00\uD83D', 0, 0xde00],
    ];
    for (const [name, text, index, codePoint] of cases) {
      it(`finds ${name}`, () => {
        assert.deepEqual(findIllegalXmlChar(text), { index, codePoint });
      });
    }

    it('reports the first offender, as a UTF-16 index', () => {
      assert.deepEqual(findIllegalXmlChar('\u{1F600}\u0000\u0001'), { index: 2, codePoint: 0 });
    });
  });

  describe('accepts what XML 1.0 §2.2 allows', () => {
    const cases: Array<[string, string]> = [
      ['the empty string', ''],
      ['tab, LF and CR', '\t\n\r'],
      ['DEL (U+007F) and C1 controls, legal though discouraged in XML 1.0', '\u007f\u0080\u0085\u009f'],
      ['the edges of the BMP ranges', ' \uD7FF\uE000\uFFFD'],
      ['emoji as surrogate pairs', '😀👍🏽🇫🇷'],
      ['U+10000 and U+10FFFF', '\u{10000}\u{10FFFF}'],
      ['ordinary text', 'Hello, wörld! Σ π ♚'],
    ];
    for (const [name, text] of cases) {
      it(`accepts ${name}`, () => {
        assert.equal(findIllegalXmlChar(text), null);
      });
    }
  });

  it('scans 256 KiB in one pass and finds the last character', () => {
    const text = 'a'.repeat(256 * 1024 - 1) + '\u0000';
    const started = performance.now();
    assert.deepEqual(findIllegalXmlChar(text), { index: 256 * 1024 - 1, codePoint: 0 });
    assert.equal(findIllegalXmlChar('😀'.repeat(128 * 1024)), null);
    // Generous: only a quadratic or backtracking scan would come near it.
    assert.ok(performance.now() - started < 1000);
  });

  it('agrees with a code-point-by-code-point reference (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: edgeUnit, maxLength: 40 }), (text) => {
        assert.deepEqual(findIllegalXmlChar(text), referenceFind(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the reference on arbitrary code points (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        assert.deepEqual(findIllegalXmlChar(text), referenceFind(text));
      }),
    );
  });

  it('keeps no state between calls', () => {
    assert.deepEqual(findIllegalXmlChar('\u0000'), { index: 0, codePoint: 0 });
    assert.deepEqual(findIllegalXmlChar('\u0000'), { index: 0, codePoint: 0 });
  });
});

describe('describeCodePoint', () => {
  const cases: Array<[number, string]> = [
    [0x0, 'U+0000 (NUL)'],
    [0x1b, 'U+001B (ESC)'],
    [0x9, 'U+0009 (HT)'],
    [0x20, 'U+0020 (SPACE)'],
    [0x7f, 'U+007F (DEL)'],
    [0x85, 'U+0085 (NEL)'],
    [0xd800, 'U+D800 (lone surrogate)'],
    [0xdfff, 'U+DFFF (lone surrogate)'],
    [0xfffe, 'U+FFFE (noncharacter)'],
    [0x1ffff, 'U+1FFFF (noncharacter)'],
    [0x22, 'U+0022 (")'],
    [0x265a, 'U+265A (♚)'],
    [0x1f600, 'U+1F600 (😀)'],
    [0x200b, 'U+200B'],
    [0x0301, 'U+0301'],
  ];
  for (const [codePoint, expected] of cases) {
    it(`describes ${expected}`, () => {
      assert.equal(describeCodePoint(codePoint), expected);
    });
  }
});
