// End to end with clients people run, as Debian packages them: slixmpp (python3-slixmpp) receives a
// message that go-sendxmpp (PLAIN only) sends from another account, both over STARTTLS with the test CA.
// CI must run: apt-get install -y python3-slixmpp go-sendxmpp

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { program, PYTHON, requires, slixmpp } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { withTimeout } from '../host/c2s/helpers.js';

const GO_SENDXMPP = '/usr/bin/go-sendxmpp';
const RECEIVER = fileURLToPath(new URL('./slixmpp_receive.py', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program to its end, killing it after `ms` so nothing hangs. */
function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; ms: number }): Promise<Run> {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, opts.ms, opts.input);
}

function collect(child: ChildProcess, ms: number, input?: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(input ?? '');
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return done.finally(() => clearTimeout(timer));
}

describe('Debian XMPP clients', async () => {
  const skip = requires([program('go-sendxmpp', GO_SENDXMPP), slixmpp()]);

  let ts: TestServer;
  let home: string;

  before(async () => {
    if (skip) return;
    home = mkdtempSync(join(tmpdir(), 'xmppd-e2e-home-'));
    ts = await startTestServer({
      config: { modules_enabled: [] },
      users: [
        ['sender@localhost', 'sender-secret'],
        ['receiver@localhost', 'receiver-secret'],
      ],
    });
  });

  after(async () => {
    await ts?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('slixmpp receives a message that go-sendxmpp sends (PLAIN) over STARTTLS', { skip, timeout: 60_000 }, async () => {
    const receiver = spawn(PYTHON, [RECEIVER, '--jid', 'receiver@localhost/slix', '--password', 'receiver-secret', '--port', String(ts.c2sPort), '--ca', testTls().cert, '--timeout', '30'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const received = collect(receiver, 40_000);
    let lines = '';
    const ready = withTimeout(
      new Promise<Record<string, unknown>>((resolve, reject) => {
        receiver.stdout!.on('data', (d: Buffer) => {
          lines += d.toString();
          for (const line of lines.split('\n')) {
            if (line.includes('"ready"')) resolve(JSON.parse(line) as Record<string, unknown>);
          }
        });
        receiver.on('close', (code) => reject(new Error(`slixmpp exited (${code}) before it was ready`)));
      }),
      'slixmpp to come online',
      20_000,
    );
    let readyLine: Record<string, unknown>;
    try {
      readyLine = await ready;
    } catch (err) {
      receiver.kill('SIGKILL');
      const out = await received;
      throw new Error(`${(err as Error).message}\nstdout: ${out.stdout}\nstderr: ${out.stderr}\nserver log: ${ts.logText().slice(-2000)}`, { cause: err });
    }
    assert.equal(readyLine.jid, 'receiver@localhost/slix');
    // slixmpp takes the strongest mechanism on offer: a SCRAM one, never a -PLUS we could not honour.
    assert.match(String(readyLine.mechanism), /^SCRAM-SHA-(1|256)$/);

    // go-sendxmpp verifies the certificate against SSL_CERT_FILE (Go's crypto/x509 reads it): no -n needed.
    const sent = await run(GO_SENDXMPP, ['-u', 'sender@localhost', '-p', 'sender-secret', '-j', `127.0.0.1:${ts.c2sPort}`, '--timeout', '10', 'receiver@localhost'], {
      input: 'hello from go-sendxmpp\n',
      env: { ...process.env, HOME: home, SSL_CERT_FILE: testTls().cert },
      ms: 30_000,
    });
    assert.equal(sent.code, 0, `go-sendxmpp failed: ${sent.stderr}${sent.stdout}`);

    const out = await received;
    const message = out.stdout
      .split('\n')
      .filter((l) => l.includes('"message"'))
      .map((l) => JSON.parse(l) as { from: string; body: string })[0];
    assert.ok(message, `slixmpp got no message; stdout: ${out.stdout} stderr: ${out.stderr.slice(-2000)}`);
    assert.match(message.from, /^sender@localhost(\/.*)?$/);
    assert.equal(message.body.trim(), 'hello from go-sendxmpp');
  });
});
