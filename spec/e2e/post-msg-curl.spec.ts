// Every curl example of README.md, run as written (only the URL's host and port changed)
// against the real server, with an @xmpp/client receiver checking what arrives.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';

const README = join(import.meta.dirname, '../../README.md');

/** Every `curl …` line inside a ```sh block of the README. */
function readmeCurlLines(): string[] {
  const text = readFileSync(README, 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n')).filter((l) => l.startsWith('curl '));
}

function runCurl(line: string, httpUrl: string): Promise<{ status: number; body: string }> {
  const command = `${line.replaceAll('http://localhost:5280', httpUrl)} -sS -w '\\n%{http_code}'`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', command], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${command}: ${err.message} ${stderr}`));
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

describe('post_msg README curl examples', () => {
  let ts: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  const lines = readmeCurlLines();

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({ users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret']] });
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-pw' });
    await goOnline(alice, 'alice');
  });

  after(async () => {
    if (alice) await stopClient(alice);
    await ts?.stop();
    restoreTls?.();
  });

  it('the README has a curl example per payload format', () => {
    assert.ok(lines.length >= 4, `${lines.length} curl lines`);
    assert.ok(lines.some((l) => l.includes("'Content-Type: text/plain'")));
    assert.ok(lines.some((l) => l.includes("'Content-Type: application/json'")));
    assert.ok(lines.some((l) => l.includes('--data-urlencode')));
    assert.ok(lines.some((l) => /-d '[^=']*'$/.test(l)), 'the short curl -d line');
  });

  it('each example answers 201 and alice receives the message from bob', async () => {
    for (const line of lines) {
      const received = nextStanza(alice, (el) => el.is('message'), `the message of: ${line}`);
      const res = await runCurl(line, ts.httpUrl);
      assert.equal(res.status, 201, `${line}\n${res.body}`);
      const answer = JSON.parse(res.body) as { id: string; to: string; outcome: string };
      assert.equal(answer.outcome, 'delivered');
      const msg = await received;
      assert.equal(msg.attrs.id, answer.id);
      assert.equal(msg.attrs.from, 'bob@localhost');
      assert.ok((msg.getChildText('body') ?? '').length > 0, line);
    }
  });

  it('the first example sends exactly the README text', async () => {
    const received = nextStanza(alice, (el) => el.is('message'), 'the first example');
    await runCurl(lines.find((l) => l.includes('Backup on db1 failed'))!, ts.httpUrl);
    assert.equal((await received).getChildText('body'), 'Backup on db1 failed');
  });

  it('curl without credentials gets 401 with the challenge', async () => {
    const res = await runCurl(`curl http://localhost:5280/msg/alice -d 'x' -D -`, ts.httpUrl);
    assert.equal(res.status, 401);
    assert.match(res.body, /WWW-Authenticate: Basic realm="localhost\/post_msg", charset="UTF-8"/i);
  });
});
