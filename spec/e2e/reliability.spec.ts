// A 201 is a promise: under load nothing is lost or duplicated, a SIGKILL (also during the offline flush at
// login) loses nothing acknowledged, fuzzed requests get only spec'd statuses, guessing passwords is throttled,
// and an unknown user cannot be told from a wrong password.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { xml } from '@xmpp/xml';
import parseXml from '@xmpp/xml/lib/parse.js';
import type { Client } from '@xmpp/client';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { rawLogin, startClient, stopClient } from '../host/c2s/helpers.js';
import type { TLSSocket } from 'node:tls';
import { collect, online, post, runLoad, waitFor, basic, type Answer } from '../helpers/load.js';
import { findIllegalXmlChar } from '../../lib/host/util/xml-text.js';
import { openUsers, readConfig } from '../../lib/host/core/server.js';

const UNLIMITED = { post_msg: { rate_per_second: 100000, rate_burst: 1000000 } };

describe('Reliability', () => {
  describe('load: nothing lost', () => {
    let ts: TestServer;
    const clients: Client[] = [];
    before(async () => {
      ts = await startTestServer({
        config: UNLIMITED,
        users: [['bob@localhost', 'bob-load-pw'], ['alice@localhost', 'alice-load-pw'], ['carol@localhost', 'carol-load-pw']],
      });
    });
    after(async () => {
      for (const c of clients) await stopClient(c);
      await ts.stop();
    });

    it('5,000 POSTs at 64 connections to two online receivers: no 5xx, every 201 received once', async (t) => {
      const alice = await online(ts, 'alice', 'alice-load-pw');
      const carol = await online(ts, 'carol', 'carol-load-pw');
      clients.push(alice.client, carol.client);
      const r = await runLoad({
        url: ts.httpUrl,
        total: 5000,
        connections: 64,
        sender: ['bob@localhost', 'bob-load-pw'],
        receivers: [{ name: 'alice', got: alice.got }, { name: 'carol', got: carol.got }],
        deadlineMs: 120_000,
      });
      t.diagnostic(`${r.total} requests in ${r.ms} ms; statuses ${JSON.stringify(Object.fromEntries(r.statuses))}`);
      assert.equal(r.total, 5000);
      assert.equal([...r.statuses.keys()].filter((s) => s >= 500).length, 0, 'no 5xx');
      assert.equal(r.acked.length, 5000, 'every request was acknowledged with 201');
      assert.equal(r.lost, 0, 'every acknowledged message arrived');
      assert.equal(r.duplicates, 0, 'no duplicate stanza ids');
      assert.equal(r.received.length, r.acked.length);
    });
  });

  describe('crash: nothing lost', () => {
    it('every message acknowledged before a SIGKILL is delivered after the restart', async (t) => {
      const { dir, configPath } = await crashServerDir('xmppd-crash-', 'crash');

      const first = await startChild(configPath, dir);
      const acked: string[] = [];
      let failed = 0;
      let stop = false;
      const agent = new Agent({ keepAlive: true, maxSockets: 8 });
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          try {
            const res = await post(`http://127.0.0.1:${first.httpPort}`, '/msg/alice', {
              agent,
              headers: { authorization: basic('bob@localhost', 'bob-crash-pw'), 'content-type': 'text/plain' },
              body: `crash ${w}-${i}`,
            });
            if (res.status === 201) acked.push((JSON.parse(res.body) as { id: string }).id);
          } catch {
            failed++; // the connection died with the server: not acknowledged, so not promised
            return;
          }
        }
      };
      const workers = Array.from({ length: 8 }, (_, w) => worker(w));
      await waitFor('some messages to be stored', () => acked.length >= 200);
      first.child.kill('SIGKILL');
      await Promise.all(workers);
      stop = true;
      agent.destroy();
      await first.exited;
      t.diagnostic(`${acked.length} acknowledged before SIGKILL, ${failed} connections cut`);

      const second = await startChild(configPath, dir);
      let alice: Client | undefined;
      try {
        alice = await startClient({ port: second.c2sPort, username: 'alice', password: 'alice-crash-pw' });
        const got = collect(alice);
        await alice.send(xml('presence'));
        await waitFor('every acknowledged message', () => acked.every((id) => got.ids.includes(id)), 20_000).catch(() => undefined);
        const missing = acked.filter((id) => !got.ids.includes(id));
        const duplicates = got.ids.length - new Set(got.ids).size;
        t.diagnostic(`delivered after restart: ${got.ids.length}; missing acknowledged: ${missing.length}; duplicates: ${duplicates}; stored but never acknowledged: ${new Set(got.ids).size - (acked.length - missing.length)}`);
        assert.deepEqual(missing, [], 'no acknowledged message is lost');
        for (const s of got.stanzas) assert.ok(s.getChild('delay', 'urn:xmpp:delay'), 'offline messages carry a delay stamp');
      } finally {
        if (alice) await stopClient(alice);
        second.child.kill('SIGTERM');
        await second.exited;
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a SIGKILL during the offline flush at login: every message answered 201 arrives after the restart, duplicates counted', async (t) => {
      const { dir, configPath } = await crashServerDir('xmppd-flush-crash-', 'flush');

      const first = await startChild(configPath, dir);
      const acked: string[] = [];
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const body = 'f'.repeat(2048);
      const send = (text: string): Promise<Answer> =>
        post(`http://127.0.0.1:${first.httpPort}`, '/msg/alice', { agent, headers: { authorization: basic('bob@localhost', 'bob-flush-pw'), 'content-type': 'text/plain' }, body: text });
      // The HTTP listener may open before every app is mounted: wait until post_msg answers.
      for (let i = 0; i < 100 && (await send('ready')).status === 404; i++) await new Promise((r) => setTimeout(r, 100));
      // 2,000 messages of 2 KiB for an offline account: a flush long enough to be cut.
      await Promise.all(
        Array.from({ length: 16 }, async (_, w) => {
          for (let i = 0; i < 125; i++) {
            const res = await send(`${w}-${i} ${body}`);
            assert.equal(res.status, 201, res.body);
            acked.push((JSON.parse(res.body) as { id: string }).id);
          }
        }),
      );
      agent.destroy();

      // A slow reader logs in; the server is killed once part of the queue has arrived.
      const reader1 = await flushReader(first.c2sPort);
      await waitFor('part of the queue', () => reader1.ids.size >= 300, 20_000);
      first.child.kill('SIGKILL');
      await first.exited;
      reader1.stop();
      await waitFor('the first connection to end', () => reader1.closed(), 10_000);

      const second = await startChild(configPath, dir);
      try {
        const reader2 = await flushReader(second.c2sPort);
        reader2.stop();
        const isReceived = (id: string): boolean => reader1.ids.has(id) || reader2.ids.has(id);
        await waitFor('every acknowledged message', () => acked.every(isReceived), 20_000).catch(() => undefined);
        const missing = acked.filter((id) => !isReceived(id));
        const duplicates = reader1.count + reader2.count - new Set([...reader1.ids, ...reader2.ids]).size;
        t.diagnostic(`${acked.length} stored; ${reader1.ids.size} read before the SIGKILL, ${reader2.ids.size} after the restart; missing ${missing.length}; duplicates ${duplicates}`);
        assert.deepEqual(missing, [], 'no message answered 201 is lost');
        assert.ok(reader1.ids.size < acked.length, 'the SIGKILL came before the end of the flush');
        reader2.close();
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('fuzzing', () => {
    let ts: TestServer;
    let alice: Awaited<ReturnType<typeof online>>;
    before(async () => {
      ts = await startTestServer({
        config: { ...UNLIMITED, auth_failures_per_minute: 100000 },
        users: [['bob@localhost', 'bob-fuzz-pw'], ['alice@localhost', 'alice-fuzz-pw']],
      });
      alice = await online(ts, 'alice', 'alice-fuzz-pw');
    });
    after(async () => {
      await stopClient(alice.client);
      await ts.stop();
    });

    const SPEC_STATUSES = new Set([201, 204, 400, 401, 403, 404, 405, 413, 415, 422, 429, 431]);

    it('answers generated requests only with spec’d statuses, never 5xx, and every stanza that arrives is well-formed', async () => {
      const port = Number(new URL(ts.httpUrl).port);
      const header = fc.stringMatching(/^[\t\x20-\x7e]{0,40}$/);
      const requestArb = fc.record({
        method: fc.oneof(fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH'), fc.stringMatching(/^[A-Z]{1,8}$/)),
        path: fc.oneof(
          fc.constantFrom('/msg', '/msg/', '/msg/alice', '/msg/Alice@LocalHost', '/msg/alice@localhost/phone', '/msg/a%40b%40c', '/msg/%ff', '/msg/nobody', '/other'),
          fc.webPath().map((p) => `/msg${p}`),
          fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => `/msg/${encodeURIComponent(s)}`),
        ),
        contentType: fc.option(fc.oneof(fc.constantFrom('text/plain', 'text/plain; charset=utf-8', 'text/plain; charset=latin1', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data', 'TEXT/PLAIN'), header), { nil: undefined }),
        authorization: fc.option(
          fc.oneof(
            fc.constant(basic('bob@localhost', 'bob-fuzz-pw')),
            fc.constant(basic('bob', 'bob-fuzz-pw')),
            fc.constant(basic('bob@localhost', 'wrong')),
            fc.constant('Bearer abc'),
            fc.string({ maxLength: 30 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
            header,
          ),
          { nil: undefined },
        ),
        origin: fc.option(fc.constantFrom('https://evil.example', 'null', `http://127.0.0.1:${port}`), { nil: undefined }),
        body: fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v))),
          fc.record({ to: fc.constantFrom('alice', 'alice@localhost', 'a@b@c'), body: fc.string({ unit: 'binary', maxLength: 50 }), type: fc.constantFrom('chat', 'headline', 'error', 'normal'), html: fc.constantFrom('<p>hi</p>', '<b>x</b>', '<script/>', '<a href="javascript:x">y</a>') }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))),
        ),
      });
      // Near-valid requests with arbitrary text, so stanzas do reach the client and get checked.
      const plausible = fc.record({
        method: fc.constant('POST'),
        path: fc.constantFrom('/msg/alice', '/msg/Alice', '/msg/alice@localhost', '/msg/'),
        contentType: fc.constantFrom('text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/json'),
        authorization: fc.constant(basic('bob@localhost', 'bob-fuzz-pw')),
        origin: fc.constant(undefined),
        body: fc.oneof(
          fc.string({ unit: 'binary', maxLength: 80 }).map((t) => Buffer.from(t)),
          fc.record({ to: fc.constant('alice'), body: fc.string({ unit: 'binary', maxLength: 40 }), html: fc.constantFrom(undefined, '<p>hi <em>there</em></p>', '<p>&amp; &lt;</p>') }).map((o) => Buffer.from(JSON.stringify(o))),
          fc.string({ unit: 'binary', maxLength: 40 }).map((t) => Buffer.from(`to=alice&body=${formEncode(t)}`)),
        ),
      });
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(fc.oneof({ arbitrary: plausible, weight: 1 }, { arbitrary: requestArb, weight: 2 }), async (r) => {
          const headers: Record<string, string> = {};
          if (r.contentType !== undefined) headers['content-type'] = r.contentType;
          if (r.authorization !== undefined) headers.authorization = r.authorization;
          if (r.origin !== undefined) headers.origin = r.origin;
          const status = await rawRequest(port, r.method, r.path, headers, r.body);
          seen.set(status, (seen.get(status) ?? 0) + 1);
          assert.ok(SPEC_STATUSES.has(status), `status ${status} for ${r.method} ${r.path} is not one the spec lists`);
        }),
        { numRuns: 400 },
      );
      // The server is still up and still delivers.
      const res = await post(ts.httpUrl, '/msg/alice', { headers: { authorization: basic('bob@localhost', 'bob-fuzz-pw'), 'content-type': 'text/plain' }, body: 'still alive' });
      assert.equal(res.status, 201);
      await waitFor('the last message', () => alice.got.stanzas.some((s) => s.getChildText('body') === 'still alive'), 5000);
      for (const s of alice.got.stanzas) {
        const text = s.toString();
        assert.equal(findIllegalXmlChar(text), null, `an XML-illegal character reached a client: ${JSON.stringify(text)}`);
        assert.doesNotThrow(() => parseXml(text), `a stanza that reached a client does not parse: ${text}`);
      }
      assert.ok((seen.get(201) ?? 0) > 0, `no generated request was accepted; statuses ${JSON.stringify(Object.fromEntries(seen))}`);
    });
  });

  describe('authentication abuse', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({ users: [['bob@localhost', 'bob-abuse-pw']] });
    });
    after(() => ts.stop());

    const send = (password: string, localAddress: string): Promise<Answer> =>
      post(ts.httpUrl, '/msg/bob', { localAddress, headers: { authorization: basic('bob@localhost', password), 'content-type': 'text/plain' }, body: 'abuse test' });

    it('throttles one address after auth_failures_per_minute failures, while the real user elsewhere gets in', async () => {
      for (let i = 0; i < 10; i++) assert.equal((await send('guess', '127.0.0.2')).status, 401);
      const throttled = await send('bob-abuse-pw', '127.0.0.2');
      assert.equal(throttled.status, 429);
      assert.match(String(throttled.headers['retry-after']), /^[1-9]\d*$/);
      assert.equal(throttled.headers['content-type'], 'application/problem+json');
      assert.equal((await send('bob-abuse-pw', '127.0.0.1')).status, 201);
    });

    it('does not count a request without credentials (the normal challenge)', async () => {
      for (let i = 0; i < 15; i++) {
        const res = await post(ts.httpUrl, '/msg/bob', { localAddress: '127.0.0.3', headers: { 'content-type': 'text/plain' }, body: 'x' });
        assert.equal(res.status, 401);
        assert.match(String(res.headers['www-authenticate']), /^Basic realm="localhost\/post_msg", charset="UTF-8"$/);
      }
      assert.equal((await send('bob-abuse-pw', '127.0.0.3')).status, 201);
    });
  });

  describe('no user enumeration over HTTP', () => {
    it('unknown user and wrong password: same status, same body, means within 20% over 200 tries', async () => {
      const ts = await startTestServer({ config: { auth_failures_per_minute: 100000 }, users: [['bob@localhost', 'bob-enum-pw']] });
      try {
        const once = async (user: string): Promise<{ ns: number; status: number; body: string }> => {
          const start = process.hrtime.bigint();
          const res = await post(ts.httpUrl, '/msg/bob', { headers: { authorization: basic(user, 'not-the-password'), 'content-type': 'text/plain' }, body: 'x' });
          return { ns: Number(process.hrtime.bigint() - start), status: res.status, body: res.body };
        };
        for (let i = 0; i < 20; i++) await once(i % 2 ? 'bob@localhost' : 'nobody@localhost');
        let known = 0;
        let unknown = 0;
        for (let i = 0; i < 200; i++) {
          const k = await once('bob@localhost');
          const u = await once('nobody@localhost');
          assert.equal(k.status, 401);
          assert.equal(u.status, 401);
          assert.equal(u.body, k.body);
          known += k.ns;
          unknown += u.ns;
        }
        const ratio = unknown / known;
        assert.ok(ratio > 0.8 && ratio < 1.2, `unknown/wrong-password mean time ratio ${ratio.toFixed(3)} is outside 0.8..1.2`);
      } finally {
        await ts.stop();
      }
    });
  });
});

