// http_file_share (XEP-0363) on a real server: a component upload.localhost, slot requests from a client, PUT and GET
// over the host's HTTP with the component's Host, limits, quota, tokens, names that try to be paths, parallel uploads.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Client } from '@xmpp/client';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { nextStanza, startClient, stopClient } from '../c2s/helpers.js';
import { signToken, verifyToken } from '../../../lib/host/modules/http_file_share/token.js';
import { UploadStore } from '../../../lib/host/modules/http_file_share/store.js';
import { checkFilename, MAX_SLOTS_PER_DAY } from '../../../lib/host/modules/http_file_share/index.js';
import { contentDisposition } from '../../../lib/host/modules/http_file_share/http-app.js';
import { openSqliteStorage } from '../../../lib/host/modules/storage_sqlite/sqlite.js';

const NS = 'urn:xmpp:http:upload:0';
type El = ReturnType<typeof xml>;

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An HTTP request to a URL the server handed out, sent to 127.0.0.1 with the URL's Host (upload.localhost:port). */
function httpTo(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean } = {}): Promise<HttpAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers: { host: u.host, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (opts.chunked && opts.body !== undefined) {
      req.write(opts.body);
      req.end();
    } else req.end(opts.body);
  });
}

let iqId = 0;
async function iq(c: Client, to: string, payload: El, type = 'get', ms?: number): Promise<El> {
  const id = `fs-${++iqId}`;
  const answer = nextStanza(c, (el) => el.is('iq') && el.attrs.id === id, `iq ${id}`, ms);
  await c.send(xml('iq', { type, to, id }, payload));
  return answer;
}

function requestEl(filename: string, size: number | string, type?: string): El {
  return xml('request', { xmlns: NS, filename, size: String(size), ...(type ? { 'content-type': type } : {}) });
}

interface Slot {
  put: string;
  get: string;
  authorization: string;
}

function slotOf(answer: El): Slot {
  assert.equal(answer.attrs.type, 'result', answer.toString());
  const slot = answer.getChild('slot', NS)!;
  const put = slot.getChild('put')!;
  return { put: put.attrs.url, get: slot.getChild('get')!.attrs.url, authorization: put.getChild('header')!.text() };
}

