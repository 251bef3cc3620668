// Every curl example of README.md, run as written (only the URL's host and port changed) against the real server,
// with the setup each needs (a second server for example.net over s2s and a test DNS, a room, a token in $TOKEN)
// and an XMPP client checking what arrives; post_msg.md §§9–15.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { xml, type Client } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { goOnline, nextStanza, RawClient, startClient, stopClient, trustTestCertificate } from '../host/c2s/helpers.js';
import { login } from '../helpers/s2s.js';

const README = join(import.meta.dirname, '../../README.md');
const ROOM = 'ops@conference.localhost';
type Stanza = ReturnType<typeof xml>;

/** Every `curl …` command inside a ```sh or ```shell block of the README, backslash-continued lines joined. */
function readmeCurlLines(): string[] {
  const text = readFileSync(README, 'utf8');
  const blocks = [...text.matchAll(/```(?:sh|shell)\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n\s*/g, ''));
  return blocks.flatMap((b) => b.split('\n')).filter((l) => l.startsWith('curl '));
}

/** The README's kinds of example, each with its own setup and claims; every curl command must be one of them. */
const KINDS = {
  remote: (l: string) => l.includes('/msg/carol@example.net'),
  room: (l: string) => l.includes(`/msg/${ROOM}`),
  tokensApp: (l: string) => /\/tokens\b/.test(l),
  token: (l: string) => l.includes('$TOKEN'),
  idempotent: (l: string) => l.includes('Idempotency-Key:'),
  dryRun: (l: string) => l.includes('dry_run=1'),
  several: (l: string) => l.includes('"to": ['),
  attachment: (l: string) => l.includes('"url":'),
  markdown: (l: string) => l.includes('text/markdown'),
} as const;
type Kind = keyof typeof KINDS | 'local';
const kindOf = (l: string): Kind => (Object.keys(KINDS) as Array<keyof typeof KINDS>).find((k) => KINDS[k](l)) ?? 'local';

interface CurlResult {
  status: number;
  headers: string;
  body: string;
}

/** Runs the README line in bash as written, with $TOKEN and $ID in its environment as the README keeps them. */
function runCurl(line: string, httpUrl: string, env: Record<string, string> = {}): Promise<CurlResult> {
  const command = `${line.replaceAll('http://localhost:5280', httpUrl)} -sS -D - -w '\\n%{http_code}'`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', command], { timeout: 15_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${command}: ${err.message} ${stderr}`));
      const cut = stdout.lastIndexOf('\n');
      const rest = stdout.slice(0, cut);
      const split = rest.indexOf('\r\n\r\n');
      resolve({ status: Number(stdout.slice(cut + 1)), headers: rest.slice(0, split), body: rest.slice(split + 4) });
    });
  });
}