/** alice logged in over a raw stream, available, reading in short bursts: the ids of the messages it reads. */
async function flushReader(port: number): Promise<{ ids: Set<string>; count: number; closed(): boolean; stop(): void; close(): void }> {
  const { raw } = await rawLogin(port, 'alice', 'alice-flush-pw', 'flush');
  const socket = (raw as unknown as { socket: TLSSocket }).socket;
  const out = { ids: new Set<string>(), count: 0, isClosed: false };
  let carry = '';
  socket.on('data', (chunk: string) => {
    const text = carry + chunk;
    const re = /<message\b[^>]*?\sid="([^"]+)"[^>]*>/g;
    let end = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      out.ids.add(m[1]!);
      out.count++;
      end = re.lastIndex;
    }
    carry = text.slice(Math.max(end, text.length - 4096));
  });
  socket.on('close', () => (out.isClosed = true));
  socket.pause();
  let burst: NodeJS.Timeout | undefined;
  const pump = setInterval(() => {
    socket.resume();
    burst = setTimeout(() => socket.pause(), 2);
  }, 30);
  raw.send('<presence/>');
  return {
    ids: out.ids,
    get count() {
      return out.count;
    },
    closed: () => out.isClosed,
    stop: () => {
      clearInterval(pump);
      // A burst still running would pause the socket after this and leave it paused for good.
      clearTimeout(burst);
      socket.resume();
    },
    close: () => raw.close(),
  };
}

