// End to end with slixmpp's xep_0191 plugin (Debian's python3-slixmpp): an account blocks another (XEP-0191), whose
// messages then go undelivered with the §3.5 error, and whose post_msg requests are answered 403; unblocked, both arrive.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PYTHON, requires, slixmpp } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { basic, request } from '../post_msg/helpers/http.js';

const SCRIPT = fileURLToPath(new URL('./slixmpp_blocking.py', import.meta.url));

type Event = Record<string, unknown>;

describe('blocking with slixmpp (XEP-0191)', async () => {
  const skip = requires([slixmpp()]);
  let ts: TestServer;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({
      config: { modules_enabled: ['post_msg', 'blocklist'] },
      users: [['romeo@localhost', 'romeo-secret'], ['juliet@localhost', 'juliet-secret']],
    });
  });

  after(async () => {
    await ts?.stop();
  });

  const postAsJuliet = (body: string) =>
    request(`${ts.httpUrl}/msg/romeo@localhost`, { headers: { Authorization: basic('juliet@localhost', 'juliet-secret'), 'Content-Type': 'text/plain' }, body });

  it('a blocked account is refused, by XMPP and by post_msg, until it is unblocked', { skip, timeout: 90_000 }, async () => {
    const child = spawn(PYTHON, [SCRIPT, '--blocker', 'romeo@localhost:romeo-secret', '--other', 'juliet@localhost:juliet-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const events: Event[] = [];
    const posts: Array<{ phase: unknown; status: number; text: string }> = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 75_000);
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    for await (const line of createInterface({ input: child.stdout })) {
      if (!line.startsWith('{')) continue;
      const event = JSON.parse(line) as Event;
      events.push(event);
      if (event.event !== 'wait') continue;
      // The python side pauses here: post while juliet is blocked, then once she is not.
      const res = await postAsJuliet(`post_msg ${String(event.phase)}`);
      posts.push({ phase: event.phase, status: res.status, text: res.text });
      child.stdin.write('go\n');
    }
    const code = await closed.finally(() => clearTimeout(timer));
    const context = `events: ${JSON.stringify(events, null, 1)}\nposts: ${JSON.stringify(posts)}\nstderr: ${stderr.slice(-2000)}`;
    assert.equal(code, 0, context);

    assert.deepEqual(events.find((e) => e.event === 'blocked')?.items, ['juliet@localhost'], context);
    assert.deepEqual(events.find((e) => e.event === 'unblocked')?.items, [], context);
    const received = events.filter((e) => e.event === 'received');
    // XEP-0191 §3.5: the sender of a message to an account that blocks it gets <service-unavailable/>.
    const bounce = received.filter((e) => e.to === 'juliet@localhost');
    assert.deepEqual(bounce.map((e) => [e.type, e.condition, e.from]), [['error', 'service-unavailable', 'romeo@localhost']], context);
    // Romeo got only what was sent after the unblock, each once.
    const atRomeo = received.filter((e) => e.to === 'romeo@localhost');
    assert.deepEqual(atRomeo.map((e) => [String(e.from).split('/')[0], e.body]), [['juliet@localhost', 'after unblock'], ['juliet@localhost', 'post_msg unblocked']], context);

    assert.deepEqual(posts.map((p) => [p.phase, p.status]), [['blocked', 403], ['unblocked', 201]], context);
    assert.match(posts[0]!.text, /service-unavailable/, context);
  });
});
