// End to end with slixmpp (Debian's python3-slixmpp): two clients subscribe to each other (RFC 6121 §3) with
// slixmpp's own roster handling, and each sees the other online. CI must run: apt-get install -y python3-slixmpp

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requires, runPythonScript, slixmpp } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';

const SCRIPT = fileURLToPath(new URL('./slixmpp_subscribe.py', import.meta.url));

describe('presence subscriptions with slixmpp', async () => {
  const skip = requires([slixmpp()]);
  let ts: TestServer;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({ config: { modules_enabled: [] }, users: [['romeo@localhost', 'romeo-secret'], ['juliet@localhost', 'juliet-secret']] });
  });

  after(async () => {
    await ts?.stop();
  });

  it('two slixmpp clients subscribe to each other and see each other online', { skip, timeout: 60_000 }, async () => {
    const args = ['--first', 'romeo@localhost:romeo-secret', '--second', 'juliet@localhost:juliet-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert, '--timeout', '30'];
    const { code, lines: events, stdout, stderr } = await runPythonScript<Record<string, unknown>>(SCRIPT, args, 45_000);
    const context = `stdout: ${stdout}\nstderr: ${stderr.slice(-2000)}`;
    assert.equal(code, 0, context);
    const online = events.filter((e) => e.event === 'online');
    assert.deepEqual(online.map((e) => e.jid).sort(), ['juliet@localhost', 'romeo@localhost'], context);
    assert.ok(online.every((e) => typeof e.sees === 'string' && /^(romeo|juliet)@localhost\/.+/.test(e.sees)), context);
    assert.deepEqual(events.find((e) => e.event === 'done')?.rosters, { 'romeo@localhost': 'both', 'juliet@localhost': 'both' }, context);
    // And the server agrees: both rosters say both.
    assert.match(ts.logText(), /authenticated/);
  });
});