/** Percent-encode for a form; a lone surrogate (which encodeURIComponent refuses) goes in raw. */
function formEncode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A request written byte for byte, so the fuzzer is not limited by what node:http lets a client send. */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const socket = connect(port, '127.0.0.1');
    const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close', `Content-Length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    let response = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${method} ${path} within 10 s`));
    }, 10_000);
    socket.on('data', (d: Buffer) => {
      response += d.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
      if (match) {
        clearTimeout(timer);
        socket.destroy();
        resolveStatus(Number(match[1]));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!/^HTTP\/1\.1 \d{3}/.test(response)) reject(new Error(`connection closed without an answer to ${method} ${path}`));
    });
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

interface Child {
  child: ChildProcess;
  httpPort: number;
  c2sPort: number;
  exited: Promise<void>;
}

const CLI = resolve('lib/host/cli.ts');
const TSX = import.meta.resolve('tsx');

/** Start `xmppd start` as its own process and read its ports from the log. */
/** A data dir and config for a server run as a child (killed and restarted by the crash specs), with bob and alice (passwords `<name>-<tag>-pw`). */
async function crashServerDir(prefix: string, tag: string): Promise<{ dir: string; configPath: string }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const tls = testTls();
  const configPath = join(dir, 'xmppd.yaml');
  writeFileSync(
    configPath,
    [
      'data_dir: ./data',
      'http_ports: [0]',
      'c2s_ports: [0]',
      's2s_ports: [0]',
      'c2s_direct_tls_ports: []',
      'pbkdf2_iterations: 4096',
      'log_level: info',
      `tls: { cert: ${tls.cert}, key: ${tls.key} }`,
      'post_msg: { rate_per_second: 100000, rate_burst: 1000000 }',
      'virtual_hosts: { localhost: {} }',
      '',
    ].join('\n'),
  );
  const { config } = readConfig({ configPath });
  const { storage, users } = await openUsers(config);
  await users.create('bob@localhost', `bob-${tag}-pw`);
  await users.create('alice@localhost', `alice-${tag}-pw`);
  storage.close();
  return { dir, configPath };
}

function startChild(configPath: string, cwd: string): Promise<Child> {
  return new Promise((resolveChild, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, 'start', '--config', configPath], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let out = '';
    let httpPort = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`xmppd did not start within 30 s: ${out}`));
    }, 30_000);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const http = /"service":"http","address":"127\.0\.0\.1","port":(\d+),"msg":"http listening"/.exec(out);
      const c2s = /"service":"c2s","address":"127\.0\.0\.1","port":(\d+),"msg":"c2s listening"/.exec(out);
      if (http) httpPort = Number(http[1]);
      if (httpPort && c2s) {
        clearTimeout(timer);
        resolveChild({ child, httpPort, c2sPort: Number(c2s[1]), exited });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`xmppd exited with ${code} before it listened: ${out}`));
    });
  });
}
