// The Converse.js web client in Debian's Chromium (playwright-core, no downloaded browser), on the default modules a
// newcomer gets: the page at /conversejs logs in over the server's WebSocket, shows on screen a message posted with
// post_msg by an account outside the roster, and asks nothing of any other site. The screenshot is a test artifact
// in spec-artifacts/ (or $XMPPD_SPEC_ARTIFACTS), which nothing deletes after the run; its path is printed. A room
// (XEP-0045, the embedded default's conference.localhost) opened through Converse's URL fragment shows a post too,
// and a file picked in a chat uploads to upload.localhost (XEP-0363, another origin: CORS and the page's CSP).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { xml, type Client } from '@xmpp/client';
import { HOST_KEYS } from '../../lib/host/core/config.js';
import { program, requires } from '../helpers/requires.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { nextStanza, startClient, stopClient } from '../host/c2s/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
// Not XMPPD_SPEC_LOG_DIR: scripts/check-log-secrets.ts deletes that folder after a green run.
const ARTIFACTS = process.env.XMPPD_SPEC_ARTIFACTS ?? fileURLToPath(new URL('../../spec-artifacts/', import.meta.url));
const skip = requires([program('chromium', CHROMIUM)]);
const ROOM = 'ops@conference.localhost';

describe('Converse.js in Chromium', { skip }, () => {
  let ts: TestServer;
  let browser: Browser;
  let carol: Client | undefined;
  const artifacts = ARTIFACTS;

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    ts = await startTestServer({
      // What `npm start` loads without a config file (README's quick start).
      // The embedded default's components too (rooms, file sharing).
      config: { modules_enabled: HOST_KEYS.modules_enabled!.default, components: { 'conference.localhost': { module: 'muc' }, 'upload.localhost': { module: 'http_file_share' } } },
      users: [
        ['alice@localhost', 'alice-secret'],
        ['bob@localhost', 'bob-secret'],
        ['carol@localhost', 'carol-secret'],
      ],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Playwright gives every launch a fresh temporary profile (it refuses --user-data-dir here).
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    if (carol) await stopClient(carol);
    await browser?.close();
    await ts?.stop();
  });

  it('the root page links to the web client, the API and connection discovery', async () => {
    const res = await fetch(`${ts.httpUrl}/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /href="\/conversejs"/);
    assert.match(html, /href="\/msg"/);
    // Nothing answers at /.well-known itself: the link goes to the document there.
    assert.match(html, /href="\/\.well-known\/host-meta"/);
  });

  it("the page's Content-Security-Policy lets it reach this server's file-sharing component and no other site", async () => {
    const res = await fetch(`${ts.httpUrl}/conversejs`);
    const csp = res.headers.get('content-security-policy') ?? '';
    const upload = `http://upload.localhost:${new URL(ts.httpUrl).port}`;
    for (const directive of ['connect-src', 'img-src', 'media-src']) {
      const sources = csp.split(';').map((d) => d.trim().split(/\s+/)).find((d) => d[0] === directive)?.slice(1) ?? [];
      assert.ok(sources.includes("'self'") && sources.includes(upload), `${directive}: ${sources.join(' ')}`);
      assert.ok(sources.every((src) => ["'self'", upload, 'data:', 'blob:'].includes(src)), `${directive}: ${sources.join(' ')}`);
    }
    assert.match(csp, /default-src 'self'/);
  });

  it('logs in over the WebSocket, shows a message posted with curl by a sender outside the roster, and requests nothing outside this server', { timeout: 90_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const origin = new URL(ts.httpUrl).origin;
    const outside: string[] = [];
    page.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(origin) && !url.startsWith(origin.replace('http', 'ws')) && !url.startsWith('data:') && !url.startsWith('blob:')) outside.push(url);
    });
    const sockets: string[] = [];
    const received: string[] = [];
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framereceived', (frame) => received.push(String(frame.payload)));
    });
    try {
      await page.goto(`${ts.httpUrl}/conversejs`);
      await page.locator('input[name="jid"]').fill('alice@localhost', { timeout: 30_000 });
      await page.locator('input[name="password"]').fill('alice-secret');
      await page.locator('button[type="submit"]').first().click();
      // Logged in: the roster / controlbox shows the account.
      await page.getByText('alice@localhost').first().waitFor({ timeout: 30_000 });
      // Available, so the message is delivered now rather than kept offline.
      await waitForSession(ts, 'alice@localhost');

      const res = await fetch(`${ts.httpUrl}/msg/alice@localhost`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from('bob@localhost:bob-secret').toString('base64')}`, 'Content-Type': 'text/plain' },
        body: 'Deploy finished: all green',
      });
      assert.equal(res.status, 201, await res.text());
      // bob is not in alice's roster: his chat comes forward by itself, and the text is on screen (not only in the DOM).
      const shown = page.locator('converse-chat-message').getByText('Deploy finished: all green');
      await shown.first().waitFor({ state: 'visible', timeout: 15_000 });
      assert.ok(await shown.first().isVisible(), 'the message text is visible');
      await page.getByText('Would you like to add bob@localhost as a contact?').waitFor({ state: 'visible', timeout: 5_000 });
      assert.ok(received.some((f) => /^<message xmlns="jabber:client" from="bob@localhost"/.test(f) && f.includes('<body>Deploy finished: all green</body>')), 'the page received the message');

      const shot = join(artifacts, 'conversejs.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
      assert.deepEqual(sockets, [`${origin.replace('http', 'ws')}/xmpp-websocket`]);
      assert.deepEqual(outside, [], 'the page asked other sites');
    } catch (err) {
      const shot = join(artifacts, 'conversejs-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      console.log(`# failure screenshot: ${shot}`);
      throw err;
    } finally {
      await context.close();
    }
  });

  it('opens a room from the URL fragment and shows a message posted there with curl under the poster\'s nick', { timeout: 90_000 }, async () => {
    // carol creates the room (an open instant room, XEP-0045 §10.1.2) and stays its occupant.
    carol = await startClient({ port: ts.c2sPort, username: 'carol', password: 'carol-secret' });
    const entered = nextStanza(carol, (el) => el.is('presence') && el.attrs.from === `${ROOM}/carol`, 'carol in the room');
    await carol.send(xml('presence', { to: `${ROOM}/carol` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await entered;
    await carol.iqCaller.request(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));

    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const received: string[] = [];
    page.on('websocket', (ws) => ws.on('framereceived', (frame) => received.push(String(frame.payload))));
    try {
      await page.goto(`${ts.httpUrl}/conversejs`);
      await logIn(page, ts, 'alice@localhost', 'alice-secret');
      // Converse's own route (#converse/room?jid=…, handled on hashchange): the same as following a room link.
      await page.evaluate(`location.hash = 'converse/room?jid=${ROOM}'`);
      // Converse asks for a nick unless it knows one.
      const nick = page.locator('input[name="nick"]');
      const joinedSelf = () => received.some((f) => f.startsWith('<presence') && f.includes(`from="${ROOM}/alice"`));
      const deadline = Date.now() + 20_000;
      while (!joinedSelf() && Date.now() < deadline) {
        if (await nick.isVisible().catch(() => false)) {
          await nick.fill('alice');
          await page.locator('input[name="join"]').click();
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(joinedSelf(), 'alice entered the room');

      const res = await fetch(`${ts.httpUrl}/msg/${ROOM}`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from('bob@localhost:bob-secret').toString('base64')}`, 'Content-Type': 'text/plain' },
        body: 'Disk at 91% on db1',
      });
      const answer = await res.text();
      assert.equal(res.status, 201, answer);
      assert.match(answer, /posted/);
      const shown = page.locator('converse-muc converse-chat-message').getByText('Disk at 91% on db1');
      await shown.first().waitFor({ state: 'visible', timeout: 15_000 });
      assert.ok(await shown.first().isVisible(), 'the message text is visible in the room');
      assert.ok(received.some((f) => f.startsWith('<message') && f.includes(`from="${ROOM}/bob"`) && f.includes('type="groupchat"') && f.includes('<body>Disk at 91% on db1</body>')), 'the page received the groupchat message from bob\'s nick');
      // Converse shows the sender's nick beside the text.
      await page.locator('converse-muc converse-chat-message').filter({ hasText: 'Disk at 91% on db1' }).getByText('bob').first().waitFor({ state: 'visible', timeout: 5_000 });

      const shot = join(artifacts, 'conversejs-room.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
    } catch (err) {
      const shot = join(artifacts, 'conversejs-room-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      console.log(`# failure screenshot: ${shot}`);
      throw err;
    } finally {
      await context.close();
    }
  });
  it('uploads a file through Converse (XEP-0363 on upload.localhost, another origin) and sends its URL to a contact', { timeout: 90_000 }, async () => {
    const bobClient = await startClient({ port: ts.c2sPort, username: 'bob', password: 'bob-secret', resource: 'upload-test' });
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const refused: string[] = [];
    page.on('console', (m) => /Content Security Policy|CORS/i.test(m.text()) && refused.push(m.text()));
    try {
      await bobClient.send(xml('presence'));
      const got = nextStanza(bobClient, (el) => el.is('message') && el.attrs.from?.startsWith('alice@localhost/') === true && el.getChildText('body') !== null, 'the upload link', 45_000);
      got.catch(() => undefined);
      await page.goto(`${ts.httpUrl}/conversejs`);
      await logIn(page, ts, 'alice@localhost', 'alice-secret');
      // The route makes the chat (bob is listed among unsaved contacts); the room the earlier test bookmarked, which
      // Converse joins again at login, stays in front until bob's entry is clicked.
      await page.evaluate(`location.hash = 'converse/chat?jid=bob@localhost'`);
      await page.locator('converse-roster').getByText('bob@localhost').first().click({ timeout: 30_000 });
      // The toolbar offers uploads once Converse found the service in the server's disco items.
      const input = page.locator('converse-chat converse-chat-toolbar input.fileupload');
      await input.waitFor({ state: 'attached', timeout: 30_000 });
      await input.setInputFiles({ name: 'report.txt', mimeType: 'text/plain', buffer: Buffer.from('all green\n') });
      const message = await got;
      const url = message.getChildText('body') ?? '';
      const port = new URL(ts.httpUrl).port;
      assert.match(url, new RegExp(`^http://upload\\.localhost:${port}/file_share/[\\w-]+/report\\.txt$`));
      assert.equal(message.getChild('x', 'jabber:x:oob')?.getChildText('url'), url);
      // The page reads the file back from the other origin (CORS and its CSP allow it).
      const text = await page.evaluate(`fetch(${JSON.stringify(url)}).then((r) => r.text())`);
      assert.equal(text, 'all green\n');
      assert.deepEqual(refused, []);
      const shot = join(artifacts, 'conversejs-upload.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
    } catch (err) {
      const shot = join(artifacts, 'conversejs-upload-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      console.log(`# failure screenshot: ${shot}`);
      throw err;
    } finally {
      await context.close();
      await stopClient(bobClient);
    }
  });
});

/** Log in through Converse's form and wait until the account is available on the server. */
async function logIn(page: Page, ts: TestServer, jid: string, password: string): Promise<void> {
  await page.locator('input[name="jid"]').fill(jid, { timeout: 30_000 });
  await page.locator('input[name="password"]').fill(password);
  await page.locator('button[type="submit"]').first().click();
  await page.getByText(jid).first().waitFor({ timeout: 30_000 });
  await waitForSession(ts, jid);
}

/** The account has an available resource on the server (its initial presence was processed). */
async function waitForSession(ts: TestServer, bare: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (ts.logText().includes('"resource bound"') && ts.logText().includes(bare)) {
      await new Promise((r) => setTimeout(r, 500));
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${bare} never bound a resource`);
}
