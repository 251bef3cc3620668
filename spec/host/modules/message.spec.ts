// Message delivery (RFC 6121 §8.5) and offline storage (XEP-0160, XEP-0203): recipient selection by
// priority, the Outcome that module.send() resolves to, full-JID fallbacks, durability across a restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StanzaError, xml, type ClientSession, type ModuleApi } from '../../../lib/host/api.js';
import { isWorthStoring, selectRecipients, messageType } from '../../../lib/host/modules/message.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, withTimeout, type RawClient } from '../c2s/helpers.js';

const USERS: Array<[string, string]> = [
  ['alice@localhost', 'alice-pw'],
  ['bob@localhost', 'bob-pw'],
  ['dora@localhost', 'dora-pw'],
];

function fakeSession(full: string, isAvailable: boolean, priority: number): ClientSession {
  return { id: full, full, bare: full.split('/')[0]!, host: 'localhost', isAvailable, priority, deliver: () => true, whenWritten: async () => true, close: () => undefined };
}

describe('message module', () => {
  describe('selectRecipients()', () => {
    const a = fakeSession('u@h/a', true, 5);
    const b = fakeSession('u@h/b', true, 5);
    const c = fakeSession('u@h/c', true, 1);
    const neg = fakeSession('u@h/neg', true, -1);
    const away = fakeSession('u@h/off', false, 50);

    it('picks the available resources with the highest priority', () => {
      assert.deepEqual(selectRecipients([a, b, c, neg, away], 'chat'), [a, b]);
      assert.deepEqual(selectRecipients([c, neg], 'normal'), [c]);
    });

    it('never picks a negative priority or an unavailable resource', () => {
      assert.deepEqual(selectRecipients([neg, away], 'chat'), []);
    });

    it('sends headlines to every non-negative available resource', () => {
      assert.deepEqual(selectRecipients([a, c, neg, away], 'headline'), [a, c]);
    });

    it('does not keep chat states alone or no-store messages offline (XEP-0085 §5.5, XEP-0334)', () => {
      const states = xml('message', {}, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
      assert.equal(isWorthStoring(states), false);
      assert.equal(isWorthStoring(xml('message', {}, xml('body', {}, 'x'), xml('no-store', { xmlns: 'urn:xmpp:hints' }))), false);
      assert.equal(isWorthStoring(xml('message', {}, xml('body', {}, 'x'), xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }))), true);
      assert.equal(isWorthStoring(xml('message', {}, xml('received', { xmlns: 'urn:xmpp:receipts', id: '1' }))), true);
    });

    it('treats a missing or unknown type as normal (RFC 6121 §5.2.2)', () => {
      assert.equal(messageType(xml('message')), 'normal');
      assert.equal(messageType(xml('message', { type: 'bogus' })), 'normal');
    });
  });

  describe('routing', () => {
    let ts: TestServer;
    let api: ModuleApi;
    const clients: RawClient[] = [];
    const login = async (user: string, resource: string, priority?: number) => {
      const { raw, jid } = await rawLogin(ts.c2sPort, user, `${user}-pw`, resource);
      clients.push(raw);
      if (priority !== undefined) {
        raw.send(`<presence><priority>${priority}</priority></presence>`);
        await raw.waitFor(/<presence[^>]*>.*?<\/presence>|<presence[^>]*\/>/s, 'own presence echo');
      }
      return { raw, jid };
    };
    /** Disconnect and wait until the server has dropped the session, so later sends cannot reach it. */
    const leave = async (session: { raw: RawClient; jid: string }) => {
      session.raw.close();
      await withTimeout(
        (async () => {
          while (ts.server.sessions.byFull(session.jid)) await new Promise((r) => setTimeout(r, 5));
        })(),
        `${session.jid} to go away`,
      );
    };
    const send = (to: string, type?: string, body = 'hi') => api.send(xml('message', { to, from: 'alice@localhost', type }, xml('body', {}, body)));

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [] }, users: USERS });
      api = ts.server.modules.apiOf('localhost', 'message')!;
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    it('resolves to stored for chat to an account with no available resource, delivered once it is', async () => {
      assert.equal(await send('bob@localhost', 'chat', 'first'), 'stored');
      assert.equal(await send('bob@localhost', undefined, 'second'), 'stored');
      const { raw } = await login('bob', 'r1', 0);
      const [, body1] = await raw.waitFor(/<message [^>]*>.*?<body>(first)<\/body>.*?<delay xmlns="urn:xmpp:delay" from="localhost" stamp="[^"]+"/s, 'first offline message');
      assert.equal(body1, 'first');
      await raw.waitFor(/<body>second<\/body>/, 'second offline message, in order');
      assert.equal(await ts.server.modules.apiOf('localhost', 'message')!.openArchive('offline').count('bob@localhost'), 0, 'deleted after delivery');
      assert.equal(await send('bob@localhost', 'chat', 'live'), 'delivered');
      await raw.waitFor(/<body>live<\/body>/);
    });

    it('discards a headline to an account with no available resource', async () => {
      assert.equal(await send('dora@localhost', 'headline'), 'discarded');
    });

    it('discards a chat state notification to an account with no available resource', async () => {
      const composing = xml('message', { to: 'dora@localhost', from: 'alice@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
      assert.equal(await api.send(composing), 'discarded');
    });

    it('rejects a message to an account that does not exist with service-unavailable', async () => {
      await assert.rejects(send('ghost@localhost', 'chat'), (err: unknown) => err instanceof StanzaError && err.condition === 'service-unavailable');
    });

    it('rejects groupchat to a bare JID with service-unavailable (§8.5.2.1.1)', async () => {
      await assert.rejects(send('dora@localhost', 'groupchat'), (err: unknown) => err instanceof StanzaError && err.condition === 'service-unavailable');
    });

    it('delivers to the highest priority resource only; a full JID reaches the other', async () => {
      const high = await login('alice', 'high', 10);
      const low = await login('alice', 'low', 1);
      assert.equal(await api.send(xml('message', { to: 'alice@localhost', from: 'bob@localhost', type: 'chat' }, xml('body', {}, 'to-bare'))), 'delivered');
      await high.raw.waitFor(/<body>to-bare<\/body>/);
      assert.equal(await api.send(xml('message', { to: 'alice@localhost/low', from: 'bob@localhost', type: 'chat' }, xml('body', {}, 'to-low'))), 'delivered');
      await low.raw.waitFor(/<body>to-low<\/body>/);
      assert.doesNotMatch(low.raw.text, /to-bare/, 'the lower priority resource did not get the bare message');
      await leave(high);
      await leave(low);
    });

    it('treats chat to an unknown resource as bare, and drops a headline to it', async () => {
      const online = await login('dora', 'here', 0);
      assert.equal(await api.send(xml('message', { to: 'dora@localhost/gone', from: 'bob@localhost', type: 'chat' }, xml('body', {}, 'rerouted'))), 'delivered');
      await online.raw.waitFor(/<message [^>]*to="dora@localhost\/gone"[^>]*>.*?<body>rerouted<\/body>/s);
      assert.equal(await api.send(xml('message', { to: 'dora@localhost/gone', from: 'bob@localhost', type: 'headline' }, xml('body', {}, 'x'))), 'discarded');
      await leave(online);
    });

    it('stores a message when the only resource has a negative priority', async () => {
      const shy = await login('dora', 'shy', -1);
      assert.equal(await send('dora@localhost', 'chat', 'for-later'), 'stored');
      assert.doesNotMatch(shy.raw.text, /for-later/);
      await leave(shy);
    });

    it('bounces an error to a client that messages an unknown account, per RFC 6120 §8.3', async () => {
      const { raw } = await login('alice', 'bouncer');
      raw.send("<message to='nobody@localhost' id='m9' type='chat'><body>anyone?</body></message>");
      const [bounce] = await raw.waitFor(/<message [^>]*type="error"[^>]*>.*?<\/message>/s, 'the bounce');
      assert.match(bounce, /from="nobody@localhost"/);
      assert.match(bounce, /to="alice@localhost\/bouncer"/);
      assert.match(bounce, /id="m9"/);
      assert.match(bounce, /<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/error>/);
      raw.close();
    });
  });

  describe('offline storage', () => {
    it('keeps stored messages across a restart (durable when append resolves)', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-offline-'));
      try {
        const first = await startTestServer({ config: { modules_enabled: [] }, users: USERS, dataDir });
        const api = first.server.modules.apiOf('localhost', 'message')!;
        assert.equal(await api.send(xml('message', { to: 'bob@localhost', from: 'alice@localhost', type: 'chat' }, xml('body', {}, 'survives'))), 'stored');
        await first.stop();

        const second = await startTestServer({ config: { modules_enabled: [] }, dataDir });
        try {
          const { raw } = await rawLogin(second.c2sPort, 'bob', 'bob-pw', 'after-restart');
          raw.send('<presence/>');
          await raw.waitFor(/<body>survives<\/body>/, 'the message stored before the restart');
          raw.close();
        } finally {
          await second.stop();
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});
