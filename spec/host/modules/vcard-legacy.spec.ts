// vcard-temp (XEP-0054): set by the account, read by anyone at its bare JID, a size limit, deleted with the account.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogins } from '../c2s/helpers.js';

describe('vcard_legacy module', () => {
  let ts: TestServer;
  const { login, closeAll } = rawLogins(() => ts.c2sPort);

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: ['vcard_legacy'], vcard_legacy: { size_limit: 8192 } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw']],
    });
  });
  after(async () => {
    closeAll();
    await ts?.stop();
  });

  it('gives an empty vCard before one is set, then the account\'s own to anyone', async () => {
    const a = await login('alice');
    const b = await login('bob');
    b.send("<iq type='get' id='g0' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>");
    await b.waitFor(/<iq type="result" id="g0"[^>]*><vCard xmlns="vcard-temp"\/><\/iq>/);
    a.send("<iq type='set' id='s1'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard></iq>");
    await a.waitFor(/<iq type="result" id="s1"/);
    b.send("<iq type='get' id='g1' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>");
    await b.waitFor(/<iq type="result" id="g1"[^>]*><vCard xmlns="vcard-temp"><FN>Alice Liddell<\/FN><PHOTO><TYPE>image\/png<\/TYPE><BINVAL>iVBORw0KGgo=<\/BINVAL><\/PHOTO><\/vCard><\/iq>/);
    a.send("<iq type='get' id='g2'><vCard xmlns='vcard-temp'/></iq>");
    await a.waitFor(/<iq type="result" id="g2"[^>]*><vCard xmlns="vcard-temp"><FN>Alice Liddell/);
  });

  it('lets only the account set its vCard, refuses one over size_limit, and says service-unavailable for no such user', async () => {
    const b = await login('bob');
    b.send("<iq type='set' id='x1' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>");
    await b.waitFor(/<iq [^>]*id="x1"[^>]*>.*?<forbidden /s);
    b.send(`<iq type='set' id='x2'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>${'A'.repeat(10000)}</BINVAL></PHOTO></vCard></iq>`);
    await b.waitFor(/<iq [^>]*id="x2"[^>]*>.*?<not-acceptable .*?at most 8192 bytes/s);
    b.send("<iq type='get' id='x3' to='nobody@localhost'><vCard xmlns='vcard-temp'/></iq>");
    await b.waitFor(/<iq [^>]*id="x3"[^>]*>.*?<service-unavailable /s);
    b.send("<iq type='get' id='x4' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>");
    await b.waitFor(/<iq type="result" id="x4"[^>]*><vCard xmlns="vcard-temp"><FN>Alice Liddell/, 'unchanged');
  });

  it('deletes the vCard with the account', async () => {
    const store = ts.server.modules.apiOf('localhost', 'vcard_legacy')!.openStore('vcard');
    assert.ok(await store.get('alice@localhost'));
    await ts.server.users.delete('alice@localhost');
    assert.equal(await store.get('alice@localhost'), undefined);
  });
});
