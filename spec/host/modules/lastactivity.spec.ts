// Last Activity of accounts (XEP-0012 §4): seconds since the last unavailable presence and its status, for the
// account itself and contacts with a subscription from/both only; kept in storage and deleted with the account.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lastQuery } from '../../../lib/host/modules/lastactivity.js';
import { setRoster, startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogins } from '../c2s/helpers.js';

describe('lastactivity module', () => {
  describe('lastQuery()', () => {
    it('says 0 while online or never seen, else whole seconds and the status', () => {
      assert.equal(lastQuery(undefined, 5000, false).toString(), '<query xmlns="jabber:iq:last" seconds="0"/>');
      assert.equal(lastQuery({ stamp: 0, status: 'away' }, 5999, true).attrs.seconds, '0');
      assert.equal(lastQuery({ stamp: 0, status: 'away' }, 5999, false).toString(), '<query xmlns="jabber:iq:last" seconds="5">away</query>');
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const { login, closeAll } = rawLogins(() => ts.c2sPort);

    before(async () => {
      ts = await startTestServer({
        config: { modules_enabled: ['lastactivity'] },
        users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['carol@localhost', 'carol-pw'], ['dave@localhost', 'dave-pw']],
      });
      // alice may see bob's presence (from), carol only asked for it (to: bob sees hers, not the reverse).
      await setRoster(ts, 'bob@localhost', { 'alice@localhost': 'from', 'carol@localhost': 'to' });
    });
    after(async () => {
      closeAll();
      await ts?.stop();
    });

    it('tells a subscribed contact how long ago the account went offline and with which status', async () => {
      const bob = await login('bob', 'phone');
      bob.send("<presence/>");
      await bob.waitFor(/<presence/);
      bob.send("<presence type='unavailable'><status>Gone fishing</status></presence>");
      await new Promise((r) => setTimeout(r, 1100));
      const alice = await login('alice', 'desk');
      alice.send("<iq type='get' id='l1' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>");
      const m = await alice.waitFor(/<iq type="result" id="l1"[^>]*><query xmlns="jabber:iq:last" seconds="(\d+)">Gone fishing<\/query><\/iq>/);
      assert.ok(Number(m[1]) >= 1);
    });

    it('refuses everyone else with forbidden, an unknown account alike', async () => {
      const carol = await login('carol', 'desk');
      carol.send("<iq type='get' id='l2' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>");
      await carol.waitFor(/<iq [^>]*id="l2"[^>]*>.*?<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/s);
      carol.send("<iq type='get' id='l3' to='nobody@localhost'><query xmlns='jabber:iq:last'/></iq>");
      await carol.waitFor(/<iq [^>]*id="l3"[^>]*>.*?<forbidden /s);
    });

    it('answers the account itself, and 0 while it is online', async () => {
      const bob = await login('bob', 'laptop');
      bob.send("<iq type='get' id='l4'><query xmlns='jabber:iq:last'/></iq>");
      await bob.waitFor(/<iq type="result" id="l4"[^>]*><query xmlns="jabber:iq:last" seconds="\d+">Gone fishing</);
      bob.send('<presence/>');
      await bob.waitFor(/<presence/);
      const alice = await login('alice', 'tablet');
      alice.send("<iq type='get' id='l5' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>");
      await alice.waitFor(/<iq type="result" id="l5"[^>]*><query xmlns="jabber:iq:last" seconds="0"\/>/);
    });

    it('records a stream that closes without unavailable, and forgets the account when it is deleted', async () => {
      const dave = await login('dave', 'one');
      dave.send('<presence/>');
      await dave.waitFor(/<presence/);
      dave.close();
      const store = ts.server.modules.apiOf('localhost', 'lastactivity')!.openStore('lastactivity');
      for (let i = 0; i < 100 && !(await store.get('dave@localhost')); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(await store.get('dave@localhost'), 'recorded at stream close');
      await ts.server.users.delete('dave@localhost');
      assert.equal(await store.get('dave@localhost'), undefined);
    });
  });
});
