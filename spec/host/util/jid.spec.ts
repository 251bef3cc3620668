// Specs for lib/host/jid.ts: JID parsing and normalisation per RFC 7622 (examples from §3.5) and the
// PRECIS profiles of RFC 8265, plus fast-check properties (never throws, bounded parts, idempotent).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseJid, type Jid } from '../../../lib/host/util/jid.js';
import { findIllegalXmlChar } from '../../../lib/host/util/xml-text.js';

function ok(input: string): Jid {
  const result = parseJid(input);
  if (!result.ok) assert.fail(`expected ${JSON.stringify(input)} to parse, got: ${result.error}`);
  return result.jid;
}

function error(input: string): string {
  const result = parseJid(input);
  if (result.ok) assert.fail(`expected ${JSON.stringify(input)} to be refused, got ${JSON.stringify(result.jid)}`);
  return result.error;
}

function bytes(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

describe('parseJid', () => {
  describe('RFC 7622 §3.5.1 valid examples', () => {
    const cases: Array<[string, string | null, string, string | null]> = [
      ['juliet@example.com', 'juliet', 'example.com', null],
      ['juliet@example.com/foo', 'juliet', 'example.com', 'foo'],
      ['juliet@example.com/foo bar', 'juliet', 'example.com', 'foo bar'],
      ['juliet@example.com/foo@bar', 'juliet', 'example.com', 'foo@bar'],
      ['foo\\20bar@example.com', 'foo\\20bar', 'example.com', null],
      ['fussball@example.com', 'fussball', 'example.com', null],
      ['fußball@example.com', 'fußball', 'example.com', null],
      ['π@example.com', 'π', 'example.com', null],
      ['Σ@example.com/foo', 'σ', 'example.com', 'foo'],
      ['σ@example.com/foo', 'σ', 'example.com', 'foo'],
      ['ς@example.com/foo', 'ς', 'example.com', 'foo'],
      ['king@example.com/♚', 'king', 'example.com', '♚'],
      ['example.com', null, 'example.com', null],
      ['example.com/foobar', null, 'example.com', 'foobar'],
      ['a.example.com/b@example.net', null, 'a.example.com', 'b@example.net'],
    ];
    for (const [input, local, domain, resource] of cases) {
      it(`parses ${JSON.stringify(input)}`, () => {
        const jid = ok(input);
        assert.deepEqual({ local: jid.local, domain: jid.domain, resource: jid.resource }, { local, domain, resource });
      });
    }

    it('maps "Σ@example.com" to "σ@example.com" (UsernameCaseMapped lowercases)', () => {
      assert.equal(ok('Σ@example.com').bare, 'σ@example.com');
    });

    it('keeps "fußball" and "fussball" apart (toLowerCase, not case folding)', () => {
      assert.notEqual(ok('fußball@example.com').bare, ok('fussball@example.com').bare);
    });
  });

  describe('RFC 7622 §3.5.2 invalid examples', () => {
    const cases: Array<[string, RegExp]> = [
      ['"juliet"@example.com', /the localpart contains U\+0022/],
      ['foo bar@example.com', /the localpart contains a space/],
      ['@example.com/', /the localpart before "@" is empty/],
      ['henryⅣ@example.com', /the localpart contains U\+2173 \(ⅳ\), a compatibility character/],
      ['♚@example.com', /the localpart contains U\+265A \(♚\), which is not a letter, digit or printable ASCII/],
      ['juliet@', /the domainpart is empty/],
      ['/foobar', /the domainpart is empty/],
    ];
    for (const [input, expected] of cases) {
      it(`refuses ${JSON.stringify(input)}`, () => {
        assert.match(error(input), expected);
      });
    }

    // RFC 8265 §4.2 (OpaqueString, which RFC 7622 §3.4 names) has no rule against a leading space, so the
    // RFC 7622 example contradicts the profile it relies on; we follow the profile.
    it('accepts "juliet@example.com/ foo", whose leading space OpaqueString allows', () => {
      assert.equal(ok('juliet@example.com/ foo').resource, ' foo');
    });
  });

  describe('structure (RFC 7622 §3.1)', () => {
    it('refuses "a@b@c" with one clear sentence', () => {
      assert.equal(error('a@b@c'), '"a@b@c" is not a valid JID: more than one "@" before the domain.');
    });

    it('refuses the empty string', () => {
      assert.equal(error(''), '"" is not a valid JID: it is empty.');
    });

    it('refuses "@x" (empty localpart)', () => {
      assert.equal(error('@x'), '"@x" is not a valid JID: the localpart before "@" is empty.');
    });

    it('refuses "x@" and "x@/r" (empty domainpart)', () => {
      assert.equal(error('x@'), '"x@" is not a valid JID: the domainpart is empty.');
      assert.match(error('x@/r'), /the domainpart is empty/);
    });

    it('refuses "a@b/" (empty resourcepart)', () => {
      assert.equal(error('a@b/'), '"a@b/" is not a valid JID: the resourcepart after "/" is empty.');
    });

    it('takes everything after the first "/" as the resource, "/" and "@" included', () => {
      const jid = ok('a@b/c@d/e//f');
      assert.deepEqual([jid.local, jid.domain, jid.resource], ['a', 'b', 'c@d/e//f']);
    });

    it('finds "@" only before the first "/"', () => {
      const jid = ok('b/c@d');
      assert.deepEqual([jid.local, jid.domain, jid.resource], [null, 'b', 'c@d']);
    });

    it('builds bare and full', () => {
      const jid = ok('Juliet@Example.com/Balcony');
      assert.equal(jid.bare, 'juliet@example.com');
      assert.equal(jid.full, 'juliet@example.com/Balcony');
      assert.equal(ok('example.com').full, 'example.com');
    });

    it('splits before mapping, so a fullwidth "＠" cannot become a separator', () => {
      assert.match(error('ａ＠ｂ@example.com'), /the localpart contains U\+0040 \(@\), which RFC 7622 §3\.3\.1 does not allow/);
    });

    it('returns a frozen jid', () => {
      assert.ok(Object.isFrozen(ok('a@b')));
    });

    it('throws on a non-string, which is misuse', () => {
      assert.throws(() => parseJid(undefined as unknown as string), { code: 'HOST_ERR_JID_INVALID' });
    });
  });

  describe('localpart (UsernameCaseMapped, RFC 8265 §3.3)', () => {
    it('lowercases: "Receiver@LOCALHOST" is "receiver@localhost"', () => {
      assert.equal(ok('Receiver@LOCALHOST').bare, 'receiver@localhost');
    });

    it('maps fullwidth letters: "ｊｕｌｉｅｔ@example.com" is "juliet@example.com"', () => {
      assert.equal(ok('ｊｕｌｉｅｔ@example.com').bare, 'juliet@example.com');
    });

    it('maps halfwidth katakana and then composes them with NFC', () => {
      assert.equal(ok('ｶﾞ@example.com').local, 'ガ');
    });

    it('applies NFC', () => {
      assert.equal(ok('e\u0301@example.com').local, '\u00e9');
    });

    it('refuses spaces of any kind', () => {
      assert.match(error('alice smith@example.com'), /the localpart contains a space\.$/);
      assert.match(error('alice\u00a0smith@example.com'), /the localpart contains a space character, U\+00A0\.$/);
      assert.match(error('alice\u3000smith@example.com'), /the localpart contains a space\.$/);
      assert.match(error('alice\tsmith@example.com'), /the localpart contains U\+0009 \(HT\), a control character/);
    });

    for (const char of ['"', '&', "'", ':', '<', '>']) {
      it(`refuses ${JSON.stringify(char)} (RFC 7622 §3.3.1)`, () => {
        assert.match(error(`a${char}b@example.com`), /RFC 7622 §3\.3\.1 does not allow in a localpart/);
      });
    }

    it('allows the other printable ASCII characters', () => {
      const local = "!#$%()*+,-.0123456789;=?[\\]^_`abcxyz{|}~";
      assert.equal(ok(`${local}@example.com`).local, local);
    });

    it('refuses symbols, compatibility characters and C1 controls', () => {
      assert.match(error('a\u2603@example.com'), /U\+2603 \(☃\), which is not a letter, digit/);
      assert.match(error('\ufb01@example.com'), /U\+FB01 \(ﬁ\), a compatibility character/);
      assert.match(error('a\u0085@example.com'), /U\+0085 \(NEL\), a control character/);
    });

    it('refuses invisible characters', () => {
      assert.match(error('a\u200bb@example.com'), /U\+200B, an invisible or reserved character/);
      assert.match(error('a\u00adb@example.com'), /U\+00AD, an invisible or reserved character/);
    });

    it('applies the RFC 5892 Appendix A context rules', () => {
      assert.equal(ok('col·legi@example.com').local, 'col·legi');
      assert.match(error('co·llegi@example.com'), /U\+00B7 \(·\) where RFC 5892 Appendix A does not allow it/);
      assert.match(error('\u0661\u06f1@example.com'), /RFC 5892 Appendix A/);
    });

    it('allows letters and digits of other scripts', () => {
      assert.equal(ok('Ωμέγα١٢@example.com').local, 'ωμέγα١٢');
      assert.equal(ok('用户@example.com').local, '用户');
    });
  });

  describe('domainpart (RFC 7622 §3.2)', () => {
    it('strips one trailing dot', () => {
      assert.equal(ok('example.com.').domain, 'example.com');
      assert.equal(ok('juliet@example.com./r').full, 'juliet@example.com/r');
    });

    it('refuses a second trailing dot and empty labels', () => {
      assert.match(error('example.com..'), /the domainpart has an empty label/);
      assert.match(error('a..b'), /the domainpart has an empty label/);
      assert.match(error('.'), /the domainpart is empty/);
    });

    it('lowercases and maps fullwidth', () => {
      assert.equal(ok('EXAMPLE.Com').domain, 'example.com');
      assert.equal(ok('ｅｘａｍｐｌｅ.com').domain, 'example.com');
    });

    it('stores internationalised names in Unicode, whichever form came in', () => {
      assert.equal(ok('BÜCHER.example').domain, 'bücher.example');
      assert.equal(ok('xn--bcher-kva.example').domain, 'bücher.example');
    });

    it('allows IP literals and canonicalises IPv6', () => {
      assert.equal(ok('127.0.0.1').domain, '127.0.0.1');
      assert.equal(ok('[::1]').domain, '[::1]');
      assert.equal(ok('juliet@[0:0:0:0:0:0:0:1]/r').full, 'juliet@[::1]/r');
    });

    it('refuses malformed IP literals and WHATWG number shorthands', () => {
      assert.match(error('[::1'), /not a valid IPv6 address/);
      assert.match(error('[fe80::1%eth0]'), /not a valid IPv6 address/);
      assert.match(error('1.2.3'), /the domainpart ends in a number but is not an IPv4 address/);
      assert.match(error('0x7f.1'), /the domainpart ends in a number but is not an IPv4 address/);
      assert.match(error('juliet@example.123'), /ends in a number/);
      assert.match(error('256.1.1.1'), /ends in a number/);
    });

    it('refuses spaces and characters outside letters, digits and hyphens', () => {
      assert.match(error('alice smith'), /the domainpart contains a space\.$/);
      assert.match(error('a_b.example'), /U\+005F \(_\), which a domain name may not contain/);
      assert.match(error('a%2eb'), /U\+0025 \(%\), which a domain name may not contain/);
      assert.match(error('example.com:5222'), /U\+003A \(:\), which a domain name may not contain/);
      assert.match(error('ａ！ｂ'), /U\+0021 \(!\), which a domain name may not contain/);
    });

    it('refuses labels that start or end with a hyphen or are longer than 63 bytes', () => {
      assert.match(error('-a.example'), /starts or ends with "-"/);
      assert.match(error(`${'a'.repeat(64)}.example`), /longer than 63 bytes/);
      assert.equal(ok(`${'a'.repeat(63)}.example`).domain.length, 71);
    });

    it('refuses invalid IDNA', () => {
      assert.match(error('xn--zz.example'), /not a valid domain name/);
    });
  });

  describe('resourcepart (OpaqueString, RFC 8265 §4.2)', () => {
    it('keeps case, symbols and spaces', () => {
      assert.equal(ok('a@b/Balcony ♚ 😀 (2)').resource, 'Balcony ♚ 😀 (2)');
    });

    it('maps non-ASCII spaces to U+0020', () => {
      assert.equal(ok('a@b/x\u00a0y\u3000z').resource, 'x y z');
    });

    it('applies NFC', () => {
      assert.equal(ok('a@b/e\u0301').resource, '\u00e9');
    });

    it('accepts compatibility characters, which FreeformClass allows', () => {
      assert.equal(ok('a@b/Ⅳ ﬁ').resource, 'Ⅳ ﬁ');
    });

    it('refuses controls, invisible, private-use and unassigned characters', () => {
      assert.match(error('a@b/x\u0085'), /the resourcepart contains U\+0085 \(NEL\), a control character/);
      assert.match(error('a@b/x\u202e'), /the resourcepart contains U\+202E, an invisible or reserved character/);
      assert.match(error('a@b/\ue000'), /the resourcepart contains U\+E000, which is not a letter/);
      assert.match(error('a@b/\u0378'), /U\+0378, which is not an assigned Unicode character/);
    });

    it('refuses emoji variation selectors and joiners, which PRECIS calls ignorable (Prosody deletes them)', () => {
      assert.match(error('a@b/\u2764\ufe0f'), /U\+FE0F, an invisible or reserved character/);
      assert.match(error('a@b/\u{1F469}\u200d\u{1F4BB}'), /U\+200D, an invisible or reserved character/);
      assert.equal(ok('a@b/\u2764').resource, '\u2764');
    });
  });

  describe('length (RFC 7622 §3.2-3.4: 1..1023 bytes per part)', () => {
    it('accepts a localpart of 1023 bytes and refuses one of 1024', () => {
      assert.equal(ok(`${'a'.repeat(1023)}@example.com`).local?.length, 1023);
      assert.match(error(`${'a'.repeat(1024)}@example.com`), /the localpart is 1024 bytes long in UTF-8, more than the 1023/);
    });

    it('counts UTF-8 bytes after normalisation, not characters', () => {
      assert.ok(ok(`${'é'.repeat(511)}@example.com`));
      assert.match(error(`${'é'.repeat(512)}@example.com`), /the localpart is 1024 bytes/);
      // 1023 fullwidth letters are 3069 bytes as typed, 1023 once width-mapped.
      assert.equal(ok(`${'ａ'.repeat(1023)}@example.com`).local, 'a'.repeat(1023));
    });

    it('refuses a domainpart over 1023 bytes', () => {
      const domain = (label: string, count: number) => Array.from({ length: count }, () => label).join('.');
      const fits = domain('a'.repeat(63), 16); // 16 * 63 + 15 = 1023
      assert.equal(bytes(ok(fits).domain), 1023);
      const over = `${domain('a'.repeat(63), 15)}.${'a'.repeat(62)}.a`; // 15 * 63 + 62 + 1 + 16 dots = 1024
      assert.match(error(over), /the domainpart is 1024 bytes long/);
    });

    it('refuses a resourcepart over 1023 bytes', () => {
      assert.equal(ok(`a@b/${'r'.repeat(1023)}`).resource?.length, 1023);
      assert.match(error(`a@b/${'r'.repeat(1024)}`), /the resourcepart is 1024 bytes long/);
    });
  });

  describe('XML-illegal characters', () => {
    it('refuses a control character anywhere, naming it', () => {
      assert.equal(error('a\u001b@x'), '"a\\u001b@x" is not a valid JID: it contains U+001B (ESC), which XML does not allow.');
      assert.match(error('a@x/\u0000'), /U\+0000 \(NUL\), which XML does not allow/);
    });

    it('refuses lone surrogates and U+FFFE/U+FFFF', () => {
      assert.match(error('a@x/\ud800'), /U\+D800 \(lone surrogate\)/);
      assert.match(error('a@x/\uffff'), /U\+FFFF \(noncharacter\)/);
    });
  });

  describe('error messages', () => {
    it('shortens a huge input instead of quoting it whole', () => {
      const input = `${'a'.repeat(256 * 1024)} b@example.com`;
      const message = error(input);
      assert.ok(message.length < 200, message);
      assert.ok(message.startsWith(`"${'a'.repeat(64)}"… (${input.length} characters) is not a valid JID: the localpart is`), message);
    });

    it('escapes invisible characters in the quoted input', () => {
      assert.equal(
        error('x@y/a\u202eb'),
        '"x@y/a\\u202eb" is not a valid JID: the resourcepart contains U+202E, an invisible or reserved character.',
      );
    });
  });

  describe('properties (fast-check)', () => {
    // Units that exercise separators, mappings and the edge cases, mixed with arbitrary code points and
    // lone surrogates (which fc.string's 'binary' unit never produces).
    const jidUnit = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('@', '/', '.', 'a', 'B', '1', '-', ' ', 'ß', 'Σ', 'ς', 'ｊ', '＠', 'Ⅳ', '·', 'l', '\u00a0', '\u3000', '[', ']', ':', '\u0301', 'ｶ', 'ﾞ', 'İ', '\u200d', '\ufe0f', '%', '\t') },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
      { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)) },
    );
    const jidLike = fc.string({ unit: jidUnit, maxLength: 30 });
    const anyInput = fc.oneof(jidLike, fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string());
    // Strings that are JIDs more often than not, to give the ok-branch properties something to check.
    const label = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?$/);
    const wellFormed = fc
      .tuple(
        fc.option(fc.string({ unit: fc.oneof(fc.constantFrom('a', 'Z', '9', '.', 'ß', 'Ω', 'ｊ', 'é', 'e\u0301'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 12 })),
        fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')),
        fc.option(fc.string({ unit: fc.oneof(fc.constantFrom('/', '@', ' ', '\u00a0', 'R'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 12 })),
      )
      .map(([local, domain, resource]) => `${local === null ? '' : `${local}@`}${domain}${resource === null ? '' : `/${resource}`}`);

    function checkOkJid(input: string): void {
      const result = parseJid(input);
      if (!result.ok) return;
      const { jid } = result;
      for (const part of [jid.local, jid.domain, jid.resource]) {
        if (part === null) continue;
        assert.equal(findIllegalXmlChar(part), null);
        assert.ok(bytes(part) >= 1 && bytes(part) <= 1023);
      }
      assert.equal(jid.bare, jid.local === null ? jid.domain : `${jid.local}@${jid.domain}`);
      assert.equal(jid.full, jid.resource === null ? jid.bare : `${jid.bare}/${jid.resource}`);
      assert.deepEqual(parseJid(jid.full), { ok: true, jid });
    }

    it('never throws, and errors are one XML-safe sentence', () => {
      fc.assert(
        fc.property(fc.oneof(anyInput, wellFormed), (input) => {
          const result = parseJid(input);
          if (result.ok) return;
          assert.equal(findIllegalXmlChar(result.error), null);
          assert.match(result.error, /^".*" is not a valid JID: [^\n]+\.$/su);
          assert.doesNotMatch(result.error, /[\p{Cc}\p{Cf}]/u);
        }),
        { numRuns: 3000 },
      );
    });

    it('gives XML-legal parts of 1..1023 bytes, and parsing jid.full again gives the same jid', () => {
      fc.assert(fc.property(fc.oneof(anyInput, wellFormed), checkOkJid), { numRuns: 3000 });
    });

    it('accepts generated well-formed JIDs often enough for the property above to mean something', () => {
      const samples = fc.sample(wellFormed, { numRuns: 500, seed: 42 });
      const accepted = samples.filter((input) => parseJid(input).ok).length;
      assert.ok(accepted > 150, `only ${accepted} of 500 accepted`);
    });

    it('is idempotent near the length limits', () => {
      const long = fc.tuple(fc.integer({ min: 1000, max: 1030 }), fc.constantFrom('a', 'é', 'ｊ', '😀', 'ß'));
      fc.assert(
        fc.property(long, long, ([localCount, localChar], [resourceCount, resourceChar]) => {
          checkOkJid(`${localChar.repeat(localCount)}@example.com/${resourceChar.repeat(resourceCount)}`);
          checkOkJid(`${localChar.repeat(Math.floor(localCount / 4))}@example.com/${resourceChar.repeat(Math.floor(resourceCount / 4))}`);
        }),
        { numRuns: 200 },
      );
    });
  });
});
