// End to end with slixmpp's own XEP-0280 and XEP-0352 plugins (Debian python3-slixmpp): a phone-like client enables
// carbons and goes inactive; a presence update from the account's desk client is held, a chat to the account reaches
// the phone at once as a received carbon (the held presence first, delayed), and a post_msg alert comes as a sent one.
// CI must run: apt-get install -y python3-slixmpp

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PYTHON, pythonModule, requires } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { rawLogin, withTimeout, type RawClient } from '../host/c2s/helpers.js';
import { basic, request } from '../post_msg/helpers/http.js';

const PHONE = fileURLToPath(new URL('./slixmpp_carbons.py', import.meta.url));

type Line = Record<string, unknown> & { event: string };

/** The phone's JSON lines as they come; `until` resolves with the first line matching. */
class Output {
  readonly lines: Line[] = [];
  stderr = '';
  private pending = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.pending += d.toString();
      const parts = this.pending.split('\n');
      this.pending = parts.pop()!;
      for (const p of parts) if (p.trim()) this.lines.push(JSON.parse(p) as Line);
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code) => {
      resolve(code);
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  async until(match: (l: Line) => boolean, what: string, ms = 20_000): Promise<Line> {
    let isExited = false;
    void this.exited.then(() => (isExited = true));
    return withTimeout((async () => {
      for (;;) {
        const found = this.lines.find(match);
        if (found) return found;
        if (isExited) throw new Error(`slixmpp exited before ${what}; lines: ${JSON.stringify(this.lines)} stderr: ${this.stderr.slice(-2000)}`);
        await new Promise<void>((r) => this.waiters.push(r));
      }
    })(), `${what}; lines so far: ${JSON.stringify(this.lines)}; stderr: ${this.stderr.slice(-1500)}`, ms);
  }
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('carbons and csi with slixmpp', async () => {
  const skip = requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0280, slixmpp.plugins.xep_0352')]);

  let ts: TestServer;
  let desk: RawClient;
  let bob: RawClient;
  let phone: ChildProcess | undefined;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({
      config: { modules_enabled: ['post_msg', 'carbons', 'csi_simple'] },
      users: [['alice@localhost', 'alice-secret'], ['bob@localhost', 'bob-secret']],
    });
    ({ raw: desk } = await rawLogin(ts.c2sPort, 'alice', 'alice-secret', 'desk'));
    desk.send('<presence><priority>5</priority></presence>');
    ({ raw: bob } = await rawLogin(ts.c2sPort, 'bob', 'bob-secret', 'x'));
    bob.send('<presence/>');
  });

  after(async () => {
    phone?.kill('SIGKILL');
    desk?.close();
    bob?.close();
    await ts?.stop();
  });

  it('holds presence for the inactive phone, sends chats at once as carbons, and copies a post_msg alert as sent', { skip, timeout: 60_000 }, async () => {
    phone = spawn(PYTHON, [PHONE, '--jid', 'alice@localhost/phone', '--password', 'alice-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert, '--timeout', '30'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    phone.stdin!.end();
    const out = new Output(phone);
    const ready = await out.until((l) => l.event === 'ready', 'slixmpp to come online');
    assert.equal(ready.jid, 'alice@localhost/phone');
    assert.equal(ready.csi, true, 'slixmpp saw the csi stream feature');
    await desk.waitFor(/<presence [^>]*from="alice@localhost\/phone"/, "the phone's presence at the desk");
    // The phone's <inactive/> follows its presence on the same stream; give the server a moment to read it.
    await pause(300);

    desk.send('<presence><priority>5</priority><status>in a meeting</status></presence>');
    await pause(500);
    assert.ok(!out.lines.some((l) => l.event === 'presence' && l.status === 'in a meeting'), 'the presence update is held');

    bob.send("<message to='alice@localhost' type='chat' id='e1'><body>lunch?</body></message>");
    await desk.waitFor(/lunch\?/, 'the chat at the desk');
    const received = await out.until((l) => l.event === 'carbon_received', 'the received carbon');
    assert.deepEqual({ from: received.from, to: received.to, body: received.body }, { from: 'bob@localhost/x', to: 'alice@localhost', body: 'lunch?' });
    const held = out.lines.findIndex((l) => l.event === 'presence' && l.status === 'in a meeting');
    assert.ok(held >= 0 && held < out.lines.indexOf(received), `the held presence comes first: ${JSON.stringify(out.lines)}`);
    assert.equal(out.lines[held]!.delayed, true);

    const res = await request(`${ts.httpUrl}/msg/bob`, { headers: { Authorization: basic('alice@localhost', 'alice-secret'), 'Content-Type': 'text/plain' }, body: 'backup failed on db1' });
    assert.equal(res.status, 201, res.text);
    const sent = await out.until((l) => l.event === 'carbon_sent', 'the sent carbon of the alert');
    assert.deepEqual({ from: sent.from, to: sent.to, body: sent.body }, { from: 'alice@localhost', to: 'bob@localhost', body: 'backup failed on db1' });
    assert.equal(await out.exited, 0, out.stderr.slice(-2000));
    assert.doesNotMatch(ts.logText(), /unsupported-stanza-type/);
  });
});