/** Messages a client receives, kept in order, so a spec can wait for several or check that none came. */
function inbox(c: Client): { take(n: number, what: string, ms?: number): Promise<Stanza[]>; list: Stanza[] } {
  const list: Stanza[] = [];
  c.on('stanza', (el: Stanza) => {
    if (el.is('message')) list.push(el);
  });
  return {
    list,
    async take(n, what, ms = 5_000) {
      const until = Date.now() + ms;
      while (list.length < n) {
        if (Date.now() > until) assert.fail(`${what}: ${list.length} of ${n} messages within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return list.splice(0, n);
    },
  };
}


describe('post_msg README curl examples', () => {
  let dns: TestDns;
  let ts: TestServer;
  let remote: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  let aliceInbox: ReturnType<typeof inbox>;
  let carol: RawClient;
  const lines = readmeCurlLines();
  const of = (kind: Kind): string[] => lines.filter((l) => kindOf(l) === kind);
  const one = (kind: Kind): string => {
    const found = of(kind);
    assert.equal(found.length, 1, `one README example of kind ${kind}: ${found.join('\n')}`);
    return found[0]!;
  };

  before(async () => {
    restoreTls = trustTestCertificate();
    dns = await startTestDns();
    const s2s = { s2s_ports: [0], s2s_interfaces: ['127.0.0.1'], dns_servers: [dns.address] };
    ts = await startTestServer({
      config: { ...s2s, modules_enabled: ['tokenauth', 'post_msg'], components: { 'conference.localhost': { module: 'muc' } } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret'], ['carol@localhost', 'carol-pw']],
    });
    remote = await startTestServer({
      config: { ...s2s, virtual_hosts: { 'example.net': {} }, http_default_host: 'example.net' },
      users: [['carol@example.net', 'carol-pw']],
    });
    for (const [domain, server] of [['localhost', ts], ['example.net', remote]] as const) {
      dns.srv(`_xmpp-server._tcp.${domain}`, [{ target: `xmpp.${domain}`, port: server.server.ports.ports('s2s')[0]! }]);
      dns.a(`xmpp.${domain}`, ['127.0.0.1']);
    }
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-pw' });
    aliceInbox = inbox(alice);
    await goOnline(alice, 'alice');
    carol = await login(remote.c2sPort, 'example.net', 'carol', 'carol-pw');
    // The room the README posts to, created by alice (an instant room, XEP-0045 §10.1.2), alice its occupant.
    const entered = nextStanza(alice, (el) => el.is('presence') && el.attrs.from === `${ROOM}/alice`, 'alice in the room');
    await alice.send(xml('presence', { to: `${ROOM}/alice` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await entered;
    await alice.iqCaller.request(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    await new Promise((r) => setTimeout(r, 200));
    aliceInbox.list.length = 0; // the room's subject and history
  });

  after(async () => {
    carol?.close();
    if (alice) await stopClient(alice);
    await ts?.stop();
    await remote?.stop();
    await dns?.close();
    restoreTls?.();
  });

  it('the README has a curl example per payload format and per feature, and no other kind', () => {
    const local = of('local');
    assert.ok(local.length >= 4, `${local.length} local curl lines`);
    assert.ok(local.some((l) => l.includes("'Content-Type: text/plain'")));
    assert.ok(local.some((l) => l.includes("'Content-Type: application/json'")));
    assert.ok(local.some((l) => l.includes('--data-urlencode')));
    assert.ok(local.some((l) => /-d '[^=']*'$/.test(l)), 'the short curl -d line');
    for (const kind of Object.keys(KINDS) as Kind[]) assert.ok(of(kind).length > 0, `an example of ${kind}`);
    // Every line is a kind this spec runs with its setup: a local one must go to alice from bob, checked below.
    for (const l of local) assert.match(l, /^curl (http:\/\/localhost:5280\/msg\/alice |http:\/\/localhost:5280\/msg -u bob@localhost:secret --data-urlencode 'to=alice@localhost')/, l);
  });

  it('each local example answers 201 and alice receives the message from bob', async () => {
    for (const line of of('local')) {
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
    aliceInbox.list.length = 0;
  });

  it('the first example sends exactly the README text', async () => {
    const received = nextStanza(alice, (el) => el.is('message'), 'the first example');
    await runCurl(lines.find((l) => l.includes('Backup on db1 failed'))!, ts.httpUrl);
    assert.equal((await received).getChildText('body'), 'Backup on db1 failed');
    aliceInbox.list.length = 0;
  });

  it('to carol@example.net: 201 sent over s2s, and carol receives it from bob', async () => {
    const res = await runCurl(one('remote'), ts.httpUrl);
    assert.equal(res.status, 201, res.body);
    const answer = JSON.parse(res.body) as { id: string; to: string; outcome: string };
    assert.equal(answer.outcome, 'sent');
    assert.equal(answer.to, 'carol@example.net');
    const m = await carol.waitFor(/<message[^>]*>.*?<\/message>/s, 'carol gets the message');
    assert.match(m[0], /from=["']bob@localhost["']/);
    assert.match(m[0], new RegExp(`id=["']${answer.id}["']`));
    assert.match(m[0], /<body>db1 is down<\/body>/);
  });

  it('to the room: 201 posted, and the occupant alice receives the groupchat from bob\'s nick', async () => {
    const res = await runCurl(one('room'), ts.httpUrl);
    assert.equal(res.status, 201, res.body);
    const answer = JSON.parse(res.body) as { id: string; to: string; outcome: string };
    assert.equal(answer.outcome, 'posted');
    assert.equal(answer.to, ROOM);
    const [m] = await aliceInbox.take(1, 'the groupchat');
    assert.equal(m!.attrs.type, 'groupchat');
    assert.equal(m!.attrs.from, `${ROOM}/bob`);
    assert.equal(m!.getChildText('body'), 'db1 is down');
  });

  it('Markdown: 201 delivered, with XHTML-IM rendered from it', async () => {
    const res = await runCurl(one('markdown'), ts.httpUrl);
    assert.equal(res.status, 201, res.body);
    assert.equal((JSON.parse(res.body) as { outcome: string }).outcome, 'delivered');
    const [m] = await aliceInbox.take(1, 'the Markdown message');
    assert.match(m!.getChildText('body') ?? '', /Backup failed.*db1/);
    const html = m!.getChild('html', 'http://jabber.org/protocol/xhtml-im');
    assert.ok(html, m!.toString());
    assert.match(html.toString(), /<strong>Backup failed<\/strong>/);
    assert.match(html.toString(), /href="https:\/\/example.org\/log"/);
  });

  it('several recipients: 201 with one answer each, delivered to alice and stored for carol, the title first', async () => {
    const res = await runCurl(one('several'), ts.httpUrl);
    assert.equal(res.status, 201, res.body);
    const { messages } = JSON.parse(res.body) as { messages: Array<{ id: string; to: string; outcome: string }> };
    assert.deepEqual(messages.map((m) => [m.to, m.outcome]), [['alice@localhost', 'delivered'], ['carol@localhost', 'stored']]);
    const [m] = await aliceInbox.take(1, 'alice\'s copy');
    assert.equal(m!.attrs.id, messages[0]!.id);
    assert.match(m!.getChildText('body') ?? '', /^db1\n[\s\S]*Backup failed/);
  });

  it('an attachment with a body: 201, two messages, the text first and then the URL as jabber:x:oob', async () => {
    const res = await runCurl(one('attachment'), ts.httpUrl);
    assert.equal(res.status, 201, res.body);
    const { messages } = JSON.parse(res.body) as { messages: Array<{ id: string; outcome: string }> };
    assert.deepEqual(messages.map((m) => m.outcome), ['delivered', 'delivered']);
    const [text, file] = await aliceInbox.take(2, 'the text and the attachment');
    assert.equal(text!.getChildText('body'), 'Disk usage this week');
    assert.equal(file!.getChild('x', 'jabber:x:oob')?.getChildText('url'), 'https://example.org/graphs/db1.png');
  });

  it('dry run: 200 with the stanza that would be sent, and nothing arrives', async () => {
    const res = await runCurl(one('dryRun'), ts.httpUrl);
    assert.equal(res.status, 200, res.body);
    const { messages } = JSON.parse(res.body) as { messages: Array<{ to: string; stanza: string }> };
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.to, 'alice@localhost');
    assert.match(messages[0]!.stanza, /<body>Backup on db1 failed<\/body>/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(aliceInbox.list.length, 0, 'a dry run sends nothing');
  });

  it('Idempotency-Key: 201 delivered once; the retry is answered from the first answer, replayed, nothing sent twice', async () => {
    const line = one('idempotent');
    const first = await runCurl(line, ts.httpUrl);
    assert.equal(first.status, 201, first.body);
    assert.equal((JSON.parse(first.body) as { outcome: string }).outcome, 'delivered');
    const [m] = await aliceInbox.take(1, 'the first send');
    assert.equal(m!.getChildText('body'), 'Backup on db1 failed again');
    const again = await runCurl(line, ts.httpUrl);
    assert.equal(again.status, 201, again.body);
    assert.match(again.headers, /^Idempotent-Replayed: true\r?$/im);
    assert.deepEqual(JSON.parse(again.body), JSON.parse(first.body));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(aliceInbox.list.length, 0, 'the retry sent nothing');
  });

  it('tokens: minted at /tokens, both ways of sending with $TOKEN deliver, listed, revoked with $ID, then refused', async () => {
    const app = of('tokensApp');
    const mint = app.find((l) => l.startsWith('curl -X POST'));
    const list = app.find((l) => !l.includes(' -X '));
    const revoke = app.find((l) => l.startsWith('curl -X DELETE'));
    assert.ok(mint && list && revoke && app.length === 3, app.join('\n'));
    const minted = await runCurl(mint, ts.httpUrl);
    assert.equal(minted.status, 201, minted.body);
    const token = JSON.parse(minted.body) as { id: string; name: string; token: string };
    assert.equal(token.name, 'backup-job');
    const env = { TOKEN: token.token, ID: token.id };
    const uses = of('token');
    assert.equal(uses.length, 2, uses.join('\n'));
    for (const line of uses) {
      const res = await runCurl(line, ts.httpUrl, env);
      assert.equal(res.status, 201, `${line}\n${res.body}`);
      assert.equal((JSON.parse(res.body) as { outcome: string }).outcome, 'delivered');
      const [m] = await aliceInbox.take(1, line);
      assert.equal(m!.attrs.from, 'bob@localhost');
      assert.equal(m!.getChildText('body'), 'Backup on db1 failed');
    }
    const listed = await runCurl(list, ts.httpUrl, env);
    assert.equal(listed.status, 200, listed.body);
    assert.match(listed.body, new RegExp(`"id":\\s*"${token.id}"`));
    assert.match(listed.body, /backup-job/);
    assert.ok(!listed.body.includes(token.token), 'the list never shows the secret');
    const revoked = await runCurl(revoke, ts.httpUrl, env);
    assert.equal(revoked.status, 204, revoked.body);
    const refused = await runCurl(uses[0]!, ts.httpUrl, env);
    assert.equal(refused.status, 401, refused.body);
    assert.match(refused.headers, /WWW-Authenticate:[^\r\n]*Bearer realm=[^\r\n]*error="invalid_token"/i);
    assert.equal(aliceInbox.list.length, 0);
  });

  it('curl without credentials gets 401 with the challenge', async () => {
    const res = await runCurl(`curl http://localhost:5280/msg/alice -d 'x'`, ts.httpUrl);
    assert.equal(res.status, 401);
    assert.match(res.headers, /WWW-Authenticate: Basic realm="localhost\/post_msg", charset="UTF-8"/i);
  });
});
