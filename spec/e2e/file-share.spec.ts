// End to end with slixmpp's XEP-0363 plugin (Debian's python3-slixmpp and python3-aiohttp, spec/e2e/slixmpp_upload.py):
// it finds the http_file_share component through disco, reads the size limit, uploads a picture over the server's
// HTTP, downloads it back, and refuses a file over the limit itself, as Conversations does.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { pythonModule, requires, runPythonScript } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';

const UPLOADER = fileURLToPath(new URL('./slixmpp_upload.py', import.meta.url));

interface Line {
  event: string;
  [key: string]: unknown;
}

const runUploader = (args: string[], ms: number) => runPythonScript<Line>(UPLOADER, args, ms);

describe('http_file_share with slixmpp (XEP-0363)', async () => {
  const skip = requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0363'), pythonModule('python3-aiohttp', 'aiohttp')]);
  let ts: TestServer;

  before(async () => {
    if (skip) return;
    ts = await startTestServer({
      config: { modules_enabled: [], components: { 'upload.localhost': { module: 'http_file_share', size_limit: 200_000 } } },
      users: [['photographer@localhost', 'photo-secret']],
    });
  });

  after(async () => {
    await ts?.stop();
  });

  it('finds the service, uploads a picture, gets it back, and knows the limit', { skip, timeout: 60_000 }, async () => {
    const args = ['--jid', 'photographer@localhost', '--password', 'photo-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert];
    const run = await runUploader([...args, '--name', 'sunset photo.jpg', '--size', '150000', '--type', 'image/jpeg'], 50_000);
    const report = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr.slice(-3000)}`;
    assert.equal(run.code, 0, report);
    const byEvent = new Map(run.lines.map((l) => [l.event, l]));
    const uploaded = byEvent.get('uploaded');
    assert.ok(uploaded, report);
    assert.equal(uploaded.service, 'upload.localhost');
    assert.equal(uploaded.max_file_size, 200_000);
    const port = new URL(ts.httpUrl).port;
    assert.match(String(uploaded.url), new RegExp(`^http://upload\\.localhost:${port}/file_share/[\\w-]{24}/sunset%20photo\\.jpg$`));
    assert.deepEqual(byEvent.get('downloaded'), {
      event: 'downloaded',
      status: 200,
      same: true,
      content_type: 'image/jpeg',
      disposition: `inline; filename="sunset photo.jpg"; filename*=UTF-8''sunset%20photo.jpg`,
      nosniff: true,
    });
    assert.equal(byEvent.get('too_big')?.limit, 200_000, report);
    assert.ok(byEvent.has('done'), report);
  });
});
