// serialize() must write exactly what ltx's toString writes, for any element.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { xml, type Element } from '@xmpp/xml';
import parse from '@xmpp/xml/lib/parse.js';
import { serialize } from '../../../lib/host/util/serialize.js';

const name = fc.stringMatching(/^[a-z][a-z0-9:-]{0,8}$/);
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('&', '<', '>', '"', "'", 'a&b<c>d"e\'f', ']]>', '&amp;'));
const element: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
  el: fc
    .tuple(
      name,
      fc.dictionary(name, fc.oneof(text, fc.integer(), fc.constant(undefined), fc.constant(null)), { maxKeys: 4 }),
      fc.array(fc.oneof({ depthSize: 'small' }, text, fc.integer(), tie('el')), { maxLength: 4 }),
    )
    .map(([n, attrs, children]) => xml(n, attrs as Record<string, string>, ...(children as Array<Element | string>))),
})).el;

describe('serialize', () => {
  it('writes what Element#toString writes, for any element', () => {
    fc.assert(fc.property(element, (el) => assert.equal(serialize(el), el.toString())), { numRuns: 2000 });
  });

  it('writes a parsed stanza back the same way', () => {
    const stanza = parse(`<message xmlns="jabber:client" to="a@b" type='chat' id="x&amp;y"><body>1 &lt; 2 &amp; "q" 'a'</body><html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p>hi<br/>there</p></body></html></message>`);
    assert.equal(serialize(stanza), stanza.toString());
    assert.match(serialize(stanza), /id="x&amp;y"/);
  });
});
