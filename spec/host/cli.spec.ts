// xmppd as an admin runs it (a real process per command): exit codes and messages of every subcommand.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testTls } from '../helpers/server.js';

const CLI = resolve('lib/host/cli.ts');
/** The child runs in a temp folder, so tsx is named by its resolved URL, not by package name. */
const TSX = import.meta.resolve('tsx');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run xmppd as a user would, in `cwd`, with optional standard input; bounded in time. */
function xmppd(args: string[], opts: { cwd: string; input?: string; untilLine?: RegExp; signalAfterLine?: NodeJS.Signals }): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`xmppd ${args.join(' ')} did not finish in 30 s; stdout: ${stdout} stderr: ${stderr}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.untilLine && opts.signalAfterLine && !signalled && opts.untilLine.test(stdout)) {
        signalled = true;
        child.kill(opts.signalAfterLine);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

describe('xmppd CLI', () => {
  let dir: string;
  let config: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-cli-'));
    config = join(dir, 'xmppd.yaml');
    const tls = testTls();
    writeFileSync(
      config,
      [
        'data_dir: ./data',
        'http_ports: [0]',
        'c2s_ports: [0]',
        's2s_ports: [0]',
        'pbkdf2_iterations: 4096',
        'modules_enabled: []',
        `tls: { cert: ${tls.cert}, key: ${tls.key} }`,
        'virtual_hosts:',
        '  localhost: {}',
        '',
      ].join('\n'),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('check', () => {
    it('validates the config and exits 0', async () => {
      const run = await xmppd(['check', '--config', config], { cwd: dir });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /OK — virtual hosts localhost/);
    });

    it('exits 1 naming the file, the key and what was expected', async () => {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, 'http_ports: five\npbkdf2_iterations: 100\n');
      const run = await xmppd(['check', '--config', bad], { cwd: dir });
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`${bad}: http_ports: expected a list of port numbers`));
      assert.match(run.stderr, new RegExp(`${bad}: pbkdf2_iterations: expected an integer from 4096 to 10000000, got number 100`));
    });

    it('refuses a module option that does not fit its manifest (cors_origins: not an origin), before any module runs, as start does', async () => {
      const bad = join(dir, 'bad-origin.yaml');
      writeFileSync(bad, 'http_ports: [0]\nc2s_ports: []\ns2s_ports: []\nmodules_enabled: [post_msg]\npost_msg: { cors_origins: ["not an origin"] }\n');
      const expected = `${bad}: post_msg.cors_origins: expected a list of web origins, scheme://host[:port] without a path, such as https://example.org (module post_msg), got a list ["not an origin"]\n`;
      const check = await xmppd(['check', '--config', bad], { cwd: dir });
      assert.equal(check.code, 1);
      assert.equal(check.stdout, '');
      assert.equal(check.stderr, `xmppd: ${expected}`);
      const start = await xmppd(['start', '--config', bad], { cwd: dir });
      assert.equal(start.code, 1);
      assert.equal(start.stderr, `xmppd: ${expected}`);
      assert.doesNotMatch(start.stdout, /listening/);
    });

    it('exits 1 when a named config file does not exist', async () => {
      const run = await xmppd(['check', '--config', join(dir, 'missing.yaml')], { cwd: dir });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /missing\.yaml: cannot read the config file/);
    });
  });

  describe('adduser / passwd / deluser / users', () => {
    it('creates an account from --password-stdin and refuses it a second time', async () => {
      const first = await xmppd(['adduser', 'Bob@LocalHost', '--config', config, '--password-stdin'], { cwd: dir, input: 'secret\n' });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, 'Created bob@localhost.\n');
      const again = await xmppd(['adduser', 'bob@localhost', '--config', config, '--password-stdin'], { cwd: dir, input: 'secret\n' });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /bob@localhost exists already/);
    });

    it('lists accounts', async () => {
      const run = await xmppd(['users', '--config', config], { cwd: dir });
      assert.equal(run.code, 0);
      assert.equal(run.stdout, 'bob@localhost\n');
    });

    it('refuses a bad JID and a host that is not served', async () => {
      const bad = await xmppd(['adduser', 'a@b@c', '--config', config, '--password-stdin'], { cwd: dir, input: 'x\n' });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /"a@b@c" is not a valid JID/);
      const foreign = await xmppd(['adduser', 'a@example.org', '--config', config, '--password-stdin'], { cwd: dir, input: 'x\n' });
      assert.equal(foreign.code, 1);
      assert.match(foreign.stderr, /example\.org is not a virtual host of this server/);
    });

    it('asks for --password-stdin when standard input is not a terminal', async () => {
      const run = await xmppd(['adduser', 'carol@localhost', '--config', config], { cwd: dir });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /pass --password-stdin/);
    });

    it('changes a password, and refuses to change or delete a missing account', async () => {
      const ok = await xmppd(['passwd', 'bob@localhost', '--config', config, '--password-stdin'], { cwd: dir, input: 'new secret\n' });
      assert.equal(ok.code, 0, ok.stderr);
      const missing = await xmppd(['passwd', 'zed@localhost', '--config', config, '--password-stdin'], { cwd: dir, input: 'x\n' });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /zed@localhost does not exist; use adduser/);
      const del = await xmppd(['deluser', 'bob@localhost', '--config', config], { cwd: dir });
      assert.equal(del.code, 0);
      const delAgain = await xmppd(['deluser', 'bob@localhost', '--config', config], { cwd: dir });
      assert.equal(delAgain.code, 1);
      assert.match(delAgain.stderr, /bob@localhost does not exist/);
    });

    it('exits 2 with the usage for an unknown command', async () => {
      const run = await xmppd(['frobnicate'], { cwd: dir });
      assert.equal(run.code, 2);
      assert.match(run.stderr, /unknown command "frobnicate"/);
      assert.match(run.stderr, /Usage: xmppd <command>/);
    });
  });

  describe('start', () => {
    it('starts, and on SIGTERM stops cleanly with exit code 0', async () => {
      const run = await xmppd(['start', '--config', config], { cwd: dir, untilLine: /c2s listening/, signalAfterLine: 'SIGTERM' });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /"msg":"http listening"/);
      assert.match(run.stdout, /"msg":"stopped"/);
      assert.match(run.stderr, /xmppd is running .*\n {2}HTTP {4}http:\/\/127\.0\.0\.1:\d+\//);
      assert.match(run.stderr, /No accounts yet: add one with {2}npm run xmppd -- adduser you@localhost/);
    });

    it('exits 1 naming the port when it is already in use', async () => {
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as { port: number }).port;
      const file = join(dir, 'busy.yaml');
      writeFileSync(file, `data_dir: ./data\nhttp_ports: [${port}]\nc2s_ports: []\ns2s_ports: []\nmodules_enabled: []\n`);
      const run = await xmppd(['start', '--config', file], { cwd: dir });
      blocker.close();
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`http port ${port} on 127.0.0.1 is already in use`));
    });

    it('exits 1 when the data directory cannot be written', async () => {
      writeFileSync(join(dir, 'plainfile'), 'not a folder');
      const file = join(dir, 'nodata.yaml');
      writeFileSync(file, 'data_dir: ./plainfile/data\nhttp_ports: [0]\nc2s_ports: []\ns2s_ports: []\nmodules_enabled: []\n');
      const run = await xmppd(['start', '--config', file], { cwd: dir });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /data_dir .*plainfile\/data cannot be written/);
    });
  });
});
