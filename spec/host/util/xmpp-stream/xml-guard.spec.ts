// The byte guard in front of ltx: restricted XML (RFC 6120 §11.1) and the stanza size limit, across chunk
// boundaries, plus a property: any bytes at all never throw and never get past a limit.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_DEPTH, XmlGuard } from '../../../../lib/host/util/xmpp-stream/xml-guard.js';
import { StreamParser } from '../../../../lib/host/util/xmpp-stream/stream-parser.js';
import type { Element } from '@xmpp/xml';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/** Feed the text one chunk at a time (every split point matters for a byte scanner). */
function scanInChunks(text: string, size: number, limit = 262144): ReturnType<XmlGuard['scan']> {
  const guard = new XmlGuard(limit);
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) {
    const failure = guard.scan(bytes.subarray(i, i + size));
    if (failure) return failure;
  }
  return undefined;
}

function parseAll(text: string, limit = 262144): { elements: Element[]; error?: string; isEnded: boolean } {
  const elements: Element[] = [];
  const out: { elements: Element[]; error?: string; isEnded: boolean } = { elements, isEnded: false };
  const parser = new StreamParser(limit, {
    onStreamStart: () => undefined,
    onElement: (el) => elements.push(el),
    onStreamEnd: () => (out.isEnded = true),
    onError: (f) => (out.error = f.condition),
  });
  parser.write(Buffer.from(text));
  return out;
}

describe('XmlGuard', () => {
  for (const size of [1, 2, 7, 4096]) {
    describe(`in chunks of ${size} bytes`, () => {
      it('lets a normal stream through, with the XML declaration, CDATA and whitespace', () => {
        const text = `${HEADER} <message to='a@b'><body><![CDATA[<x> ]] ]]></body></message>\n<presence/> </stream:stream>`;
        assert.equal(scanInChunks(text, size), undefined);
      });

      it('refuses a DOCTYPE', () => {
        assert.equal(scanInChunks(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">]>${HEADER}`, size)?.condition, 'restricted-xml');
      });

      it('refuses an entity declaration inside the stream', () => {
        assert.equal(scanInChunks(`${HEADER}<!ENTITY x "y">`, size)?.condition, 'restricted-xml');
      });

      it('refuses comments', () => {
        assert.equal(scanInChunks(`${HEADER}<message><!-- hi --></message>`, size)?.condition, 'restricted-xml');
      });

      it('refuses processing instructions after the stream header', () => {
        assert.equal(scanInChunks(`${HEADER}<?php echo 1; ?>`, size)?.condition, 'restricted-xml');
        assert.equal(scanInChunks(`${HEADER}<?xml version='1.0'?>`, size)?.condition, 'restricted-xml');
      });

      it('refuses a processing instruction that only starts like the declaration', () => {
        assert.equal(scanInChunks(`<?xml-stylesheet href='x'?>${HEADER}`, size)?.condition, 'restricted-xml');
      });

      it('refuses a stanza over the limit while it arrives, and not a stream of small ones', () => {
        const limit = 10_000;
        const small = `<message><body>${'a'.repeat(9_000)}</body></message>`;
        assert.equal(scanInChunks(HEADER + small.repeat(20), size, limit), undefined);
        const big = `<message><body>${'a'.repeat(10_001)}`;
        assert.equal(scanInChunks(HEADER + big, size, limit)?.condition, 'policy-violation');
      });

      it('does not count a > inside an attribute value as the end of a tag', () => {
        const text = `${HEADER}<message a='x/>y'><body>z</body></message>`;
        assert.equal(scanInChunks(text, size), undefined);
      });
    });
  }

  it('refuses elements nested deeper than MAX_DEPTH, and accepts MAX_DEPTH', () => {
    const nest = (n: number) => `${'<a>'.repeat(n)}${'</a>'.repeat(n)}`;
    assert.equal(scanInChunks(HEADER + nest(MAX_DEPTH - 1), 64), undefined);
    assert.equal(scanInChunks(HEADER + nest(MAX_DEPTH), 64)?.condition, 'policy-violation');
  });

  it('counts endless text between stanzas against the limit (ltx buffers it)', () => {
    assert.equal(scanInChunks(HEADER + ' '.repeat(20_000), 1000, 10_000)?.condition, 'policy-violation');
  });

  it('never throws on arbitrary bytes, and fails at the limit at the latest', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 64 }), (bytes, chunk) => {
        const guard = new XmlGuard(1000);
        let failed = false;
        for (let i = 0; i < bytes.length && !failed; i += chunk) failed = guard.scan(bytes.subarray(i, i + chunk)) !== undefined;
        assert.ok(failed || guard.pendingBytes <= 1000);
      }),
      { numRuns: 300 },
    );
  });
});

