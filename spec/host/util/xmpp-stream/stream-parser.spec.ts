// The one strict XML stream parser: restricted XML (RFC 6120 §11.1), namespaces, the size, depth and
// namespace limits, across every chunk boundary; property tests feed hostile streams and split valid ones.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameParser, MAX_DEPTH, MAX_NS_PER_ELEMENT, MAX_NS_PER_STANZA, StreamParser, type StreamFailure } from '../../../../lib/host/util/xmpp-stream/stream-parser.js';
import type { Element } from '@xmpp/xml';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

interface Outcome {
  header?: Element;
  elements: Element[];
  failure?: StreamFailure;
  isEnded: boolean;
  /** The most the parser held after any write. */
  maxBuffered: number;
  /** Bytes written before the failure was reported. */
  bytesAtFailure?: number;
}

/** Feed the bytes in the given chunk sizes (cycled), or all at once. */
function parse(input: string | Uint8Array, opts: { limit?: number; chunks?: readonly number[] } = {}): Outcome {
  const out: Outcome = { elements: [], isEnded: false, maxBuffered: 0 };
  let written = 0;
  const parser = new StreamParser(opts.limit ?? 262144, {
    onStreamStart: (h) => (out.header = h),
    onElement: (el) => out.elements.push(el),
    onStreamEnd: () => (out.isEnded = true),
    onError: (f) => {
      assert.equal(out.failure, undefined, 'one failure at most');
      out.failure = f;
      out.bytesAtFailure = written;
    },
  });
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const sizes = opts.chunks ?? [bytes.length || 1];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const size = Math.max(1, sizes[k % sizes.length]!);
    written += Math.min(size, bytes.length - i);
    parser.write(bytes.subarray(i, i + size));
    i += size;
    out.maxBuffered = Math.max(out.maxBuffered, parser.bufferedBytes);
  }
  return out;
}

const condition = (input: string, opts?: { limit?: number; chunks?: readonly number[] }) => parse(input, opts).failure?.condition;
const nest = (n: number) => `${'<a>'.repeat(n)}${'</a>'.repeat(n)}`;
const xmlnsMany = (n: number) => Array.from({ length: n }, (_, i) => ` xmlns:p${i}='urn:p${i}'`).join('');

