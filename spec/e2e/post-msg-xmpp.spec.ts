// post_msg end to end with a real XMPP receiver (@xmpp/client over STARTTLS): the stanza each payload
// format produces, online delivery to bare and full JIDs, offline storage with a XEP-0203 delay.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';
import { basic, request, type SpecResponse } from '../post_msg/helpers/http.js';

const XHTML_IM = 'http://jabber.org/protocol/xhtml-im';
const XHTML = 'http://www.w3.org/1999/xhtml';

/** A stanza as plain data: name, attributes (without the stream's default namespace) and children. */
function shape(el: Element): unknown {
  const attrs = { ...el.attrs };
  if (attrs.xmlns === 'jabber:client') delete attrs.xmlns;
  return {
    name: el.name,
    attrs,
    children: el.children.map((c) => (typeof c === 'string' ? c : shape(c))),
  };
}

describe('post_msg to an XMPP client', () => {
  let ts: TestServer;
  let restoreTls: () => void;
  let alice: Client;

  const send = (path: string, contentType: string, body: string, user: [string, string] = ['bob@localhost', 'bob-secret']): Promise<SpecResponse> =>
    request(`${ts.httpUrl}${path}`, { headers: { Authorization: basic(...user), 'Content-Type': contentType }, body });

  /** POST, expect 201, and return the answer's id with the message alice's client got. */
  async function roundTrip(path: string, contentType: string, body: string, user?: [string, string]): Promise<{ answer: Record<string, unknown>; stanza: Element }> {
    const received = nextStanza(alice, (el) => el.is('message'), 'the message at alice');
    const res = await send(path, contentType, body, user);
    assert.equal(res.status, 201, res.text);
    return { answer: res.json(), stanza: await received };
  }

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({
      users: [
        ['alice@localhost', 'alice-secret'],
        ['bob@localhost', 'bob-secret'],
        ['carol@localhost', 'carol-secret'],
        ['dave@localhost', 'dave-secret'],
      ],
    });
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret', resource: 'desk' });
    await goOnline(alice, 'alice');
  });

  after(async () => {
    if (alice) await stopClient(alice);
    await ts?.stop();
    restoreTls?.();
  });

  it('text/plain: exactly <message from to type=chat id><body/></message>', async () => {
    const { answer, stanza } = await roundTrip('/msg/alice', 'text/plain', 'Backup on db1 failed');
    assert.deepEqual(answer, { id: answer.id, to: 'alice@localhost', outcome: 'delivered' });
    assert.match(String(answer.id), /^[0-9a-f-]{36}$/);
    assert.deepEqual(shape(stanza), {
      name: 'message',
      attrs: { from: 'bob@localhost', to: 'alice@localhost', type: 'chat', id: answer.id },
      children: [{ name: 'body', attrs: {}, children: ['Backup on db1 failed'] }],
    });
  });

  it('curl -d (form without "="): the text verbatim', async () => {
    const { stanza } = await roundTrip('/msg/alice', 'application/x-www-form-urlencoded', 'db1 is down & 100%+ <sure>');
    assert.equal(stanza.getChildText('body'), 'db1 is down & 100%+ <sure>');
  });

  it('form: to, type, subject, body and html', async () => {
    const form = new URLSearchParams({ to: 'Alice@LOCALHOST', type: 'normal', subject: 'Nightly', body: 'db1: 3 failed', html: '<p>db1: <strong>3</strong> failed</p>' });
    const { answer, stanza } = await roundTrip('/msg', 'application/x-www-form-urlencoded', form.toString());
    assert.deepEqual(shape(stanza), {
      name: 'message',
      attrs: { from: 'bob@localhost', to: 'alice@localhost', type: 'normal', id: answer.id },
      children: [
        { name: 'body', attrs: {}, children: ['db1: 3 failed'] },
        { name: 'subject', attrs: {}, children: ['Nightly'] },
        {
          name: 'html',
          attrs: { xmlns: XHTML_IM },
          children: [{ name: 'body', attrs: { xmlns: XHTML }, children: [{ name: 'p', attrs: {}, children: ['db1: ', { name: 'strong', attrs: {}, children: ['3'] }, ' failed'] }] }],
        },
      ],
    });
  });

  it('JSON: html without body gets a body of its text; headline to an online user is delivered', async () => {
    const { answer, stanza } = await roundTrip('/msg/alice', 'application/json; charset=utf-8', JSON.stringify({ type: 'headline', html: '<p>Build <em>#42</em> passed<br/>see <a href="https://ci.example/42">log</a></p>' }));
    assert.equal(answer.outcome, 'delivered');
    assert.deepEqual(shape(stanza), {
      name: 'message',
      attrs: { from: 'bob@localhost', to: 'alice@localhost', type: 'headline', id: answer.id },
      children: [
        { name: 'body', attrs: {}, children: ['Build #42 passed\nsee log'] },
        {
          name: 'html',
          attrs: { xmlns: XHTML_IM },
          children: [
            {
              name: 'body',
              attrs: { xmlns: XHTML },
              children: [
                {
                  name: 'p',
                  attrs: {},
                  children: ['Build ', { name: 'em', attrs: {}, children: ['#42'] }, ' passed', { name: 'br', attrs: {}, children: [] }, 'see ', { name: 'a', attrs: { href: 'https://ci.example/42' }, children: ['log'] }],
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it('keeps the resource of the credentials in from', async () => {
    const { stanza } = await roundTrip('/msg/alice', 'text/plain', 'from ci', ['bob@localhost/ci', 'bob-secret']);
    assert.equal(stanza.attrs.from, 'bob@localhost/ci');
  });

  it('delivers to a full JID that is online, and to the bare JID for one that is not (RFC 6121 §8.5.3.2.1)', async () => {
    const full = await roundTrip('/msg/alice@localhost/desk', 'text/plain', 'to the desk');
    assert.equal(full.stanza.attrs.to, 'alice@localhost/desk');
    assert.equal(full.answer.to, 'alice@localhost/desk');
    const gone = await roundTrip('/msg/alice@localhost%2Fphone', 'text/plain', 'to the phone');
    assert.equal(gone.stanza.getChildText('body'), 'to the phone');
    assert.equal(gone.answer.outcome, 'delivered');
  });

  it('escapes markup in text so the client gets it as text', async () => {
    const text = '</body><body>injected</body> & "q"';
    const { stanza } = await roundTrip('/msg/alice', 'text/plain', text);
    assert.equal(stanza.getChildren('body').length, 1);
    assert.equal(stanza.getChildText('body'), text);
  });

  it('stores a chat message for an offline account (201 "stored") and delivers it at login with a delay stamp', async () => {
    const res = await send('/msg/carol', 'text/plain', 'while you were out');
    assert.equal(res.status, 201, res.text);
    const answer = res.json();
    assert.equal(answer.outcome, 'stored');
    const carol = await startClient({ port: ts.c2sPort, username: 'carol', password: 'carol-secret' });
    try {
      const received = nextStanza(carol, (el) => el.is('message'), 'the stored message at carol');
      await carol.send(xml('presence'));
      const msg = await received;
      assert.equal(msg.attrs.id, answer.id);
      assert.equal(msg.attrs.from, 'bob@localhost');
      assert.equal(msg.attrs.type, 'chat');
      assert.equal(msg.getChildText('body'), 'while you were out');
      const delay = msg.getChild('delay', 'urn:xmpp:delay');
      assert.ok(delay, 'a XEP-0203 delay');
      assert.equal(delay.attrs.from, 'localhost');
      assert.match(delay.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    } finally {
      await stopClient(carol);
    }
  });

  it('discards a headline for an offline account (201 "discarded"), nothing at login', async () => {
    const res = await send('/msg/dave', 'application/json', '{"type":"headline","body":"ephemeral"}');
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json().outcome, 'discarded');
    const dave = await startClient({ port: ts.c2sPort, username: 'dave', password: 'dave-secret' });
    try {
      const extra = nextStanza(dave, (el) => el.is('message'), 'no message', 700);
      await dave.send(xml('presence'));
      await assert.rejects(extra, /timed out/);
    } finally {
      await stopClient(dave);
    }
  });

  it('sends nothing for a refused request', async () => {
    const extra = nextStanza(alice, (el) => el.is('message'), 'no message', 700);
    for (const [ct, body] of [['text/plain', 'a\u001bb'], ['application/json', '{"html":"<script>x</script>"}'], ['application/json', '{"type":"error","body":"x"}'], ['text/plain', '']]) {
      const res = await send('/msg/alice', ct!, body!);
      assert.ok(res.status >= 400, `${body}: ${res.status}`);
    }
    await assert.rejects(extra, /timed out/);
  });
});
