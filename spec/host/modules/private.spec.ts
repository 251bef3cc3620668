// Private XML Storage (XEP-0049): per account and namespace, reserved namespaces refused, a size limit, the
// account's alone, deleted with the account.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, xml } from '../../../lib/host/api.js';
import { fragmentOf } from '../../../lib/host/modules/private.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogins } from '../c2s/helpers.js';

const refusesWith = (condition: string) => (err: unknown) => err instanceof StanzaError && err.condition === condition;
const q = (...children: ReturnType<typeof xml>[]) => xml('query', { xmlns: 'jabber:iq:private' }, ...children);

describe('private module', () => {
  describe('fragmentOf()', () => {
    it('keys a fragment by name and namespace', () => {
      assert.equal(fragmentOf(q(xml('storage', { xmlns: 'storage:bookmarks' }))).key, 'storage:storage:bookmarks');
    });
    it('refuses no element, two elements, and the reserved namespaces', () => {
      assert.throws(() => fragmentOf(q()), refusesWith('bad-request'));
      assert.throws(() => fragmentOf(q(xml('a', { xmlns: 'x' }), xml('b', { xmlns: 'y' }))), refusesWith('bad-request'));
      for (const ns of ['jabber:client', 'jabber:server', 'jabber:iq:private']) assert.throws(() => fragmentOf(q(xml('x', { xmlns: ns }))), refusesWith('not-acceptable'));
      // No xmlns: the child inherits jabber:iq:private.
      assert.throws(() => fragmentOf(q(xml('x'))), refusesWith('not-acceptable'));
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const { login, closeAll } = rawLogins(() => ts.c2sPort);

    before(async () => {
      ts = await startTestServer({
        config: { modules_enabled: ['private'], private: { size_limit: 4096 } },
        users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']],
      });
    });
    after(async () => {
      closeAll();
      await ts?.stop();
    });

    it('stores, returns and deletes a fragment per namespace', async () => {
      const a = await login('alice');
      a.send("<iq type='get' id='g0'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
      await a.waitFor(/<iq type="result" id="g0"[^>]*><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"\/><\/query><\/iq>/, 'empty element back');
      a.send("<iq type='set' id='s1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' autojoin='true'><nick>A &amp; B</nick></conference></storage></query></iq>");
      await a.waitFor(/<iq type="result" id="s1"/);
      a.send("<iq type='set' id='s2'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'>dark</prefs></query></iq>");
      await a.waitFor(/<iq type="result" id="s2"/);
      a.send("<iq type='get' id='g1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
      await a.waitFor(/<iq type="result" id="g1"[^>]*><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"><conference jid="room@conference.localhost" autojoin="true"><nick>A &amp; B<\/nick><\/conference><\/storage><\/query>/);
      a.send("<iq type='set' id='s3'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
      await a.waitFor(/<iq type="result" id="s3"/);
      a.send("<iq type='get' id='g2'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
      await a.waitFor(/<iq type="result" id="g2"[^>]*><query xmlns="jabber:iq:private"><prefs xmlns="urn:example:prefs"\/><\/query>/, 'deleted by an empty set');
    });

    it('refuses reserved namespaces, another account\'s data and more than size_limit, and goes on', async () => {
      const b = await login('bob');
      b.send("<iq type='set' id='r1'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'>x</x></query></iq>");
      await b.waitFor(/<iq [^>]*id="r1"[^>]*>.*?<not-acceptable /s);
      b.send("<iq type='get' id='r2' to='alice@localhost'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
      await b.waitFor(/<iq [^>]*id="r2"[^>]*>.*?<forbidden /s);
      b.send(`<iq type='set' id='r3'><query xmlns='jabber:iq:private'><big xmlns='urn:example:big'>${'x'.repeat(5000)}</big></query></iq>`);
      await b.waitFor(/<iq [^>]*id="r3"[^>]*>.*?<not-acceptable .*?at most 4096 bytes/s);
      // Two fragments under the limit each, over it together.
      for (const n of [1, 2]) b.send(`<iq type='set' id='q${n}'><query xmlns='jabber:iq:private'><p${n} xmlns='urn:example:${n}'>${'y'.repeat(2500)}</p${n}></query></iq>`);
      await b.waitFor(/<iq type="result" id="q1"/);
      await b.waitFor(/<iq [^>]*id="q2"[^>]*>.*?<not-acceptable /s);
      b.send("<iq type='get' id='r4'><query xmlns='jabber:iq:private'><p1 xmlns='urn:example:1'/></query></iq>");
      await b.waitFor(/<iq type="result" id="r4"[^>]*><query xmlns="jabber:iq:private"><p1 xmlns="urn:example:1">y{2500}<\/p1>/);
    });

    it('deletes the account\'s data with the account', async () => {
      const store = ts.server.modules.apiOf('localhost', 'private')!.openStore('private');
      assert.ok(await store.get('bob@localhost'));
      await ts.server.users.delete('bob@localhost');
      assert.equal(await store.get('bob@localhost'), undefined);
    });
  });
});
