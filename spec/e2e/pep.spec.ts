// End to end: slixmpp's PEP plugins (Debian python3-slixmpp): a listener announcing XEP-0118 tune +notify through
// XEP-0115 caps gets the tune its contact publishes; the publisher's XEP-0048 bookmarks (xep_0048, in private XML and
// in the legacy PEP node) are read back and land in the XEP-0402 node.
// CI must run: apt-get install -y python3-slixmpp

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PYTHON, pythonModule, requires } from '../helpers/requires.js';
import { setRoster, startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { rawLogin, withTimeout } from '../host/c2s/helpers.js';

const SCRIPT = fileURLToPath(new URL('./slixmpp_pep.py', import.meta.url));

interface Line {
  event: string;
  from?: string;
  title?: string;
  method?: string;
  jids?: string[];
}

/** Run the script; `onLine` sees each JSON line as it comes. Killed after `ms`. */
function run(args: string[], ms: number, onLine: (l: Line) => void = () => undefined): { child: ChildProcess; done: Promise<{ code: number | null; lines: Line[]; context: string }> } {
  const child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const lines: Line[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    const parts = stdout.split('\n');
    stdout = parts.pop()!;
    for (const p of parts.filter((l) => l.startsWith('{'))) {
      const line = JSON.parse(p) as Line;
      lines.push(line);
      onLine(line);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const done = new Promise<{ code: number | null; lines: Line[]; context: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines, context: `exit ${code}\nlines: ${JSON.stringify(lines)}\nstderr: ${stderr.slice(-3000)}` });
    }),
  );
  return { child, done };
}

describe('pep and bookmarks with slixmpp (XEP-0163, XEP-0115, XEP-0048)', async () => {
  const skip = requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0163, slixmpp.plugins.xep_0048')]);
  let ts: TestServer;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({
      config: { modules_enabled: ['pep', 'bookmarks', 'private'] },
      users: [['singer@localhost', 'singer-secret'], ['fan@localhost', 'fan-secret']],
    });
    await setRoster(ts, 'singer@localhost', { 'fan@localhost': 'both' });
    await setRoster(ts, 'fan@localhost', { 'singer@localhost': 'both' });
  });
  after(async () => {
    await ts?.stop();
  });

  it('notifies a +notify contact of a tune, and keeps XEP-0048 bookmarks in the XEP-0402 node', { skip, timeout: 90_000 }, async () => {
    const common = ['--port', String(ts.c2sPort), '--ca', testTls().cert, '--timeout', '60'];
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const listener = run(['--jid', 'fan@localhost/slix', '--password', 'fan-secret', '--role', 'listener', ...common], 80_000, (l) => l.event === 'ready' && markReady());
    await withTimeout(Promise.race([ready, listener.done.then((r) => Promise.reject(new Error(r.context)))]), 'the listener to be ready', 30_000);
    const publisher = await run(['--jid', 'singer@localhost/slix', '--password', 'singer-secret', '--role', 'publisher', '--title', 'Blue Moon', ...common], 80_000).done;
    assert.equal(publisher.code, 0, publisher.context);
    const bookmarks = publisher.lines.filter((l) => l.event === 'bookmarks');
    assert.deepEqual(bookmarks.map((l) => [l.method, l.jids]), [
      ['xep_0049', ['xep0049@conference.localhost']],
      ['xep_0223', ['xep0223@conference.localhost']],
    ], publisher.context);
    const heard = await listener.done;
    assert.equal(heard.code, 0, heard.context);
    assert.deepEqual(heard.lines.find((l) => l.event === 'tune'), { event: 'tune', from: 'singer@localhost', title: 'Blue Moon' }, heard.context);

    // The last list written (through the legacy PEP node) is what the XEP-0402 node holds.
    const { raw } = await rawLogin(ts.c2sPort, 'singer', 'singer-secret', 'check');
    raw.send("<iq type='get' id='b1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>");
    const m = await raw.waitFor(/<iq type="result" id="b1"[^>]*>(.*?)<\/iq>/);
    raw.close();
    assert.match(m[1]!, /<item id="xep0223@conference.localhost"><conference xmlns="urn:xmpp:bookmarks:1" name="xep_0223" autojoin="true"><nick>slix<\/nick><\/conference><\/item>/);
    assert.doesNotMatch(m[1]!, /xep0049@/);
  });
});
