// Presence (RFC 6121 §4): priority parsing, availability in the session registry, broadcast to the
// account's own resources, and the unavailable presence a disconnect turns into.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '../../../lib/host/api.js';
import { parsePriority } from '../../../lib/host/modules/presence.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogin, withTimeout, type RawClient } from '../c2s/helpers.js';

describe('presence module', () => {
  describe('parsePriority()', () => {
    const p = (text?: string) => parsePriority(text === undefined ? xml('presence') : xml('presence', {}, xml('priority', {}, text)));

    it('reads integers from -128 to 127', () => {
      assert.equal(p('5'), 5);
      assert.equal(p('-1'), -1);
      assert.equal(p(' 127 '), 127);
      assert.equal(p('-128'), -128);
    });

    it('takes 0 for a missing, out of range or non-integer priority (RFC 6121 §4.7.2.3)', () => {
      for (const bad of [undefined, '', '128', '-129', '1.5', 'high', '1e2']) assert.equal(p(bad), 0, String(bad));
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const clients: RawClient[] = [];
    const until = async (check: () => boolean, what: string) =>
      withTimeout(
        (async () => {
          while (!check()) await new Promise((r) => setTimeout(r, 5));
        })(),
        what,
      );

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: [] }, users: [['alice@localhost', 'alice-pw']] });
    });

    after(async () => {
      for (const c of clients) c.close();
      await ts?.stop();
    });

    it('makes a resource available with its priority, tells the other resources, and unavailable undoes it', async () => {
      const a = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'desk');
      const b = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'phone');
      clients.push(a.raw, b.raw);
      const desk = () => ts.server.sessions.byFull('alice@localhost/desk');
      assert.equal(desk()?.isAvailable, false, 'bound but not yet available');

      b.raw.send('<presence/>');
      await b.raw.waitFor(/<presence from="alice@localhost\/phone" to="alice@localhost\/phone"\/>/, 'own presence echoed (§4.2.2)');

      a.raw.send('<presence><priority>7</priority><show>dnd</show></presence>');
      await until(() => desk()?.isAvailable === true, 'desk to be available');
      assert.equal(desk()?.priority, 7);
      // The phone learns of the desk, and the desk of the phone that was already online.
      await b.raw.waitFor(/<presence from="alice@localhost\/desk" to="alice@localhost\/phone"><priority>7<\/priority><show>dnd<\/show><\/presence>/, 'broadcast to the phone');
      await a.raw.waitFor(/<presence from="alice@localhost\/phone" to="alice@localhost\/desk"\/>/, 'the phone presence to the desk');

      a.raw.send("<presence type='unavailable'/>");
      await until(() => desk()?.isAvailable === false, 'desk to be unavailable');
      await b.raw.waitFor(/<presence type="unavailable" from="alice@localhost\/desk"/, 'unavailable broadcast');

      // A disconnect of an available resource is an unavailable presence too (§4.5.1).
      a.raw.send('<presence/>');
      await until(() => desk()?.isAvailable === true, 'desk available again');
      a.raw.close();
      await until(() => desk() === undefined, 'desk to leave the registry');
      await b.raw.waitFor(/<presence type="unavailable" from="alice@localhost\/desk"/, 'unavailable after the disconnect');
    });
  });
});