function errorOf(answer: El): { condition: string; text: string; el: El } {
  assert.equal(answer.attrs.type, 'error', answer.toString());
  const error = answer.getChild('error')!;
  const condition = error.children.find((c) => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text') as El;
  return { condition: condition.name, text: error.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? '', el: error };
}

describe('http_file_share', () => {
  let ts: TestServer;
  let alice: Client;
  let bob: Client;
  let carol: Client;

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: [], components: { 'upload.localhost': { module: 'http_file_share', size_limit: 1000, daily_quota: 2500 } } },
      users: [
        ['alice@localhost', 'alice-secret'],
        ['bob@localhost', 'bob-secret'],
        ['carol@localhost', 'carol-secret'],
        ['dave@localhost', 'dave-secret'],
        ['erin@localhost', 'erin-secret'],
        ['fred@localhost', 'fred-secret'],
      ],
    });
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret' });
    bob = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret' });
    carol = await startClient({ port: ts.c2sPort, username: 'carol', password: 'carol-secret' });
  });

  after(async () => {
    for (const c of [alice, bob, carol]) if (c) await stopClient(c);
    await ts?.stop();
  });

  const slot = async (c: Client, name: string, size: number, type?: string): Promise<Slot> => slotOf(await iq(c, 'upload.localhost', requestEl(name, size, type)));
  const put = (s: Slot, body: Buffer | string, headers: Record<string, string> = {}) =>
    httpTo(s.put, { method: 'PUT', body, headers: { authorization: s.authorization, 'content-length': String(Buffer.byteLength(body)), ...headers } });

  it('announces the service and its size limit in disco#info (XEP-0363 §3)', async () => {
    const answer = await iq(alice, 'upload.localhost', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
    const query = answer.getChild('query')!;
    assert.deepEqual(query.getChild('identity')!.attrs, { category: 'store', type: 'file', name: 'HTTP File Upload' });
    assert.ok(query.getChildren('feature').some((f) => f.attrs.var === NS));
    const fields = query.getChild('x', 'jabber:x:data')!.getChildren('field');
    assert.equal(fields.find((f) => f.attrs.var === 'FORM_TYPE')!.getChildText('value'), NS);
    assert.equal(fields.find((f) => f.attrs.var === 'max-file-size')!.getChildText('value'), '1000');
  });

  it('gives a slot: PUT and GET URLs on the component domain with a Bearer token', async () => {
    const s = await slot(bob, 'photo one.png', 10, 'image/png');
    const port = new URL(ts.httpUrl).port;
    assert.match(s.put, new RegExp(`^http://upload\\.localhost:${port}/file_share/[\\w-]{24}/photo%20one\\.png$`));
    assert.equal(s.get, s.put);
    assert.match(s.authorization, /^Bearer [\w-]+\.[\w-]{43}$/);
  });

  it('takes the PUT of exactly the announced bytes, then serves them with safe headers', async () => {
    const png = Buffer.from('\x89PNG fake image bytes', 'latin1');
    const s = await slot(bob, 'été.png', png.length, 'image/png');
    const res = await put(s, png, { 'content-type': 'image/png' });
    assert.equal(res.status, 201, res.body.toString());
    const got = await httpTo(s.get);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, png);
    assert.equal(got.headers['content-type'], 'image/png');
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['content-security-policy']), /sandbox/);
    assert.match(String(got.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(got.headers['content-disposition'], `inline; filename="_t_.png"; filename*=UTF-8''%C3%A9t%C3%A9.png`);

    const html = await slot(bob, 'page.html', 13, 'text/html');
    assert.equal((await put(html, '<script>x()</script>'.slice(0, 13))).status, 201);
    const page = await httpTo(html.get);
    assert.equal(page.headers['content-type'], 'text/html');
    assert.match(String(page.headers['content-disposition']), /^attachment; /, 'a type a browser would run is a download');
  });

  it('takes a PUT from a web page of any origin (Converse.js): the preflight and the upload answer CORS for *', async () => {
    const s = await slot(bob, 'from-page.txt', 5, 'text/plain');
    const origin = 'https://chat.example';
    const pre = await httpTo(s.put, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.match(String(pre.headers['access-control-allow-methods']), /\bPUT\b/);
    assert.match(String(pre.headers['access-control-allow-headers']), /Authorization/);
    assert.match(String(pre.headers['access-control-allow-headers']), /Content-Type/);
    const res = await put(s, 'hello', { 'content-type': 'text/plain', origin, 'sec-fetch-site': 'cross-site' });
    assert.equal(res.status, 201, res.body.toString());
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const got = await httpTo(s.get, { headers: { origin } });
    assert.equal(got.body.toString(), 'hello');
    assert.equal(got.headers['access-control-allow-origin'], '*');
  });

  it('refuses a second upload to the same slot (409)', async () => {
    const s = await slot(bob, 'once.txt', 4, 'text/plain');
    assert.equal((await put(s, 'abcd')).status, 201);
    const again = await put(s, 'wxyz');
    assert.equal(again.status, 409);
    assert.equal((await httpTo(s.get)).body.toString(), 'abcd');
  });

  it('refuses a body of another size: 413 above, 400 below or without Content-Length', async () => {
    const s = await slot(bob, 'sized.bin', 5);
    const above = await put(s, 'abcdef');
    assert.equal(above.status, 413);
    assert.match(JSON.parse(above.body.toString()).detail, /exactly 5 bytes/);
    assert.equal((await put(s, 'abc')).status, 400);
    const chunked = await httpTo(s.put, { method: 'PUT', body: 'abcde', chunked: true, headers: { authorization: s.authorization } });
    assert.equal(chunked.status, 400);
    assert.equal((await httpTo(s.get)).status, 404, 'nothing was stored');
    assert.equal((await put(s, 'abcde')).status, 201, 'the slot is still good for the right size');
  });

  it('refuses a missing, forged or other slot\'s token (401)', async () => {
    const s = await slot(bob, 'a.txt', 3);
    const other = await slot(bob, 'b.txt', 3);
    const missing = await httpTo(s.put, { method: 'PUT', body: 'abc', headers: { 'content-length': '3' } });
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    const [payload] = s.authorization.slice(7).split('.');
    const forged = await put(s, 'abc', { authorization: `Bearer ${payload}.${'A'.repeat(43)}` });
    assert.equal(forged.status, 401);
    assert.equal((await put(s, 'abc', { authorization: other.authorization })).status, 401);
    assert.equal((await put(s, 'abc')).status, 201);
  });

  it('refuses a file over size_limit with not-acceptable and <file-too-large/> (XEP-0363 §4)', async () => {
    const e = errorOf(await iq(bob, 'upload.localhost', requestEl('big.bin', 1001)));
    assert.equal(e.condition, 'not-acceptable');
    assert.equal(e.el.attrs.type, 'modify');
    assert.equal(e.el.getChild('file-too-large', NS)!.getChildText('max-file-size'), '1000');
  });

  it('refuses sizes and types that are not numbers and media types (bad-request)', async () => {
    for (const [size, type] of [['0', undefined], ['-5', undefined], ['1e3', undefined], ['10', 'text/html\r\nX-Evil: 1'], ['10', 'text/html; charset=utf-8']] as const) {
      assert.equal(errorOf(await iq(bob, 'upload.localhost', requestEl('x.txt', size, type))).condition, 'bad-request', `${size} ${type}`);
    }
  });

  it('counts a daily quota per account: past it, resource-constraint with a text', async () => {
    await slot(carol, 'one.bin', 1000);
    await slot(carol, 'two.bin', 1000);
    const e = errorOf(await iq(carol, 'upload.localhost', requestEl('three.bin', 1000)));
    assert.equal(e.condition, 'resource-constraint');
    assert.equal(e.el.attrs.type, 'wait');
    assert.match(e.text, /Daily upload quota reached: 2000 of 2500 bytes/);
    await slot(carol, 'small.bin', 500);
    await slot(bob, 'other-account.bin', 1000);
  });

  it('bounds the slots one account may ask for in a day, however small the files', async () => {
    const c = await startClient({ port: ts.c2sPort, username: 'dave', password: 'dave-secret' });
    try {
      const answers = await Promise.all(Array.from({ length: MAX_SLOTS_PER_DAY }, (_, i) => iq(c, 'upload.localhost', requestEl(`f${i}.txt`, 1), 'get', 20_000)));
      assert.ok(answers.every((a) => a.attrs.type === 'result'));
      const e = errorOf(await iq(c, 'upload.localhost', requestEl('one-more.txt', 1)));
      assert.equal(e.condition, 'resource-constraint');
      assert.match(e.text, new RegExp(`${MAX_SLOTS_PER_DAY} files in the last 24 hours`));
    } finally {
      await stopClient(c);
    }
  });

  it('refuses file names that are paths, and URLs that try to leave the folder', async () => {
    for (const name of ['../../etc/passwd', 'a/b.txt', 'a\\b.txt', '..', '', 'x'.repeat(256)]) {
      assert.equal(errorOf(await iq(bob, 'upload.localhost', requestEl(name, 3))).condition, 'bad-request', JSON.stringify(name));
    }
    const s = await slot(bob, '..%2F..%2Fx', 3);
    assert.equal((await put(s, 'abc')).status, 201);
    assert.match(s.get, /\/\.\.%252F\.\.%252Fx$/, 'the name is one encoded path segment');
    const base = s.get.replace(/\/[\w-]{24}\/.*$/, '');
    for (const path of ['/..%2F..%2Fdecoy.key/x', '/%2e%2e/x', `/${'a'.repeat(23)}./x`, '/../../../etc/passwd']) {
      const res = await httpTo(`${base}${path}`);
      assert.ok(res.status === 404, `${path}: ${res.status}`);
    }
  });

  it('takes parallel uploads to different slots, and only one of two to the same slot', async () => {
    const files = await Promise.all([0, 1, 2, 3].map(async (i) => ({ s: await slot(alice, `p${i}.bin`, 400), body: Buffer.alloc(400, 65 + i) })));
    const results = await Promise.all(files.map(({ s, body }) => put(s, body)));
    assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201]);
    for (const { s, body } of files) assert.deepEqual((await httpTo(s.get)).body, body);

    const same = await slot(bob, 'race.bin', 200);
    const both = await Promise.all([put(same, Buffer.alloc(200, 1)), put(same, Buffer.alloc(200, 2))]);
    assert.deepEqual(both.map((r) => r.status).sort(), [201, 409]);
    const leftovers = readdirSync(join(ts.dataDir, 'http_file_share')).filter((f) => f.endsWith('.part'));
    assert.deepEqual(leftovers, []);
  });
  /** The files of data_dir/http_file_share/ that belong to these slot URLs (bytes, part and record). */
  const filesOf = (slots: Slot[]): string[] => {
    const ids = slots.map((s) => /\/([\w-]{24})\//.exec(s.get)![1]);
    return readdirSync(join(ts.dataDir, 'http_file_share')).filter((f) => ids.some((id) => f.startsWith(id)));
  };

  it("deleting an account deletes its files and slots; the same name starts with a fresh quota", async () => {
    const c = await startClient({ port: ts.c2sPort, username: 'erin', password: 'erin-secret' });
    let done!: Slot;
    let pending!: Slot;
    try {
      done = await slot(c, 'mine.txt', 1000);
      assert.equal((await put(done, Buffer.alloc(1000, 1))).status, 201);
      pending = await slot(c, 'later.txt', 1000);
      assert.match(errorOf(await iq(c, 'upload.localhost', requestEl('third.txt', 1000))).text, /quota/);
    } finally {
      await stopClient(c);
    }
    const kept = await slot(bob, 'bobs.txt', 3);
    assert.equal((await put(kept, 'abc')).status, 201);
    assert.equal(filesOf([done, pending]).length, 3, 'the bytes of one, the records of both');

    await ts.server.users.delete('erin@localhost');
    for (let i = 0; i < 200 && filesOf([done, pending]).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(filesOf([done, pending]), [], 'nothing of the account is left on disk');
    assert.equal((await httpTo(done.get)).status, 404);
    assert.equal((await put(pending, Buffer.alloc(1000, 2))).status, 401, 'its open slot is void');
    assert.deepEqual(filesOf([pending]), []);
    assert.equal((await httpTo(kept.get)).body.toString(), 'abc', "another account's file stays");

    await ts.server.users.create('erin@localhost', 'new-secret');
    const again = await startClient({ port: ts.c2sPort, username: 'erin', password: 'new-secret' });
    try {
      await slot(again, 'one.txt', 1000);
      await slot(again, 'two.txt', 1000);
    } finally {
      await stopClient(again);
    }
  });

  it('an account deleted by another process (xmppd deluser) loses its files too', async () => {
    const c = await startClient({ port: ts.c2sPort, username: 'fred', password: 'fred-secret' });
    let s!: Slot;
    try {
      s = await slot(c, 'f.txt', 2);
      assert.equal((await put(s, 'hi')).status, 201);
    } finally {
      await stopClient(c);
    }
    // Another connection to the same database, as the CLI opens: this server hears of it only by polling.
    const other = openSqliteStorage(ts.dataDir);
    try {
      assert.equal(await other.users.delete('fred@localhost'), true);
    } finally {
      other.close();
    }
    for (let i = 0; i < 500 && filesOf([s]).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(filesOf([s]), []);
    assert.equal((await httpTo(s.get)).status, 404);
  });
});

describe('http_file_share parts', () => {
  const secret = Buffer.alloc(32, 7);
  const grant = { slot: 'a'.repeat(24), size: 10, expires: 1000, uploader: 'alice@localhost' };

  it('a token is good for its slot until its expiry, and no longer', () => {
    const token = signToken(secret, grant);
    assert.deepEqual(verifyToken(secret, token, grant.slot, 999), { ok: true, grant });
    assert.deepEqual(verifyToken(secret, token, grant.slot, 1001), { ok: false, reason: 'expired' });
    assert.deepEqual(verifyToken(secret, token, 'b'.repeat(24), 999), { ok: false, reason: 'other-slot' });
    assert.deepEqual(verifyToken(Buffer.alloc(32, 8), token, grant.slot, 999), { ok: false, reason: 'bad-signature' });
    assert.deepEqual(verifyToken(secret, 'garbage', grant.slot, 999), { ok: false, reason: 'malformed' });
    // The size is signed: a token saying another size does not verify.
    const [, sig] = token.split('.');
    const bigger = Buffer.from(JSON.stringify({ s: grant.slot, n: 10_000, e: 1000, u: grant.uploader })).toString('base64url');
    assert.deepEqual(verifyToken(secret, `${bigger}.${sig}`, grant.slot, 999), { ok: false, reason: 'bad-signature' });
  });

  it('expiry removes old files and their records, and keeps recent ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmppd-fs-'));
    try {
      const store = new UploadStore(dir);
      await store.add({ slot: 'o'.repeat(24), filename: 'old.txt', size: 1, type: 'text/plain', uploader: 'a@localhost', time: 100 });
      await store.add({ slot: 'n'.repeat(24), filename: 'new.txt', size: 1, type: 'text/plain', uploader: 'a@localhost', time: 900 });
      writeFileSync(store.dataPath('o'.repeat(24)), 'x');
      writeFileSync(store.dataPath('n'.repeat(24)), 'y');
      assert.deepEqual(await store.expire(1000, 500), ['o'.repeat(24)]);
      assert.deepEqual(readdirSync(dir).sort(), ['n'.repeat(24), `${'n'.repeat(24)}.json`]);
      assert.equal(new UploadStore(dir).get('n'.repeat(24))?.filename, 'new.txt', 'records are read back at start');
      assert.deepEqual(store.usedToday('a@localhost', 1000), { bytes: 1, slots: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checkFilename and contentDisposition', () => {
    assert.equal(checkFilename('holiday photo.jpg'), undefined);
    assert.ok(checkFilename('../x'));
    // Not sendable in XML 1.0, but a name from another source must not pass either.
    assert.ok(checkFilename('nul\u0000.txt'));
    assert.ok(checkFilename('tab\t.txt'));
    assert.equal(contentDisposition('attachment', 'a"b.pdf'), `attachment; filename="a_b.pdf"; filename*=UTF-8''a%22b.pdf`);
  });
});
