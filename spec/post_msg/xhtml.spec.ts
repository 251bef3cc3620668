// XHTML-IM (XEP-0071) for post_msg's html field: well-formedness, the §6 whitelist, replacement hints.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildXhtmlIm, parseFragment, MAX_DEPTH } from '../../lib/post_msg/xhtml.js';

function accepted(html: string): string {
  const r = buildXhtmlIm(html);
  if (!r.ok) assert.fail(`expected ${html} to pass: ${r.problem.detail}`);
  assert.ok(r.value);
  return r.value.element.toString();
}

function refused(html: string): string {
  const r = buildXhtmlIm(html);
  if (r.ok) assert.fail(`expected ${html} to be refused, got ${r.value?.element.toString()}`);
  assert.equal(r.problem.status, 400);
  return r.problem.detail;
}

const WRAP = (inner: string): string => `<html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml">${inner}</body></html>`;

describe('XHTML-IM', () => {
  describe('#buildXhtmlIm() integration set (XEP-0071 §6)', () => {
    const elements = ['abbr', 'acronym', 'address', 'blockquote', 'cite', 'code', 'dfn', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'kbd', 'p', 'pre', 'q', 'samp', 'span', 'strong', 'var', 'dl', 'dt', 'dd', 'ol', 'ul', 'li'];
    for (const name of elements) {
      it(`accepts <${name}> with a style`, () => {
        assert.equal(accepted(`<${name} style="color: red">x</${name}>`), WRAP(`<${name} style="color: red">x</${name}>`));
      });
    }

    it('accepts <br/>, <a href> and <img> with their attributes', () => {
      const html = '<p>a<br/><a href="https://example.org/x?a=1&amp;b=2" type="text/html" title="t">link</a><img src="https://example.org/i.png" alt="i" width="10" height="10"/></p>';
      assert.equal(accepted(html), WRAP(html));
      accepted('<a href="xmpp:alice@localhost?message">x</a><a href="mailto:a@b.c">m</a><a href="http://x">h</a>');
      accepted('<blockquote cite="https://example.org">q</blockquote><q cite="http://x">q</q>');
    });

    it('accepts the core attributes class, id, title and xml:lang', () => {
      accepted('<p class="c" id="i" title="t" xml:lang="en">x</p>');
    });

    it('accepts <body> elements (one per language) at the top', () => {
      const html = '<body xml:lang="en"><p>Hi</p></body><body xml:lang="de"><p>Hallo</p></body>';
      assert.equal(
        accepted(html),
        '<html xmlns="http://jabber.org/protocol/xhtml-im"><body xml:lang="en" xmlns="http://www.w3.org/1999/xhtml"><p>Hi</p></body><body xml:lang="de" xmlns="http://www.w3.org/1999/xhtml"><p>Hallo</p></body></html>',
      );
    });

    it('accepts an explicit XHTML namespace, and no other', () => {
      accepted('<p xmlns="http://www.w3.org/1999/xhtml">x</p>');
      assert.match(refused('<p xmlns="urn:x">x</p>'), /namespace/);
      assert.match(refused('<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>'), /svg:svg/);
    });

    it('passes text, entities, character references and CDATA as escaped text; drops comments', () => {
      assert.equal(accepted('<p>a &lt; b &amp;&amp; &#233;&#xE9; <![CDATA[<x>]]><!-- c --></p>'), WRAP('<p>a &lt; b &amp;&amp; éé &lt;x&gt;</p>'));
    });

    it('gives the text content for the plain body', () => {
      const r = buildXhtmlIm('<h1>Title</h1><p>one <em>two</em><br/>three <img src="https://x/i.png" alt="[img]"/></p><ul><li>a</li><li>b</li></ul>');
      assert.ok(r.ok && r.value);
      assert.equal(r.value.text, 'Title\none two\nthree [img]\na\nb');
    });

    it('treats an empty or whitespace-only fragment as no html', () => {
      const r = buildXhtmlIm('  <!-- nothing -->  ');
      assert.ok(r.ok);
      assert.equal(r.value, undefined);
    });
  });

  describe('#buildXhtmlIm() refusals', () => {
    it('names the first offender and the element to use instead', () => {
      const hints: Array<[string, RegExp]> = [
        ['<b>x</b>', /<b>.*use <strong>/],
        ['<i>x</i>', /<i>.*use <em>/],
        ['<u>x</u>', /<u>.*text-decoration: underline/],
        ['<strike>x</strike>', /line-through/],
        ['<s>x</s>', /line-through/],
        ['<del>x</del>', /line-through/],
        ['<font color="red">x</font>', /<font>.*<span style/],
        ['<center>x</center>', /text-align: center/],
        ['<tt>x</tt>', /<code>/],
        ['<P>x</P>', /<P>.*use <p>/],
        ['<p>ok</p><em><b>x</b></em>', /<b>/],
      ];
      for (const [html, re] of hints) assert.match(refused(html), re, html);
    });

    it('never passes <script>, <style>, <iframe>, <object>, <form>', () => {
      for (const name of ['script', 'style', 'iframe', 'object', 'embed', 'form', 'input']) {
        assert.match(refused(`<p><${name}>x</${name}></p>`), new RegExp(`<${name}>.*never passed`), name);
      }
    });

    it('never passes on* attributes', () => {
      assert.match(refused('<p onclick="alert(1)">x</p>'), /onclick.*event handlers/);
      assert.match(refused('<img src="https://x/i.png" onerror="alert(1)"/>'), /onerror/);
    });

    it('refuses attributes outside the set (align → use style)', () => {
      assert.match(refused('<p align="center">x</p>'), /align.*use style/);
      assert.match(refused('<a href="https://x" target="_blank">x</a>'), /target/);
      assert.match(refused('<span href="https://x">x</span>'), /href/);
    });

    it('refuses href/src/cite other than http, https, xmpp, mailto, and relative ones', () => {
      for (const html of ['<a href="javascript:alert(1)">x</a>', '<a href=" javascript:alert(1)">x</a>', '<a href="JaVaScRiPt:x">x</a>', '<a href="data:text/html,x">x</a>', '<a href="/relative">x</a>', '<img src="file:///etc/passwd" alt=""/>', '<img src="//evil/x.png" alt=""/>', '<blockquote cite="vbscript:x">q</blockquote>']) {
        assert.match(refused(html), /http, https, xmpp or mailto/, html);
      }
    });

    it('refuses styles that load resources or run script', () => {
      for (const style of ['background: url(https://track/x)', 'width: expression(alert(1))', '@import "x"', 'color: \\72 ed']) {
        assert.match(refused(`<p style='${style}'>x</p>`), /style/, style);
      }
    });

    it('refuses structure elements inside a body, and bodies mixed with content', () => {
      assert.match(refused('<p><body>x</body></p>'), /<body> inside/);
      assert.match(refused('<html><body>x</body></html>'), /<html>/);
      assert.match(refused('<head><title>x</title></head>'), /<head>/);
      assert.match(refused('<body>x</body><p>y</p>'), /mixed/);
    });
  });

  describe('#parseFragment() well-formedness', () => {
    const bad = [
      '<p>x', '<p>x</q>', '</p>', '<p a=1>x</p>', '<p a="1" a="2">x</p>', '<p a="1"b="2">x</p>', '<p a>x</p>', '<p a="<">x</p>',
      '< p>x</p>', 'a < b', 'AT&T', '&#xZZ;', '&#1114112;', '&unknown;', '<!-- a -- b -->', '<!-- open', '<![CDATA[x', 'a ]]> b', '<p', '<p a="x',
    ];
    for (const src of bad) {
      it(`refuses ${JSON.stringify(src)} with 400`, () => {
        const r = parseFragment(src);
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.problem.status, 400);
      });
    }

    it('refuses DOCTYPE, entity declarations and processing instructions before expanding anything', () => {
      for (const src of ['<!DOCTYPE p [<!ENTITY x "xxxxxxxx">]><p>&x;</p>', '<!ENTITY x SYSTEM "file:///etc/passwd">', '<?xml-stylesheet href="x"?><p/>', '<p><?php echo 1 ?></p>']) {
        const r = parseFragment(src);
        assert.equal(r.ok, false, src);
        if (!r.ok) assert.match(r.problem.detail, /DOCTYPE|processing instructions/);
      }
    });

    it(`refuses nesting deeper than ${MAX_DEPTH}`, () => {
      const deep = '<span>'.repeat(MAX_DEPTH + 1) + 'x' + '</span>'.repeat(MAX_DEPTH + 1);
      assert.equal(parseFragment(deep).ok, false);
      const ok = '<span>'.repeat(MAX_DEPTH - 1) + 'x' + '</span>'.repeat(MAX_DEPTH - 1);
      assert.equal(parseFragment(ok).ok, true);
    });

    it('parses attributes with either quote and entity references in them', () => {
      const r = parseFragment(`<a title='say "hi"' href="https://x/?a=1&amp;b=&#50;">x</a>`);
      assert.ok(r.ok);
      assert.deepEqual(r.value[0], { kind: 'element', name: 'a', attrs: [['title', 'say "hi"'], ['href', 'https://x/?a=1&b=2']], children: [{ kind: 'text', text: 'x' }] });
    });
  });
});