describe('StreamParser', () => {
  for (const size of [1, 2, 7, 4096]) {
    describe(`in chunks of ${size} bytes`, () => {
      const chunks = [size];

      it('reads a normal stream: the XML declaration, CDATA, entities, whitespace, the end', () => {
        const r = parse(`${HEADER} <message to='a@b'><body>hi &amp; <![CDATA[<x> ]] ]]>&#x1F600;</body></message>\n<presence/> </stream:stream>`, { chunks });
        assert.equal(r.failure, undefined);
        assert.equal(r.header?.name, 'stream:stream');
        assert.deepEqual(r.elements.map((e) => e.name), ['message', 'presence']);
        assert.equal(r.elements[0]!.getChildText('body'), 'hi & <x> ]] 😀');
        assert.ok(r.isEnded);
      });

      it('refuses a DOCTYPE, before or inside the stream', () => {
        assert.equal(condition(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">]>${HEADER}`, { chunks }), 'restricted-xml');
        assert.equal(condition(`${HEADER}<!DOCTYPE x>`, { chunks }), 'restricted-xml');
      });

      it('refuses comments and processing instructions', () => {
        assert.equal(condition(`${HEADER}<message><!-- hi --></message>`, { chunks }), 'restricted-xml');
        assert.equal(condition(`${HEADER}<?php echo 1; ?>`, { chunks }), 'restricted-xml');
        assert.equal(condition(`${HEADER}<?xml version='1.0'?>`, { chunks }), 'restricted-xml');
        assert.equal(condition(`<?xml-stylesheet href='x'?>${HEADER}`, { chunks }), 'restricted-xml');
      });

      it('refuses a stanza over the limit while it arrives, and not a stream of small ones', () => {
        const limit = 10_000;
        const small = `<message><body>${'a'.repeat(9_000)}</body></message>`;
        assert.equal(condition(HEADER + small.repeat(20), { chunks, limit }), undefined);
        const big = parse(`${HEADER}<message><body>${'a'.repeat(10_001)}`, { chunks, limit });
        assert.equal(big.failure?.condition, 'policy-violation');
        assert.ok(big.maxBuffered <= limit);
      });

      it('does not take a > inside an attribute value for the end of a tag', () => {
        const r = parse(`${HEADER}<message a='x/>y'><body>z</body></message>`, { chunks });
        assert.equal(r.failure, undefined);
        assert.equal(r.elements[0]!.attrs.a, 'x/>y');
      });

      it('refuses <a b/> c=\'x\'>, the shape that once nested without limit', () => {
        assert.equal(condition(`${HEADER}${"<a b/> c='x'>".repeat(100)}`, { chunks }), 'not-well-formed');
      });

      it('refuses an end tag or text before the stream header; reads nothing after the stream end', () => {
        assert.equal(condition(`</a>${HEADER}`, { chunks }), 'not-well-formed');
        assert.equal(condition(`hello${HEADER}`, { chunks }), 'not-well-formed');
        const twice = parse(`<a/><b/>${HEADER}<message/>`, { chunks });
        assert.ok(twice.isEnded);
        assert.deepEqual([twice.failure, twice.elements.length], [undefined, 0]);
      });
    });
  }

  it('keeps an endless end tag before the header within the limit', () => {
    const r = parse(`</${'a'.repeat(20_000)}`, { limit: 10_000, chunks: [1000] });
    assert.equal(r.failure?.condition, 'policy-violation');
    assert.ok(r.maxBuffered <= 10_000);
  });

  it(`refuses elements nested deeper than ${MAX_DEPTH} (stream root = 1), and accepts ${MAX_DEPTH}`, () => {
    assert.equal(condition(HEADER + nest(MAX_DEPTH - 1), { chunks: [64] }), undefined);
    assert.equal(condition(HEADER + nest(MAX_DEPTH), { chunks: [64] }), 'policy-violation');
  });

  it('caps namespace declarations per element and per stanza', () => {
    assert.equal(condition(`${HEADER}<message${xmlnsMany(MAX_NS_PER_ELEMENT)}/>`), undefined);
    assert.equal(condition(`${HEADER}<message${xmlnsMany(MAX_NS_PER_ELEMENT + 1)}/>`), 'policy-violation');
    const perChild = MAX_NS_PER_ELEMENT;
    const children = (n: number) => Array.from({ length: n }, () => `<x${xmlnsMany(perChild)}/>`).join('');
    assert.equal(condition(`${HEADER}<message>${children(MAX_NS_PER_STANZA / perChild)}</message>`), undefined);
    assert.equal(condition(`${HEADER}<message>${children(MAX_NS_PER_STANZA / perChild + 1)}</message>`), 'policy-violation');
    // The count starts again with each stanza.
    assert.equal(condition(`${HEADER}${`<message>${children(MAX_NS_PER_STANZA / perChild)}</message>`.repeat(3)}`), undefined);
  });

  it('counts endless text between stanzas against the limit', () => {
    assert.equal(condition(HEADER + ' '.repeat(20_000), { chunks: [1000], limit: 10_000 }), 'policy-violation');
  });

  it('never expands an entity other than the five predefined ones: restricted-xml', () => {
    assert.equal(condition(`${HEADER}<message><body>&lol9;</body></message>`), 'restricted-xml');
    assert.equal(condition(`${HEADER}<message a='&x;'/>`), 'restricted-xml');
  });

  it('refuses the billion laughs before any entity is declared', () => {
    const r = parse(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>${HEADER}<message><body>&lol2;</body></message>`);
    assert.equal(r.failure?.condition, 'restricted-xml');
    assert.equal(r.elements.length, 0);
  });

  it('refuses mismatched tags, unquoted attributes, duplicate attributes', () => {
    assert.equal(condition(`${HEADER}<message><body></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message a=1/>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message a='1' a='2'/>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message xmlns:p='urn:x' xmlns:q='urn:x' p:a='1' q:a='2'/>`), 'not-well-formed');
  });

  it('refuses names that are not XML Names', () => {
    for (const bad of ['<1a/>', '<a\u00d7b/>', "<a \u2028='1'/>", '<-a/>', '<a:b:c/>', "<a b\u0301c='1'/>".replace('b\u0301', '\u0301')]) {
      assert.equal(condition(`${HEADER}<message>${bad}</message>`), 'not-well-formed', JSON.stringify(bad));
    }
  });

  it('refuses invalid UTF-8', () => {
    const r = parse(Buffer.concat([Buffer.from(`${HEADER}<message><body>`), Buffer.from([0xff, 0xfe]), Buffer.from('</body></message>')]));
    assert.equal(r.failure?.condition, 'not-well-formed');
  });

  it('refuses an encoding other than UTF-8 (RFC 6120 §11.6)', () => {
    assert.equal(condition(HEADER.replace("version='1.0'?>", "version='1.0' encoding='ISO-8859-1'?>")), 'unsupported-encoding');
    assert.equal(condition(HEADER.replace("version='1.0'?>", "version='1.0' encoding='utf-8'?>")), undefined);
  });

  it('reads XML 1.0 only, whatever the declaration says', () => {
    assert.equal(condition(`<?xml version='1.1'?>${HEADER.slice(HEADER.indexOf('?>') + 2)}<message><body>&#1;</body></message>`), 'not-well-formed');
  });

  it('refuses characters XML forbids, raw or as a reference', () => {
    assert.equal(condition(`${HEADER}<message><body>a\u0001b</body></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message><body>a&#1;b</body></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message><body>\uFFFF</body></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message a='\u0000'/>`), 'not-well-formed');
  });

  it('refuses an unbound prefix, which would break the recipient (Namespaces in XML §5)', () => {
    assert.equal(condition(`${HEADER}<message><x:y/></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message><a b:c='1'/></message>`), 'not-well-formed');
    assert.equal(condition(`${HEADER}<message xmlns:xml='urn:not-xml'/>`), 'not-well-formed');
  });

  it('hands on namespace-normal elements: local names, xmlns where the namespace changes', () => {
    const r = parse(`${HEADER}<c:message xmlns:c='jabber:client' to='a@b'><x:y xmlns:x='urn:x'><x:z/><w xmlns='urn:w'/></x:y><a xml:lang='en'/></c:message>`);
    assert.equal(r.failure, undefined);
    const [el] = r.elements;
    assert.equal(el!.name, 'message');
    assert.equal(el!.getChild('y', 'urn:x')?.getChild('z', 'urn:x')?.name, 'z');
    assert.equal(el!.toString(), '<message xmlns:c="jabber:client" to="a@b"><y xmlns="urn:x" xmlns:x="urn:x"><z/><w xmlns="urn:w"/></y><a xml:lang="en"/></message>');
  });

  it('copies the declaration of a prefix bound on the stream header onto the stanza that uses it in an attribute', () => {
    const header = HEADER.replace("version='1.0'>", "version='1.0' xmlns:e='urn:example'>");
    const r = parse(`${header}<message><e:thing e:a='1'/></message><iq e:b='2'/><presence><x xmlns:e='urn:other' e:c='3'/></presence>`);
    assert.equal(r.failure, undefined);
    assert.deepEqual(r.elements.map(String), [
      '<message xmlns:e="urn:example"><thing xmlns="urn:example" e:a="1"/></message>',
      '<iq e:b="2" xmlns:e="urn:example"/>',
      '<presence><x xmlns:e="urn:other" e:c="3"/></presence>',
    ]);
  });

  it('refuses an attribute named __proto__ rather than lose it', () => {
    assert.equal(condition(`${HEADER}<message __proto__='x'/>`), 'bad-format');
  });

  it('decodes a UTF-8 character split across two chunks', () => {
    const r = parse(`${HEADER}<message><body>é€😀</body></message>`, { chunks: [1] });
    assert.equal(r.elements[0]?.getChildText('body'), 'é€😀');
  });

  it('does not keep whitespace keepalives in the stream header', () => {
    const r = parse(HEADER + ' '.repeat(1000) + '<presence/>', { chunks: [1] });
    assert.equal(r.elements.length, 1);
    assert.equal(r.header?.children.length, 0);
    assert.equal(r.elements[0]!.children.length, 0);
  });

  it('stops at once when told to from an event: nothing after it is read', () => {
    const seen: string[] = [];
    const parser: StreamParser = new StreamParser(262144, {
      onStreamStart: () => undefined,
      onElement: (el) => {
        seen.push(el.name);
        parser.stop();
      },
      onStreamEnd: () => assert.fail('ended'),
      onError: (f) => assert.fail(f.text),
    });
    parser.write(Buffer.from(`${HEADER}<auth/><garbage></stream:stream>`));
    assert.deepEqual(seen, ['auth']);
  });

  it('reads a worst-case stanza of the full size in linear time (attributes, prefixes at depth, entities)', () => {
    const limit = 262144;
    const attrs = `<message>${'<a'.repeat(0)}<x xmlns:p='urn:p'>${'<y>'.repeat(MAX_DEPTH - 4)}<z${Array.from({ length: 15_000 }, (_, i) => ` p:a${i}=''`).join('')}/>${'</y>'.repeat(MAX_DEPTH - 4)}</x></message>`;
    const text = `<message><body>${'&amp;\n'.repeat(40_000)}</body></message>`;
    for (const stanza of [attrs, text]) {
      assert.ok(Buffer.byteLength(stanza) < limit);
      const t0 = performance.now();
      const r = parse(HEADER + stanza, { limit, chunks: [16384] });
      assert.equal(r.failure, undefined, r.failure?.text);
      assert.equal(r.elements.length, 1);
      assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
    }
  });
});

describe('FrameParser (RFC 7395)', () => {
  const frames = new FrameParser(10_000);

  it('reads one complete element per message, keeping its declared namespace', () => {
    const open = frames.parse("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
    assert.ok(open.ok);
    assert.equal(open.element.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-framing');
    const msg = frames.parse(Buffer.from("<message xmlns='jabber:client' to='a@b'><body>hé</body></message>"));
    assert.ok(msg.ok);
    assert.equal(msg.element.getChildText('body'), 'hé');
  });

  it('applies the same rules and limits as a stream', () => {
    const failed = (m: string | Buffer, p = frames) => {
      const r = p.parse(m);
      return r.ok ? undefined : r.failure.condition;
    };
    assert.equal(failed('<a/><b/>'), 'not-well-formed');
    assert.equal(failed('<a>'), 'not-well-formed');
    assert.equal(failed(''), 'not-well-formed');
    assert.equal(failed('<!DOCTYPE a><a/>'), 'restricted-xml');
    assert.equal(failed('<a><!-- c --></a>'), 'restricted-xml');
    assert.equal(failed('<a>&x;</a>'), 'restricted-xml');
    assert.equal(failed(`<a>${'x'.repeat(10_001)}</a>`), 'policy-violation');
    assert.equal(failed(nest(MAX_DEPTH - 1)), undefined);
    assert.equal(failed(nest(MAX_DEPTH)), 'policy-violation');
    assert.equal(failed(Buffer.from([0x3c, 0x61, 0xff, 0x2f, 0x3e])), 'not-well-formed');
  });
});

// --- properties -----------------------------------------------------------------------------------------

const name = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9._-]{0,6}$/);
const text = fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', ' ', '\n', '<', '&', '>', '"', "'", ']]>'), maxLength: 20 });

/** A well-formed stanza, built with escaping, so that the expected tree is known. */
function element(n: string, attrNames: string[], values: string[], children: string[], ns: string | undefined): string {
  const attrs = attrNames.map((a, i) => ` ${a}='${escape(values[i] ?? '')}'`).join('');
  const xmlns = ns ? ` xmlns='${ns}'` : '';
  const body = children.map((c, i) => escape(values[i] ?? '') + c).join('');
  return body ? `<${n}${xmlns}${attrs}>${body}</${n}>` : `<${n}${xmlns}${attrs}/>`;
}
const attrNames = fc.uniqueArray(name, { maxLength: 3 });
const values = fc.array(text, { maxLength: 3 });
const ns = fc.option(fc.constantFrom('urn:a', 'urn:b'), { nil: undefined });
const stanza: fc.Arbitrary<string> = fc.letrec<{ el: string }>((tie) => ({
  el: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(name, attrNames, values, ns).map(([n, a, v, x]) => element(n, a, v, [], x)),
    fc.tuple(name, attrNames, values, fc.array(tie('el'), { maxLength: 3 }), ns).map(([n, a, v, c, x]) => element(n, a, v, c, x)),
  ),
})).el;

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');
}

