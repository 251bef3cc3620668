// c2s sessions run every stanza through the host's session filters (Prosody util/filters): incoming after parsing
// and before routing, outgoing before serialising; a filter may replace a stanza or drop it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from './helpers.js';

describe('c2s session filters', () => {
  let ts: TestServer;
  let alice: RawClient;
  let bob: RawClient;

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']] });
    ({ raw: alice } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'a'));
    ({ raw: bob } = await rawLogin(ts.c2sPort, 'bob', 'bob-pw', 'b'));
  });

  after(async () => {
    alice?.close();
    bob?.close();
    await ts?.stop();
  });

  it('drops or rewrites incoming stanzas and marks outgoing ones, until the module that added them unloads', async () => {
    const api = ts.server.modules.apiOf('localhost', 'ping')!;
    const sessionsSeen = new Set<string>();
    const outToAlice: string[] = [];
    api.filter('stanzas/in', (stanza, session) => {
      sessionsSeen.add(session.full);
      const body = stanza.getChildText('body');
      if (body === 'drop me') return undefined;
      if (body === 'rewrite me') return xml('message', { ...stanza.attrs }, xml('body', {}, 'rewritten'));
      return stanza;
    });
    api.filter('stanzas/out', (stanza, session) => {
      if (session.bare === 'alice@localhost') outToAlice.push(`${stanza.name}:${stanza.attrs.id}`);
      if (stanza.name !== 'message' || session.bare !== 'bob@localhost') return stanza;
      return xml('message', { ...stanza.attrs }, ...stanza.children, xml('filtered', { xmlns: 'urn:example:f' }));
    });

    alice.send("<message to='bob@localhost/b' type='chat' id='m1'><body>drop me</body></message>");
    alice.send("<message to='bob@localhost/b' type='chat' id='m2'><body>rewrite me</body></message>");
    await bob.waitFor(/<message [^>]*id="m2"[^>]*><body>rewritten<\/body><filtered xmlns="urn:example:f"\/><\/message>/, 'the rewritten, marked message');
    assert.doesNotMatch(bob.text, /drop me/);
    assert.ok(sessionsSeen.has('alice@localhost/a'));

    // Outgoing filters see every stanza a client is sent, iq results too; alice's are not marked.
    alice.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/<iq type="result" id="p1"[^>]*\/>/, 'the ping result');
    assert.deepEqual(outToAlice, ['iq:p1']);

    await ts.server.modules.unload('localhost', 'ping');
    alice.send("<message to='bob@localhost/b' type='chat' id='m3'><body>drop me</body></message>");
    await bob.waitFor(/<message [^>]*id="m3"[^>]*><body>drop me<\/body><\/message>/, 'an unfiltered message after unload');
  });

  it('drops a stanza whose filter throws and logs the module, keeping the stream', async () => {
    await ts.server.modules.load('localhost', 'ping');
    const api = ts.server.modules.apiOf('localhost', 'ping')!;
    api.filter('stanzas/out', (stanza) => {
      if (stanza.getChildText('body') === 'crash') throw new Error('filter bug');
      return stanza;
    });
    alice.send("<message to='bob@localhost/b' type='chat' id='c1'><body>crash</body></message>");
    alice.send("<message to='bob@localhost/b' type='chat' id='c2'><body>fine</body></message>");
    await bob.waitFor(/<message [^>]*id="c2"/, 'the next message');
    assert.doesNotMatch(bob.text, /crash/);
    assert.ok(ts.logLines().some((l) => l.module === 'ping' && /session filter failed/.test(String(l.msg))));
    await ts.server.modules.unload('localhost', 'ping');
  });
});
