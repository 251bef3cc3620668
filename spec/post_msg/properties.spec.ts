// Property-based specs (fast-check) for post_msg's parsers: no input throws, every answer is a
// status the spec names, and what goes in comes out in the stanza unchanged.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { findIllegalXmlChar } from '../../lib/host/api.js';
import { buildMessage, type MessageInput } from '../../lib/post_msg/message.js';
import { parseMediaType } from '../../lib/post_msg/media-type.js';
import { parseBasicAuthorization } from '../../lib/post_msg/credentials.js';
import { buildXhtmlIm, parseFragment } from '../../lib/post_msg/xhtml.js';

const RUNS = { numRuns: 400 };
const SPEC_STATUSES = new Set([400, 415, 422]);

/** Any UTF-16 string, lone surrogates and controls included. */
const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 60 });
/** XML-legal text (what a body may be). */
const legalText = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => findIllegalXmlChar(s) === null);
const contentTypes = fc.oneof(
  fc.constantFrom(undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/json', 'text/plain; charset=utf-8', 'application/json; charset=us-ascii', 'text/html'),
  anyString,
);
const pathRecipients = fc.oneof(fc.constantFrom('', 'alice', 'alice@localhost/phone', 'a%40b', '%', '%zz', 'x@remote.example'), anyString);

function input(contentType: string | undefined, body: Buffer, pathRecipient = 'alice'): MessageInput {
  return { contentType, body, pathRecipient, account: 'bob@localhost', host: 'localhost', id: 'p1', isLocalHost: (d) => d === 'localhost' };
}

function assertSpecOutcome(r: ReturnType<typeof buildMessage>): void {
  if (r.ok) {
    assert.equal(r.value.stanza.name, 'message');
    assert.equal(findIllegalXmlChar(r.value.stanza.toString()), null, 'never emits XML-illegal characters');
  } else {
    assert.ok(SPEC_STATUSES.has(r.problem.status), `unexpected status ${r.problem.status}`);
    assert.ok(r.problem.detail.length > 0);
  }
}

describe('post_msg properties', () => {
  describe('#buildMessage()', () => {
    it('never throws for any bytes, Content-Type and path; answers a stanza or 400/415/422', () => {
      fc.assert(
        fc.property(contentTypes, fc.uint8Array({ maxLength: 200 }), pathRecipients, (ct, bytes, path) => {
          assertSpecOutcome(buildMessage(input(ct, Buffer.from(bytes), path)));
        }),
        RUNS,
      );
    });

    it('never throws for any text in each format', () => {
      fc.assert(
        fc.property(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json'), anyString, (ct, text) => {
          assertSpecOutcome(buildMessage(input(ct, Buffer.from(text, 'utf8'))));
        }),
        RUNS,
      );
    });

    it('never throws for JSON objects with values of any type', () => {
      const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), anyString, legalText);
      fc.assert(
        fc.property(fc.dictionary(fc.constantFrom('to', 'type', 'body', 'subject', 'html', 'x', '__proto__'), value, { maxKeys: 6 }), (obj) => {
          assertSpecOutcome(buildMessage(input('application/json', Buffer.from(JSON.stringify(obj)))));
        }),
        RUNS,
      );
    });

    it('carries any XML-legal non-empty text unchanged, as text/plain, JSON and form', () => {
      fc.assert(
        fc.property(legalText.filter((s) => s.length > 0 && !s.startsWith('\uFEFF')), (text) => {
          const encoded = encodeURIComponent(text);
          for (const [ct, body] of [
            ['text/plain', text],
            ['application/json', JSON.stringify({ body: text })],
            ['application/x-www-form-urlencoded', `body=${encoded}&type=normal`],
          ] as const) {
            const r = buildMessage(input(ct, Buffer.from(body, 'utf8')));
            assert.ok(r.ok, `${ct}: ${r.ok ? '' : r.problem.detail}`);
            assert.equal(r.value.stanza.getChildText('body'), text);
          }
        }),
        RUNS,
      );
    });

    it('refuses any body with an XML-illegal character with 400', () => {
      const illegal = fc.constantFrom('\u0000', '\u0008', '\u000b', '\u001b', '\u0019', '\uFFFE', '\uFFFF');
      fc.assert(
        fc.property(legalText, illegal, legalText, (a, bad, b) => {
          const r = buildMessage(input('application/json', Buffer.from(JSON.stringify({ body: `${a}${bad}${b}` }))));
          assert.equal(r.ok ? 201 : r.problem.status, 400);
        }),
        RUNS,
      );
    });
  });

  describe('#parseMediaType()', () => {
    it('never throws; answers one of the three formats or 415', () => {
      fc.assert(
        fc.property(fc.option(anyString, { nil: undefined }), (ct) => {
          const r = parseMediaType(ct);
          if (r.ok) assert.ok(['text', 'form', 'json'].includes(r.value.format));
          else assert.equal(r.problem.status, 415);
        }),
        RUNS,
      );
    });
  });

  describe('#parseBasicAuthorization()', () => {
    it('never throws for any header', () => {
      fc.assert(
        fc.property(fc.option(anyString, { nil: undefined }), (header) => {
          const r = parseBasicAuthorization(header);
          assert.equal(typeof r.ok, 'boolean');
        }),
        RUNS,
      );
    });

    it('never throws for any base64 of any bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
          parseBasicAuthorization(`Basic ${Buffer.from(bytes).toString('base64')}`);
        }),
        RUNS,
      );
    });

    it('gives back any user (without ":") and any password', () => {
      const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
      fc.assert(
        fc.property(text.filter((s) => !s.includes(':')), text, (username, password) => {
          const header = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
          assert.deepEqual(parseBasicAuthorization(header), { ok: true, credentials: { username, password } });
        }),
        RUNS,
      );
    });
  });

  describe('#buildXhtmlIm()', () => {
    const tag = fc.constantFrom('p', 'em', 'strong', 'span', 'b', 'script', 'a', 'img', 'br', 'body', 'ul', 'li', 'x:y');
    const attr = fc.tuple(fc.constantFrom('style', 'href', 'src', 'onclick', 'class', 'xmlns', 'alt'), fc.constantFrom('color: red', 'https://x', 'javascript:x', '&amp;', '"', "'", '<'));
    const piece = fc.oneof(
      tag.map((t) => `<${t}>`),
      tag.map((t) => `</${t}>`),
      tag.map((t) => `<${t}/>`),
      fc.tuple(tag, attr).map(([t, [n, v]]) => `<${t} ${n}="${v}">`),
      fc.constantFrom('&amp;', '&lt;', '&nbsp;', '&#x1b;', '&#233;', '<!--c-->', '<![CDATA[x]]>', '<!DOCTYPE x>', '<?pi?>', ' ', 'text', '&', '<', '>'),
      anyString,
    );
    const htmlish = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));

    it('never throws; answers html or 400', () => {
      fc.assert(
        fc.property(fc.oneof(htmlish, anyString), (src) => {
          const r = buildXhtmlIm(src);
          if (!r.ok) assert.equal(r.problem.status, 400);
        }),
        { numRuns: 1000 },
      );
    });

    it('only ever passes whitelisted elements and safe attributes, and its output parses back to the same', () => {
      const allowed = new Set(['html', 'body', 'p', 'em', 'strong', 'span', 'a', 'img', 'br', 'ul', 'li']);
      fc.assert(
        fc.property(htmlish, (src) => {
          const r = buildXhtmlIm(src);
          if (!r.ok || r.value === undefined) return;
          const walk = (el: (typeof r.value)['element']): void => {
            assert.ok(allowed.has(el.name), el.name);
            for (const [name, value] of Object.entries(el.attrs)) {
              assert.ok(!name.startsWith('on'), name);
              if (name === 'href' || name === 'src') assert.match(value, /^(https?|xmpp|mailto):/i);
            }
            for (const child of el.getChildElements()) walk(child);
          };
          walk(r.value.element);
          const serialised = r.value.element.toString();
          const again = parseFragment(serialised);
          assert.ok(again.ok, serialised);
        }),
        { numRuns: 1000 },
      );
    });
  });
});
