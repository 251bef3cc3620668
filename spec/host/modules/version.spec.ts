// Software Version (XEP-0092) and Entity Time (XEP-0202) answered by the server, on the wire; hide_os_type.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { packageVersion } from '../../../lib/host/modules/version.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, type RawClient } from '../c2s/helpers.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('version module', () => {
  it('reads the version from the nearest package.json', () => {
    assert.equal(packageVersion(), pkg.version);
  });

  for (const hide of [false, true]) {
    describe(hide ? 'with hide_os_type' : 'by default', () => {
      let ts: TestServer;
      let c: RawClient;
      before(async () => {
        ts = await startTestServer({
          config: { modules_enabled: ['version'], ...(hide ? { version: { hide_os_type: true } } : {}) },
          users: [['alice@localhost', 'alice-pw']],
        });
        c = (await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'one')).raw;
      });
      after(async () => {
        c?.close();
        await ts?.stop();
      });

      it(`answers name xmppd and the package version${hide ? ', no os' : ' and the os'}`, async () => {
        c.send("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        const m = await c.waitFor(/<iq type="result" id="v1"[^>]*><query xmlns="jabber:iq:version">(.*?)<\/query><\/iq>/);
        assert.match(m[1]!, new RegExp(`^<name>xmppd</name><version>${pkg.version.replace(/\./g, '\\.')}</version>`));
        if (hide) assert.doesNotMatch(m[1]!, /<os>/);
        else assert.match(m[1]!, /<os>[^<]+<\/os>$/);
      });

      it('lists jabber:iq:version in the server\'s disco features', async () => {
        c.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        await c.waitFor(/<iq type="result" id="d1".*<feature var="jabber:iq:version"\/>/s);
      });
    });
  }

  it('refuses a hide_os_type that is not a boolean before starting', async () => {
    await assert.rejects(startTestServer({ config: { modules_enabled: ['version'], version: { hide_os_type: 'yes' } } }), /hide_os_type/);
  });
});
