// The pure core of post_msg (lib/post_msg/message.ts): spec sections 3, 4 and 5, without sockets or Koa.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, type Element } from '../../lib/host/api.js';
import { buildMessage, createdResponse, deliveryProblem, type MessageInput } from '../../lib/post_msg/message.js';

const TEXT = 'text/plain';
const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

function input(contentType: string | undefined, body: string | Buffer, over: Partial<MessageInput> = {}): MessageInput {
  return {
    contentType,
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
    pathRecipient: 'alice',
    account: 'bob@localhost',
    host: 'localhost',
    id: 'id-1',
    isLocalHost: (d) => d === 'localhost' || d === 'example.org',
    ...over,
  };
}

function stanzaOf(i: MessageInput): Element {
  const r = buildMessage(i);
  if (!r.ok) assert.fail(`expected a stanza, got ${r.problem.status}: ${r.problem.detail}`);
  return r.value.stanza;
}

function problemOf(i: MessageInput): { status: number; detail: string; headers?: Record<string, string> } {
  const r = buildMessage(i);
  if (r.ok) assert.fail(`expected a problem, got ${r.value.stanza.toString()}`);
  return r.problem;
}

describe('post_msg core', () => {
  describe('#buildMessage() text/plain', () => {
    it('sends the whole body as <body> from the account to <path>@host, type chat, with the given id', () => {
      const s = stanzaOf(input(TEXT, 'Backup on db1 failed'));
      assert.equal(s.toString(), '<message from="bob@localhost" to="alice@localhost" type="chat" id="id-1"><body>Backup on db1 failed</body></message>');
    });

    it('accepts media-type parameters and any case (text/plain; charset=utf-8)', () => {
      for (const ct of ['text/plain; charset=utf-8', 'TEXT/Plain;Charset="UTF-8"', 'text/plain ; format=flowed', 'text/plain;', 'text/plain; charset=us-ascii']) {
        assert.equal(stanzaOf(input(ct, 'hi')).getChildText('body'), 'hi', ct);
      }
    });

    it('keeps the body verbatim, escaping it as XML (no markup injection)', () => {
      const body = 'a <b>&amp; "q" \'s\'\n\ttab\r\n😀 é';
      const s = stanzaOf(input(TEXT, body));
      assert.equal(s.getChildText('body'), body);
      assert.ok(s.toString().includes('a &lt;b&gt;&amp;amp;'));
    });

    it('drops a UTF-8 byte order mark at the start', () => {
      assert.equal(stanzaOf(input(TEXT, Buffer.from('\uFEFFhi'))).getChildText('body'), 'hi');
    });
  });

  describe('#buildMessage() form', () => {
    it('takes to, type, body, subject and html from the fields', () => {
      const s = stanzaOf(input(FORM, 'to=carol&type=normal&body=hello+world%21&subject=Re%3A+db1&html=%3Cp%3Ehi%3C%2Fp%3E', { pathRecipient: 'alice' }));
      assert.equal(s.attrs.to, 'carol@localhost');
      assert.equal(s.attrs.type, 'normal');
      assert.equal(s.getChildText('body'), 'hello world!');
      assert.equal(s.getChildText('subject'), 'Re: db1');
      assert.equal(s.getChild('html', 'http://jabber.org/protocol/xhtml-im')?.toString(), '<html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p>hi</p></body></html>');
    });

    it('uses the path recipient when there is no to field, and type chat by default', () => {
      const s = stanzaOf(input(FORM, 'body=x'));
      assert.equal(s.attrs.to, 'alice@localhost');
      assert.equal(s.attrs.type, 'chat');
    });

    it('takes a form body without "=" as the message text, verbatim and not percent-decoded (curl -d)', () => {
      assert.equal(stanzaOf(input(FORM, 'db1 is down')).getChildText('body'), 'db1 is down');
      assert.equal(stanzaOf(input(FORM, '100%+sure & ok')).getChildText('body'), '100%+sure & ok');
    });

    it('ignores unknown fields', () => {
      assert.equal(stanzaOf(input(FORM, 'body=x&priority=high&from=mallory%40localhost')).attrs.from, 'bob@localhost');
    });

    it('refuses a field given twice with 400 naming it', () => {
      const p = problemOf(input(FORM, 'body=a&body=b'));
      assert.equal(p.status, 400);
      assert.match(p.detail, /"body"/);
    });

    it('refuses malformed percent-encoding and escaped bytes that are not UTF-8 with 400', () => {
      assert.equal(problemOf(input(FORM, 'body=%zz')).status, 400);
      assert.equal(problemOf(input(FORM, 'body=%')).status, 400);
      const p = problemOf(input(FORM, 'body=%C3%28'));
      assert.equal(p.status, 400);
      assert.match(p.detail, /"body"/);
    });
  });

  describe('#buildMessage() json', () => {
    it('takes to, type, body, subject and html from the keys', () => {
      const s = stanzaOf(input(JSON_TYPE, JSON.stringify({ to: 'carol@localhost', type: 'headline', body: 'b', subject: 's', html: '<em>e</em>' })));
      assert.equal(s.attrs.to, 'carol@localhost');
      assert.equal(s.attrs.type, 'headline');
      assert.equal(s.getChildText('subject'), 's');
      assert.equal(s.getChild('html')?.getChild('body')?.getChild('em')?.getText(), 'e');
    });

    it('treats null as absent', () => {
      const s = stanzaOf(input(JSON_TYPE, '{"to": null, "type": null, "body": "x", "html": null}'));
      assert.equal(s.attrs.to, 'alice@localhost');
      assert.equal(s.attrs.type, 'chat');
      assert.equal(s.getChild('html'), undefined);
    });

    it('refuses a value of the wrong type with 400 naming the key', () => {
      for (const [key, value] of [['body', 1], ['to', true], ['type', ['chat']], ['html', { p: 1 }], ['subject', 2]] as const) {
        const p = problemOf(input(JSON_TYPE, JSON.stringify({ body: 'x', [key]: value })));
        assert.equal(p.status, 400, key);
        assert.match(p.detail, new RegExp(`"${key}"`));
      }
    });

    it('refuses JSON that does not parse, or is not an object, with 400', () => {
      for (const body of ['{', '', '[]', '"text"', 'null', '42', '[{"body":"x"}]']) {
        assert.equal(problemOf(input(JSON_TYPE, body)).status, 400, body);
      }
    });

    it('ignores unknown keys, including __proto__', () => {
      const s = stanzaOf(input(JSON_TYPE, '{"body":"x","__proto__":{"to":"evil"},"from":"mallory@localhost","extra":[1]}'));
      assert.equal(s.attrs.to, 'alice@localhost');
      assert.equal(s.attrs.from, 'bob@localhost');
    });
  });

  describe('#buildMessage() content type and encoding', () => {
    it('answers 415 with Accept-Post for no, unknown or malformed Content-Type', () => {
      for (const ct of [undefined, '', 'text/html', 'application/xml', 'multipart/form-data; boundary=x', 'text', 'text/plain; charset', 'text/plain, text/html']) {
        const p = problemOf(input(ct, 'x'));
        assert.equal(p.status, 415, String(ct));
        assert.equal(p.headers?.['Accept-Post'], 'text/plain, application/x-www-form-urlencoded, application/json, text/markdown');
      }
    });

    it('answers 415 for a charset other than utf-8 or us-ascii', () => {
      for (const ct of ['text/plain; charset=iso-8859-1', 'application/json; charset=utf-16', 'text/plain; charset=utf-8; charset=latin1']) {
        assert.equal(problemOf(input(ct, 'x')).status, 415, ct);
      }
    });

    it('refuses a body that is not valid UTF-8 with 400, in every format', () => {
      for (const ct of [TEXT, FORM, JSON_TYPE]) {
        assert.equal(problemOf(input(ct, Buffer.from([0x68, 0xc3, 0x28]))).status, 400, ct);
        assert.equal(problemOf(input(ct, Buffer.from([0xed, 0xa0, 0x80]))).status, 400, `${ct} (encoded surrogate)`);
      }
    });

    it('refuses non-ASCII bytes declared as us-ascii with 400', () => {
      assert.equal(problemOf(input('text/plain; charset=us-ascii', 'é')).status, 400);
    });
  });

  describe('#buildMessage() type', () => {
    it('accepts chat, normal and headline', () => {
      for (const type of ['chat', 'normal', 'headline']) assert.equal(stanzaOf(input(FORM, `type=${type}&body=x`)).attrs.type, type);
    });

    it('answers 422 for groupchat (no multi-user chat on this server)', () => {
      assert.equal(problemOf(input(FORM, 'type=groupchat&body=x')).status, 422);
    });

    it('answers 400 for error and anything else', () => {
      for (const type of ['error', 'Chat', '', 'x']) assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ type, body: 'x' }))).status, 400, type);
    });
  });

  describe('#buildMessage() XML-illegal characters', () => {
    const illegal = ['\u0000', '\u0001', '\u001b', '\u000b', '\u000c', '\u001f', '\uFFFE', '\uFFFF', '\uD800', '\uDFFF'];
    it('refuses C0 controls (except tab, CR, LF), U+FFFE/U+FFFF and lone surrogates in body and subject with 400', () => {
      for (const ch of illegal) {
        const p = problemOf(input(JSON_TYPE, JSON.stringify({ body: `a${ch}b` })));
        assert.equal(p.status, 400, JSON.stringify(ch));
        assert.match(p.detail, /U\+[0-9A-F]{4}/);
        assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ body: 'x', subject: `a${ch}` }))).status, 400);
      }
      assert.equal(problemOf(input(TEXT, 'esc\u001b[31m red')).status, 400);
      assert.equal(problemOf(input(TEXT, Buffer.from([0x61, 0x00, 0x62]))).status, 400);
    });

    it('allows tab, CR, LF and astral characters', () => {
      assert.equal(stanzaOf(input(TEXT, 'a\tb\r\nc\n𝄞')).getChildText('body'), 'a\tb\r\nc\n𝄞');
    });

    it('refuses illegal characters in html, also as character references', () => {
      assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ html: '<p>\u001b</p>' }))).status, 400);
      assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ html: '<p>&#27;</p>' }))).status, 400);
      assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ html: '<p title="&#xFFFE;">x</p>' }))).status, 400);
    });
  });

  describe('#buildMessage() html', () => {
    it('adds html and, without a body, a body made of the html text', () => {
      const s = stanzaOf(input(JSON_TYPE, JSON.stringify({ html: '<p>Backup <strong>failed</strong></p><p>on db1<br/>at 3:00</p>' })));
      assert.equal(s.getChildText('body'), 'Backup failed\non db1\nat 3:00');
      assert.ok(s.getChild('html', 'http://jabber.org/protocol/xhtml-im'));
    });

    it('keeps the given body when both are given', () => {
      assert.equal(stanzaOf(input(JSON_TYPE, JSON.stringify({ body: 'plain', html: '<em>rich</em>' }))).getChildText('body'), 'plain');
    });

    it('answers 400 for html that is not well-formed or has a DOCTYPE', () => {
      for (const html of ['<p>x', '<p>x</b>', '<p a=1>x</p>', '<!DOCTYPE html><p>x</p>', '<!ENTITY x "y">', '<?xml version="1.0"?><p>x</p>', '&nbsp;']) {
        assert.equal(problemOf(input(JSON_TYPE, JSON.stringify({ html }))).status, 400, html);
      }
    });

    it('answers 400 naming <script> and the replacement for <b>', () => {
      assert.match(problemOf(input(FORM, 'html=%3Cscript%3Ex%3C%2Fscript%3E')).detail, /<script>/);
      assert.match(problemOf(input(FORM, 'html=%3Cb%3Ex%3C%2Fb%3E')).detail, /<b>.*use <strong>/);
    });
  });

  describe('#buildMessage() nothing to send', () => {
    it('answers 422 when there is neither a non-empty body nor html', () => {
      for (const [ct, body] of [[TEXT, ''], [FORM, ''], [FORM, 'body='], [FORM, 'subject=only'], [JSON_TYPE, '{}'], [JSON_TYPE, '{"body":""}'], [JSON_TYPE, '{"body":null,"html":""}']] as const) {
        const p = problemOf(input(ct, body));
        assert.equal(p.status, 422, `${ct} ${body}`);
        assert.match(p.detail, /nothing to send/i);
      }
    });
  });

  describe('#buildMessage() recipient', () => {
    it('takes a path without @ as a user of the serving host', () => {
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'alice', host: 'example.org' })).attrs.to, 'alice@example.org');
    });

    it('percent-decodes the path once', () => {
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'alice%40example.org%2Fphone' })).attrs.to, 'alice@example.org/phone');
      // Once, not twice: %2540 → %40 stays a literal "%40" in the localpart (which RFC 7622 allows).
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'al%2540ice' })).attrs.to, 'al%40ice@localhost');
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'j%C3%BCrgen' })).attrs.to, 'jürgen@localhost');
    });

    it('takes a full or bare JID with @, from the path or the to field', () => {
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'alice@example.org/phone' })).attrs.to, 'alice@example.org/phone');
      assert.equal(stanzaOf(input(FORM, 'to=alice%40example.org&body=x')).attrs.to, 'alice@example.org');
    });

    it('normalises the recipient (RFC 7622)', () => {
      assert.equal(stanzaOf(input(JSON_TYPE, '{"to":"Receiver@LOCALHOST","body":"x"}')).attrs.to, 'receiver@localhost');
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'ALICE' })).attrs.to, 'alice@localhost');
    });

    it('answers 400 quoting the value for invalid JIDs', () => {
      for (const to of ['a@b@c', '@x', 'x@', 'al ice', 'al ice@localhost', 'alice@localhost/', 'a/b']) {
        const p = problemOf(input(JSON_TYPE, JSON.stringify({ to, body: 'x' })));
        assert.equal(p.status, 400, to);
        assert.ok(p.detail.includes(JSON.stringify(to)), `${to}: ${p.detail}`);
      }
      assert.equal(problemOf(input(TEXT, 'x', { pathRecipient: 'a%40b%40c' })).status, 400);
      assert.equal(problemOf(input(TEXT, 'x', { pathRecipient: '%E0%A4%A' })).status, 400);
    });

    it('answers 400 for a part longer than 1023 bytes (RFC 7622 §3)', () => {
      assert.equal(stanzaOf(input(TEXT, 'x', { pathRecipient: 'a'.repeat(1023) })).attrs.to, `${'a'.repeat(1023)}@localhost`);
      assert.equal(problemOf(input(TEXT, 'x', { pathRecipient: 'a'.repeat(1024) })).status, 400);
      assert.equal(problemOf(input(TEXT, 'x', { pathRecipient: `alice@localhost/${'r'.repeat(1024)}` })).status, 400);
    });

    it('answers 422 when there is no recipient anywhere', () => {
      assert.equal(problemOf(input(TEXT, 'x', { pathRecipient: '' })).status, 422);
      assert.equal(problemOf(input(JSON_TYPE, '{"body":"x","to":null}', { pathRecipient: '' })).status, 422);
    });

    it('answers 422 "remote domains are not supported" for a domain this server does not serve', () => {
      const p = problemOf(input(TEXT, 'x', { pathRecipient: 'alice@jabber.example.net' }));
      assert.equal(p.status, 422);
      assert.match(p.detail, /remote domains are not supported/i);
    });

    it('never takes from from the payload; keeps the resource of the account', () => {
      assert.equal(stanzaOf(input(JSON_TYPE, '{"body":"x","from":"alice@localhost"}', { account: 'bob@localhost/ci' })).attrs.from, 'bob@localhost/ci');
    });
  });

  describe('#createdResponse()', () => {
    it('answers 201 with id, to and outcome', () => {
      const r = buildMessage(input(TEXT, 'x', { pathRecipient: 'alice@localhost/phone' }));
      assert.ok(r.ok);
      assert.deepEqual(createdResponse(r.value, 'stored'), { status: 201, body: { id: 'id-1', to: 'alice@localhost/phone', outcome: 'stored' } });
    });
  });

  describe('#deliveryProblem()', () => {
    it('maps routing errors to statuses; internal ones get a generic detail', () => {
      assert.equal(deliveryProblem(new StanzaError('service-unavailable'), 'a@b').status, 403);
      assert.equal(deliveryProblem(new StanzaError('item-not-found'), 'a@b').status, 404);
      assert.equal(deliveryProblem(new StanzaError('not-acceptable'), 'a@b').status, 403);
      const internal = deliveryProblem(new StanzaError('internal-server-error', 'disk full at /var/lib/x'), 'a@b');
      assert.equal(internal.status, 500);
      assert.equal(internal.isInternal, true);
      assert.doesNotMatch(internal.detail, /disk|var/);
    });

    it('answers 502 for a remote server that cannot be reached or authenticated, 504 only for a timeout (post_msg.md §9)', () => {
      assert.equal(deliveryProblem(new StanzaError('remote-server-not-found', 'x.example cannot be reached'), 'a@x.example').status, 502);
      // RFC 6120 §8.3.3.17: a failed negotiation (TLS, SASL, dialback) is remote-server-timeout, of type cancel.
      const refused = deliveryProblem(new StanzaError('remote-server-timeout', 'x.example is not authenticated', 'cancel'), 'a@x.example');
      assert.equal(refused.status, 502);
      assert.match(refused.detail, /x\.example is not authenticated/);
      assert.equal(deliveryProblem(new StanzaError('remote-server-timeout', 'x.example did not answer'), 'a@x.example').status, 504);
    });
  });
});