describe('StreamParser', () => {
  it('emits top-level elements and the stream end', () => {
    const r = parseAll(`${HEADER}<message to='a@b'><body>hi &amp; bye</body></message> <iq type='get' id='1'/></stream:stream>`);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.elements.map((e) => e.name), ['message', 'iq']);
    assert.equal(r.elements[0]!.getChildText('body'), 'hi & bye');
    assert.ok(r.isEnded);
  });

  it('never expands an unknown entity: not-well-formed', () => {
    assert.equal(parseAll(`${HEADER}<message><body>&lol9;</body></message>`).error, 'not-well-formed');
  });

  it('refuses the billion laughs before any entity is declared', () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>${HEADER}<message><body>&lol2;</body></message>`;
    const r = parseAll(laughs);
    assert.equal(r.error, 'restricted-xml');
    assert.equal(r.elements.length, 0);
  });

  it('refuses mismatched tags', () => {
    assert.equal(parseAll(`${HEADER}<message><body></message>`).error, 'not-well-formed');
  });

  it('refuses invalid UTF-8', () => {
    const errors: string[] = [];
    const parser = new StreamParser(262144, { onStreamStart: () => undefined, onElement: () => undefined, onStreamEnd: () => undefined, onError: (f) => errors.push(f.condition) });
    parser.write(Buffer.concat([Buffer.from(`${HEADER}<message><body>`), Buffer.from([0xff, 0xfe]), Buffer.from('</body></message>')]));
    assert.deepEqual(errors, ['not-well-formed']);
  });

  it('refuses characters XML forbids, raw or as a reference', () => {
    assert.equal(parseAll(`${HEADER}<message><body>a\u0001b</body></message>`).error, 'not-well-formed');
    assert.equal(parseAll(`${HEADER}<message><body>a&#1;b</body></message>`).error, 'not-well-formed');
    assert.equal(parseAll(`${HEADER}<message><body>\uFFFF</body></message>`).error, 'not-well-formed');
  });

  it('refuses an unbound prefix, which would break the recipient (Namespaces in XML §5)', () => {
    assert.equal(parseAll(`${HEADER}<message><x:y/></message>`).error, 'not-well-formed');
    assert.equal(parseAll(`${HEADER}<message><a b:c='1'/></message>`).error, 'not-well-formed');
  });

  it('accepts prefixes declared in the stanza, and copies those declared on the stream header onto it', () => {
    const ok = parseAll(`${HEADER}<message><x:y xmlns:x='urn:x'><x:z/></x:y><a xml:lang='en'/></message>`);
    assert.equal(ok.error, undefined);
    const header = HEADER.replace("version='1.0'>", "version='1.0' xmlns:e='urn:example'>");
    const copied = parseAll(`${header}<message><e:thing/></message>`);
    assert.equal(copied.error, undefined);
    assert.equal(copied.elements[0]!.attrs['xmlns:e'], 'urn:example');
    assert.match(copied.elements[0]!.toString(), /^<message xmlns:e="urn:example"><e:thing\/><\/message>$/);
  });

  it('decodes a UTF-8 character split across two chunks', () => {
    const elements: Element[] = [];
    const parser = new StreamParser(262144, { onStreamStart: () => undefined, onElement: (e) => elements.push(e), onStreamEnd: () => undefined, onError: (f) => assert.fail(f.text) });
    const bytes = Buffer.from(`${HEADER}<message><body>é€😀</body></message>`);
    for (let i = 0; i < bytes.length; i++) parser.write(bytes.subarray(i, i + 1));
    assert.equal(elements[0]?.getChildText('body'), 'é€😀');
  });

  it('does not keep whitespace keepalives in memory', () => {
    const elements: Element[] = [];
    let root: Element | undefined;
    const parser = new StreamParser(262144, { onStreamStart: (h) => (root = h), onElement: (e) => elements.push(e), onStreamEnd: () => undefined, onError: (f) => assert.fail(f.text) });
    parser.write(Buffer.from(HEADER));
    for (let i = 0; i < 1000; i++) parser.write(Buffer.from(' '));
    parser.write(Buffer.from('<presence/>'));
    assert.equal(elements.length, 1);
    assert.equal(root?.children.length, 0);
  });
});
