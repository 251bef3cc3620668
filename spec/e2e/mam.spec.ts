// End to end: slixmpp's XEP-0313 plugin (Debian python3-slixmpp) fetches an archive that post_msg filled over HTTP,
// paging with XEP-0059 forward and backward and filtering by `with`, against the real server on ephemeral ports.
// CI must run: apt-get install -y python3-slixmpp

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { pythonModule, requires, runPythonScript } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { basic, request } from '../post_msg/helpers/http.js';

const FETCHER = fileURLToPath(new URL('./slixmpp_mam.py', import.meta.url));

interface Line {
  event: string;
  bodies?: string[];
  ids?: string[];
  vars?: string[];
}

const runFetcher = (args: string[], ms: number) => runPythonScript<Line>(FETCHER, args, ms);

describe('mam with slixmpp (XEP-0313, XEP-0059)', async () => {
  const skip = requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0313')]);
  let ts: TestServer;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({
      config: { modules_enabled: ['post_msg', 'mam'] },
      users: [
        ['monitor@localhost', 'monitor-secret'],
        ['backup@localhost', 'backup-secret'],
        ['reader@localhost', 'reader-secret'],
      ],
    });
  });

  after(async () => {
    await ts?.stop();
  });

  it('pages through what post_msg sent, both ways, and filters by sender', { skip, timeout: 90_000 }, async () => {
    const expected: string[] = [];
    for (let i = 1; i <= 25; i++) {
      const [user, password] = i % 5 === 0 ? ['backup@localhost', 'backup-secret'] : ['monitor@localhost', 'monitor-secret'];
      const body = `alert ${i}`;
      const res = await request(`${ts.httpUrl}/msg/reader`, { headers: { Authorization: basic(user, password), 'Content-Type': 'text/plain' }, body });
      assert.equal(res.status, 201, res.text);
      expected.push(body);
    }
    const run = await runFetcher(
      ['--jid', 'reader@localhost/slix', '--password', 'reader-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert, '--max', '10', '--with', 'backup@localhost', '--timeout', '60'],
      80_000,
    );
    const by = (event: string): Line | undefined => run.lines.find((l) => l.event === event);
    const context = `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr.slice(-3000)}`;
    assert.equal(run.code, 0, context);
    assert.deepEqual(by('fields')?.vars, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids'], context);
    assert.deepEqual(by('forward')?.bodies, expected, context);
    assert.equal(new Set(by('forward')?.ids).size, 25, 'every item has its own id');
    assert.deepEqual(by('backward')?.bodies, [...expected].reverse(), context);
    assert.deepEqual(by('with')?.bodies, ['alert 5', 'alert 10', 'alert 15', 'alert 20', 'alert 25'], context);
  });
});