/** Pieces of hostile streams, mixed with valid stanzas. */
const hostilePiece = fc.oneof(
  stanza,
  fc.constantFrom(
    "<a b/> c='x'>",
    '</a>',
    '</stream:stream>',
    '<!DOCTYPE x [<!ENTITY e "eee">]>',
    '<!ENTITY e "x">',
    '&e;',
    '&#0;',
    '&#x1F600;',
    '<?pi data?>',
    "<?xml version='1.0'?>",
    '<!-- c -->',
    '<![CDATA[x]]>',
    '\u0001',
    '\uFFFE',
    '<a\u00d7b/>',
    '<1/>',
    '<x:y/>',
    "<a xmlns:xml='urn:x'/>",
    ' ',
    HEADER,
  ),
  fc.integer({ min: 1, max: 300 }).map((n) => '<a>'.repeat(n)),
  fc.integer({ min: 1, max: 60 }).map((n) => `<m${xmlnsMany(n)}>`),
  fc.integer({ min: 1, max: 5000 }).map((n) => `<m a='${'x'.repeat(n)}'/>`),
  fc.integer({ min: 1, max: 5000 }).map((n) => `<m>${'y'.repeat(n)}`),
  fc.string({ maxLength: 30 }),
);

/** Cut points as chunk sizes. */
const chunking = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 });

