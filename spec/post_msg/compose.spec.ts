// post_msg.md §13 (several recipients), §14 (title, Markdown, url attachments) and §15 (dry run) on the adapter,
// with a fast-check property: any Markdown gives a 201 with a body and an html the whitelist accepts.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import fc from 'fast-check';
import { StanzaError } from '../../lib/host/api.js';
import { load } from '../../lib/post_msg/index.js';
import { buildXhtmlIm } from '../../lib/post_msg/xhtml.js';
import { markdownToStyled } from '../../lib/post_msg/markdown.js';
import { fakeModule, type FakeModule } from './helpers/fake-module.js';
import { basic, request, type SpecResponse } from './helpers/http.js';

const USERS: Array<[string, string]> = [['bob@localhost', 'secret'], ['alice@localhost', 'pw'], ['carol@localhost', 'cpw'], ['dave@localhost', 'dpw']];

async function harness(options: Record<string, number> = {}): Promise<{ fake: FakeModule; url: string; close: () => Promise<void> }> {
  const fake = fakeModule({ options: { rate_burst: 1000, rate_per_second: 1000, ...options }, users: USERS });
  load(fake.api);
  const server: Server = fake.app().listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { fake, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/msg`, close: () => new Promise((r) => server.close(() => r())) };
}

describe('post_msg composing (§13–15)', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  const post = (path: string, body: unknown, type = 'application/json', extra: Record<string, string> = {}): Promise<SpecResponse> =>
    request(`${h.url}${path}`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': type, ...extra }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const sentSince = (n: number) => h.fake.sent.slice(n);

  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  describe('several recipients (§13)', () => {
    it('one stanza each, own ids, request order, the path recipient first: 201 {"messages": […]}', async () => {
      const n = h.fake.sent.length;
      const res = await post('/alice', { to: ['carol@localhost', 'dave'], body: 'hi all' });
      assert.equal(res.status, 201, res.text);
      const { messages } = res.json() as { messages: Array<{ id: string; to: string; outcome: string }> };
      assert.deepEqual(messages.map((m) => m.to), ['alice@localhost', 'carol@localhost', 'dave@localhost']);
      assert.equal(new Set(messages.map((m) => m.id)).size, 3);
      const sent = sentSince(n);
      assert.deepEqual(sent.map((s) => s.attrs.to), ['alice@localhost', 'carol@localhost', 'dave@localhost']);
      assert.deepEqual(sent.map((s) => s.attrs.id), messages.map((m) => m.id));
      assert.ok(sent.every((s) => s.getChildText('body') === 'hi all' && s.attrs.from === 'bob@localhost'));
    });

    it('the same recipient twice (after normalisation) gets one message', async () => {
      const n = h.fake.sent.length;
      const res = await post('', { to: ['alice', 'ALICE@localhost', 'carol'], body: 'once' });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(sentSince(n).map((s) => s.attrs.to), ['alice@localhost', 'carol@localhost']);
    });

    it('an empty array or more than max_recipients: 400 naming the limit', async () => {
      for (const to of [[], Array.from({ length: 21 }, (_, i) => `u${i}@localhost`)]) {
        const res = await post('', { to, body: 'x' });
        assert.equal(res.status, 400);
        assert.match(res.json().detail as string, /max_recipients/);
      }
    });

    it('one invalid or unknown recipient: its error, naming it, and nothing is sent to any', async () => {
      const n = h.fake.sent.length;
      const unknown = await post('', { to: ['alice', 'nobody', 'carol'], body: 'x' });
      assert.equal(unknown.status, 404);
      assert.match(unknown.json().detail as string, /nobody@localhost/);
      const invalid = await post('', { to: ['alice', 'a@@b'], body: 'x' });
      assert.equal(invalid.status, 400, invalid.text);
      const remote = await post('', { to: ['alice', 'x@remote.example'], body: 'x' });
      assert.ok(remote.status >= 400 && remote.status < 500, remote.text);
      assert.equal(h.fake.sent.length, n, 'nothing sent');
    });

    it('a failure while sending answers its status, naming the recipients already sent to', async () => {
      // The mock records each stanza before answering: the second send fails.
      const sent = h.fake.sent;
      const push = sent.push.bind(sent);
      let calls = 0;
      sent.push = (...items) => {
        if (++calls === 2) h.fake.setSendResult(new StanzaError('remote-server-timeout', 'slow'));
        return push(...items);
      };
      try {
        const res = await post('', { to: ['alice', 'carol', 'dave'], body: 'x' });
        assert.equal(res.status, 504);
        const detail = res.json().detail as string;
        assert.match(detail, /carol@localhost/);
        assert.match(detail, /Already sent: alice@localhost \(/);
        assert.ok(!detail.includes('dave'), 'dave was not reached');
      } finally {
        sent.push = push;
        h.fake.setSendResult('delivered');
      }
    });

    it('the rate limit counts each recipient as one message', async () => {
      const small = await harness({ rate_burst: 3, rate_per_second: 0.001 });
      try {
        const res = await request(`${small.url}`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'application/json' }, body: JSON.stringify({ to: ['alice', 'carol', 'dave', 'bob'], body: 'x' }) });
        assert.equal(res.status, 429);
        assert.equal(small.fake.sent.length, 0);
      } finally {
        await small.close();
      }
    });
  });

  describe('title, Markdown, attachments (§14)', () => {
    it('title is the first line of the body and a <strong> line of the html; subject still sets <subject>', async () => {
      const n = h.fake.sent.length;
      assert.equal((await post('/alice', { title: 'Disk full', body: 'db1 at 99%', subject: 'ops', html: '<p>db1 at <em>99%</em></p>' })).status, 201);
      const [s] = sentSince(n);
      assert.equal(s!.getChildText('body'), 'Disk full\ndb1 at 99%');
      assert.equal(s!.getChildText('subject'), 'ops');
      assert.match(s!.getChild('html')!.toString(), /<p><strong>Disk full<\/strong><\/p>/);
      const form = await post('/alice', 'title=Hello&body=world', 'application/x-www-form-urlencoded');
      assert.equal(form.status, 201);
      assert.equal(h.fake.sent.at(-1)!.getChildText('body'), 'Hello\nworld');
    });

    it('Markdown (text/markdown or format) gives an XEP-0393 body and a whitelisted XHTML-IM html', async () => {
      const md = '**bold** _it_ `code` ~~gone~~ [site](https://example.org)\n\n```\nx = 1\n```';
      for (const [body, type] of [[md, 'text/markdown; charset=utf-8'], [{ body: md, format: 'markdown' }, 'application/json']] as const) {
        const n = h.fake.sent.length;
        const res = await post('/alice', body, type);
        assert.equal(res.status, 201, res.text);
        const [s] = sentSince(n);
        assert.equal(s!.getChildText('body'), '*bold* _it_ `code` ~gone~ site (https://example.org)\n\n```\nx = 1\n```');
        const html = s!.getChild('html', 'http://jabber.org/protocol/xhtml-im');
        assert.ok(html, 'an html');
        assert.match(html.toString(), /<strong>bold<\/strong>/);
      }
    });

    it('Markdown outside the whitelist is left out of the html, never a 400', async () => {
      const res = await post('/alice', { body: '<script>alert(1)</script> [x](javascript:alert(1)) ![i](data:a)\n\n| a |\n|---|\n| 1 |\n\n---', format: 'markdown' });
      assert.equal(res.status, 201, res.text);
      const html = h.fake.sent.at(-1)!.getChild('html');
      assert.ok(!String(html ?? '').includes('<script'));
      assert.ok(!/href=["']javascript:/.test(String(html ?? '')));
      assert.ok(!/src=["']data:/.test(String(html ?? '')));
    });

    it('property: any Markdown gives a 201 with a body and an html the whitelist accepts', async () => {
      const piece = fc.constantFrom('**', '_', '`', '~~', '[a](', ')', '](https://x.org)', '# ', '> ', '- ', '1. ', '```\n', '\n', '\n\n', '<b>', '&', '|', '---', '![i](', 'http://e.org', ' ', 'text');
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(piece, fc.string({ maxLength: 8 })), { maxLength: 30 }), async (parts) => {
          // XML 1.0 characters only: the body is checked for them before Markdown (a 400 that is not Markdown's).
          const isXmlChar = (c: number): boolean => c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0xd800) || (c > 0xdfff && c < 0xfffe) || c > 0xffff;
          const text = [...parts.join('')].filter((ch) => isXmlChar(ch.codePointAt(0)!)).join('');
          if (!/\S/.test(text)) return;
          const n = h.fake.sent.length;
          const res = await post('/alice', { body: text, format: 'markdown' });
          assert.equal(res.status, 201, `${JSON.stringify(text)}: ${res.text}`);
          const [s] = sentSince(n);
          assert.ok((s!.getChildText('body') ?? '').length > 0);
          const html = s!.getChild('html');
          if (html) {
            const inner = html.getChild('body')!.children.map((c) => c.toString()).join('');
            assert.equal(buildXhtmlIm(inner).ok, true, inner);
          }
        }),
        { numRuns: 150 },
      );
    });

    it('url: a jabber:x:oob attachment whose body is the URL; with a body, two messages, the text first', async () => {
      let n = h.fake.sent.length;
      const only = await post('/alice', { url: 'https://example.org/cat.png' });
      assert.equal(only.status, 201, only.text);
      let sent = sentSince(n);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.getChildText('body'), 'https://example.org/cat.png');
      assert.equal(sent[0]!.getChild('x', 'jabber:x:oob')?.getChildText('url'), 'https://example.org/cat.png');

      n = h.fake.sent.length;
      const both = await post('/alice', { body: 'look', url: 'https://example.org/cat.png' });
      assert.equal(both.status, 201);
      sent = sentSince(n);
      assert.deepEqual(sent.map((s) => s.getChildText('body')), ['look', 'https://example.org/cat.png']);
      assert.equal(sent[0]!.getChild('x', 'jabber:x:oob'), undefined);
      assert.equal((both.json() as { messages: unknown[] }).messages.length, 2);
    });

    it('url other than http or https: 400 naming url', async () => {
      for (const url of ['ftp://x.org/a', 'javascript:alert(1)', 'not a url']) {
        const res = await post('/alice', { url });
        assert.equal(res.status, 400);
        assert.match(res.json().detail as string, /"url"/);
      }
    });
  });

  describe('dry run (§15)', () => {
    it('200 with the stanzas; nothing sent or recorded', async () => {
      const n = h.fake.sent.length;
      const res = await post('/alice?dry_run=1', { to: ['carol'], body: 'would send' }, 'application/json', { 'Idempotency-Key': 'dry-1' });
      assert.equal(res.status, 200, res.text);
      const { messages } = res.json() as { messages: Array<{ to: string; stanza: string }> };
      assert.deepEqual(messages.map((m) => m.to), ['alice@localhost', 'carol@localhost']);
      assert.match(messages[0]!.stanza, /^<message [^>]*to="alice@localhost"[^>]*>.*<body>would send<\/body><\/message>$/);
      const single = await post('/alice?dry_run=1', 'plain text', 'text/plain');
      assert.equal(single.status, 200);
      assert.equal((single.json() as { messages: unknown[] }).messages.length, 1);
      assert.equal(h.fake.sent.length, n, 'nothing sent');
      const real = await post('/alice', { to: ['carol'], body: 'would send' }, 'application/json', { 'Idempotency-Key': 'dry-1' });
      assert.equal(real.status, 201);
      assert.equal(real.headers['idempotent-replayed'], undefined, 'the dry run recorded nothing');
    });

    it('a room or a remote recipient: 200 with the stanza, nothing handed to the room or the remote server', async () => {
      const untouchable = new Proxy({}, { get: () => () => assert.fail('a dry run reached the service') });
      const fake = fakeModule({ users: USERS, components: ['rooms.localhost'], services: { s2s: untouchable }, servicesAt: { 'rooms.localhost': { muc: untouchable } } });
      load(fake.api);
      const server: Server = fake.app().listen(0, '127.0.0.1');
      await new Promise<void>((r) => server.once('listening', () => r()));
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msg`;
        for (const to of ['ops@rooms.localhost', 'carol@remote.example']) {
          const res = await request(`${base}/${to}?dry_run=1`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'text/plain' }, body: 'x' });
          assert.equal(res.status, 200, `${to}: ${res.text}`);
          assert.equal((res.json() as { messages: Array<{ to: string }> }).messages[0]!.to, to);
        }
        assert.equal(fake.sent.length, 0);
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
    });

    it('every check still runs: an unknown recipient 404, bad credentials 401', async () => {
      assert.equal((await post('/nobody?dry_run=1', 'x', 'text/plain')).status, 404);
      const res = await request(`${h.url}/alice?dry_run=1`, { headers: { Authorization: basic('bob', 'wrong'), 'Content-Type': 'text/plain' }, body: 'x' });
      assert.equal(res.status, 401);
    });
  });

  it('markdownToStyled keeps the text of lists, quotes and headings', () => {
    assert.equal(markdownToStyled('# T\n\n- a\n- b\n\n> q'), '*T*\n\n• a\n• b\n\n> q');
  });
});
