// Server uptime (XEP-0012 on the server): seconds since the server started.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';

describe('uptime module', () => {
  let ts: TestServer;
  let c: RawClient;
  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['uptime'] }, users: [['alice@localhost', 'alice-pw']] });
    c = (await rawLogin(ts.c2sPort, 'alice', 'alice-pw')).raw;
  });
  after(async () => {
    c?.close();
    await ts?.stop();
  });

  it('answers the seconds since start, growing', async () => {
    c.send("<iq type='get' id='u1' to='localhost'><query xmlns='jabber:iq:last'/></iq>");
    const first = Number((await c.waitFor(/<iq type="result" id="u1"[^>]*><query xmlns="jabber:iq:last" seconds="(\d+)"\/><\/iq>/))[1]);
    assert.ok(first >= 0 && first < 60);
    await new Promise((r) => setTimeout(r, 1100));
    c.send("<iq type='get' id='u2' to='localhost'><query xmlns='jabber:iq:last'/></iq>");
    const second = Number((await c.waitFor(/<iq type="result" id="u2"[^>]*><query xmlns="jabber:iq:last" seconds="(\d+)"\/>/))[1]);
    assert.ok(second >= first + 1, `${second} after ${first}`);
  });

  it('lists jabber:iq:last among the server\'s features', async () => {
    c.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    await c.waitFor(/<iq type="result" id="d1".*<feature var="jabber:iq:last"\/>/s);
  });
});
