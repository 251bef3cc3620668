// Entity Time (XEP-0202): the server's time in UTC with offset +00:00.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';

describe('time module', () => {
  let ts: TestServer;
  let c: RawClient;
  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['time'] }, users: [['alice@localhost', 'alice-pw']] });
    c = (await rawLogin(ts.c2sPort, 'alice', 'alice-pw')).raw;
  });
  after(async () => {
    c?.close();
    await ts?.stop();
  });

  it('answers tzo and utc within a few seconds of now', async () => {
    c.send("<iq type='get' id='t1' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
    const m = await c.waitFor(/<iq type="result" id="t1"[^>]*><time xmlns="urn:xmpp:time"><tzo>\+00:00<\/tzo><utc>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)<\/utc><\/time><\/iq>/);
    assert.ok(Math.abs(Date.parse(m[1]!) - Date.now()) < 5000);
  });

  it('is a server feature and not answered for an account', async () => {
    c.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    await c.waitFor(/<iq type="result" id="d1".*<feature var="urn:xmpp:time"\/>/s);
    c.send("<iq type='get' id='t2' to='nobody@localhost'><time xmlns='urn:xmpp:time'/></iq>");
    await c.waitFor(/<iq [^>]*id="t2"[^>]*>.*?<service-unavailable /s);
  });
});