describe('StreamParser properties', () => {
  it('on hostile streams: never throws, stays within the limit, and hands on only valid stanzas or one stream error', () => {
    const limit = 4096;
    const frames = new FrameParser(limit);
    fc.assert(
      fc.property(fc.boolean(), fc.array(hostilePiece, { maxLength: 12 }), chunking, (withHeader, pieces, chunks) => {
        const input = (withHeader ? HEADER : '') + pieces.join('');
        const r = parse(input, { limit, chunks });
        // Memory stays bounded: the parser never holds more than the limit (plus a UTF-8 tail).
        assert.ok(r.maxBuffered <= limit + 3, `held ${r.maxBuffered} bytes`);
        // Every element handed on is a valid stanza on its own: it reads back, strictly, to the same tree.
        for (const el of r.elements) {
          const again = frames.parse(el.toString());
          assert.ok(again.ok, `${el.toString()} does not read back: ${again.ok ? '' : again.failure.text}`);
          assert.equal(again.element.toString(), el.toString());
        }
        // An unfinished unit never goes past the limit undetected.
        if (!r.failure && !r.isEnded) assert.ok(r.maxBuffered <= limit);
        if (r.failure) assert.ok(['not-well-formed', 'restricted-xml', 'policy-violation', 'bad-format', 'unsupported-encoding'].includes(r.failure.condition));
      }),
      { numRuns: 400 },
    );
  });

  it('on arbitrary bytes: never throws and fails at the limit at the latest', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 3000 }), chunking, (withHeader, bytes, chunks) => {
        const r = parse(Buffer.concat([Buffer.from(withHeader ? HEADER : ''), bytes]), { limit: 1000, chunks });
        assert.ok(r.maxBuffered <= 1003);
      }),
      { numRuns: 300 },
    );
  });

  it('reads well-formed stanzas the same whatever the chunk boundaries, including every single split point', () => {
    fc.assert(
      fc.property(fc.array(stanza, { minLength: 1, maxLength: 4 }), chunking, (stanzas, chunks) => {
        const input = Buffer.from(`${HEADER}${stanzas.join(' ')}</stream:stream>`);
        const whole = parse(input);
        assert.equal(whole.failure, undefined, whole.failure?.text);
        assert.equal(whole.elements.length, stanzas.length);
        const expected = whole.elements.map(String);
        assert.deepEqual(parse(input, { chunks }).elements.map(String), expected);
        for (let cut = 1; cut < input.length; cut++) {
          const r = parse(input, { chunks: [cut, input.length] });
          assert.equal(r.failure, undefined, `split at ${cut}: ${r.failure?.text}`);
          assert.deepEqual(r.elements.map(String), expected, `split at ${cut}`);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('fails an endless construct no later than the limit, whatever it is', () => {
    const limit = 2000;
    const endless = ['<message><body>', "<message a='", '<message ', '<', '</', '<!--', '<?pi ', '<![CDATA[', '<!DOCTYPE x ['];
    fc.assert(
      fc.property(fc.constantFrom(...endless), fc.boolean(), fc.integer({ min: 1, max: 600 }), (start, withHeader, chunk) => {
        const head = withHeader ? HEADER : '';
        const input = `${head}${start}${'x'.repeat(5 * limit)}`;
        const r = parse(input, { limit, chunks: [chunk] });
        assert.ok(r.failure, 'must fail');
        // Without a header, `<message>` is the root, and the unit starts after it.
        assert.ok(r.bytesAtFailure! <= Buffer.byteLength(head + start) + limit + chunk, `failed only after ${r.bytesAtFailure} bytes`);
        assert.ok(r.maxBuffered <= limit);
      }),
      { numRuns: 100 },
    );
  });
});
