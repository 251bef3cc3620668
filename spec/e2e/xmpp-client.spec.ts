// End to end with @xmpp/client over STARTTLS and direct TLS: login (PLAIN, SCRAM-SHA-1), messages online
// and offline (XEP-0203 delay), ping (XEP-0199), roster get (RFC 6121 §2.2), disco (XEP-0030).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';

describe('c2s with @xmpp/client', () => {
  let ts: TestServer;
  let restoreTls: () => void;

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({
      config: { modules_enabled: [] },
      users: [
        ['alice@localhost', 'alice-secret'],
        ['bob@localhost', 'bob-secret'],
        ['carol@localhost', 'carol-secret'],
      ],
    });
  });

  after(async () => {
    await ts?.stop();
    restoreTls?.();
  });

  describe('login', () => {
    it('logs in with SCRAM-SHA-1 over STARTTLS and gets the asked resource', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret', resource: 'desk' });
      try {
        assert.equal(String(c.jid), 'alice@localhost/desk');
      } finally {
        await stopClient(c);
      }
    });

    it('logs in with PLAIN over STARTTLS', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret', mechanism: 'PLAIN' });
      try {
        assert.match(String(c.jid), /^bob@localhost\/.+/);
      } finally {
        await stopClient(c);
      }
    });

    it('logs in over direct TLS (XEP-0368)', async () => {
      assert.ok(ts.c2sTlsPort, 'the test server has a direct TLS port');
      const c = await startClient({ port: ts.c2sTlsPort, username: 'alice', password: 'alice-secret', directTls: true });
      await stopClient(c);
    });

    it('rejects a wrong password with not-authorized', async () => {
      await assert.rejects(startClient({ port: ts.c2sPort, username: 'alice', password: 'wrong' }), /not-authorized/);
    });
  });

  describe('messages', () => {
    it('delivers a chat message between two online accounts with the sender full JID as from', async () => {
      const alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret', resource: 'a1' });
      const bob = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret', resource: 'b1' });
      try {
        await goOnline(bob, 'bob');
        const received = nextStanza(bob, (el) => el.is('message'), 'the message at bob');
        // A forged `from` must be replaced by the sender's full JID (RFC 6120 §8.1.2.1).
        await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', from: 'mallory@localhost/x' }, xml('body', {}, 'hello bob')));
        const msg = await received;
        assert.equal(msg.attrs.from, 'alice@localhost/a1');
        assert.equal(msg.getChildText('body'), 'hello bob');
      } finally {
        await stopClient(alice);
        await stopClient(bob);
      }
    });

    it('stores a message for an offline account and delivers it on initial presence with a delay', async () => {
      const alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret' });
      try {
        await alice.send(xml('message', { to: 'carol@localhost', type: 'chat' }, xml('body', {}, 'while you were out')));
        // A ping round trip: the message before it has been routed (one session handles stanzas in order).
        await alice.iqCaller.get(xml('ping', { xmlns: 'urn:xmpp:ping' }), 'localhost', 5_000);
      } finally {
        await stopClient(alice);
      }
      const carol = await startClient({ port: ts.c2sPort, username: 'carol', password: 'carol-secret' });
      try {
        const received = nextStanza(carol, (el) => el.is('message'), 'the offline message');
        await carol.send(xml('presence'));
        const msg = await received;
        assert.equal(msg.getChildText('body'), 'while you were out');
        const delay = msg.getChild('delay', 'urn:xmpp:delay');
        assert.ok(delay, 'has a XEP-0203 delay');
        assert.equal(delay.attrs.from, 'localhost');
        assert.match(delay.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      } finally {
        await stopClient(carol);
      }
      // Delivered once, then deleted.
      const again = await startClient({ port: ts.c2sPort, username: 'carol', password: 'carol-secret' });
      try {
        const extra = nextStanza(again, (el) => el.is('message'), 'no second delivery', 500);
        await again.send(xml('presence'));
        await assert.rejects(extra, /timed out/);
      } finally {
        await stopClient(again);
      }
    });

    it('bounces a message to an unknown account with service-unavailable', async () => {
      const alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret' });
      try {
        const bounce = nextStanza(alice, (el) => el.is('message') && el.attrs.type === 'error', 'the error bounce');
        await alice.send(xml('message', { to: 'nobody@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hi')));
        const err = await bounce;
        assert.equal(err.attrs.from, 'nobody@localhost');
        assert.equal(err.attrs.id, 'm1');
        assert.ok(err.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
        assert.equal(err.getChildText('body'), 'hi', 'the original payload comes back');
      } finally {
        await stopClient(alice);
      }
    });
  });

  describe('small services', () => {
    it('answers a ping to the server (XEP-0199)', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret' });
      try {
        const result = await c.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 5_000);
        assert.equal(result.attrs.type, 'result');
      } finally {
        await stopClient(c);
      }
    });

    it('returns an empty roster with a version (RFC 6121 §2.6)', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret' });
      try {
        const query = await c.iqCaller.get(xml('query', { xmlns: 'jabber:iq:roster' }), undefined, 5_000);
        assert.equal(query.getChildren('item').length, 0);
        assert.ok(query.attrs.ver !== undefined, 'ver is present');
      } finally {
        await stopClient(c);
      }
    });

    it('lists the server features in disco#info (XEP-0030)', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret' });
      try {
        const query = await c.iqCaller.get(xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), 'localhost', 5_000);
        const features = query.getChildren('feature').map((f) => f.attrs.var);
        for (const f of ['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'urn:xmpp:ping', 'msgoffline']) {
          assert.ok(features.includes(f), `${f} is listed`);
        }
        assert.equal(query.getChild('identity')?.attrs.category, 'server');
      } finally {
        await stopClient(c);
      }
    });

    it('answers service-unavailable to an iq nobody handles', async () => {
      const c = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret' });
      try {
        await assert.rejects(
          c.iqCaller.get(xml('query', { xmlns: 'urn:example:nothing' }), 'localhost', 5_000),
          (err: Error & { condition?: string }) => err.condition === 'service-unavailable',
        );
      } finally {
        await stopClient(c);
      }
    });
  });
});
