// post_msg spec §5: the stanza goes through the same host events as a message the account's own
// client sends (pre-message/*, origin = the account), so carbons, archiving or blocking modules
// see it as sent by the user. The spy is a real plugin found through plugin_paths.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { basic, post } from '../helpers/load.js';

interface Seen {
  event: string;
  originType: string;
  originJid: string | undefined;
  from: string | undefined;
  to: string | undefined;
}

const SPY = `
import { StanzaError } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'lib/host/api.ts')).href)};
export function load(module) {
  const seen = (globalThis.__postMsgSpy ??= []);
  for (const event of ['pre-message/bare', 'pre-message/full']) {
    module.hook(event, ({ stanza, origin }) => {
      seen.push({ event, originType: origin.type, originJid: origin.jid, from: stanza.attrs.from, to: stanza.attrs.to });
      // A blocking module: refuse what the account sends to blocked@.
      if (stanza.attrs.to?.startsWith('blocked@')) throw new StanzaError('not-acceptable', 'blocked by the spy');
      return undefined;
    });
  }
}
`;

describe('post_msg and the host events', () => {
  let ts: TestServer;
  let dir: string;
  const seen = (): Seen[] => (globalThis as { __postMsgSpy?: Seen[] }).__postMsgSpy ?? [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spy-plugin-'));
    writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ id: 'spy', description: 'records pre-message events', main: 'spy.mjs' }));
    writeFileSync(join(dir, 'spy.mjs'), SPY);
    ts = await startTestServer({
      config: { plugin_paths: [dir], modules_enabled: ['post_msg', 'spy'] },
      users: [['bob@localhost', 'bob-events-pw'], ['alice@localhost', 'alice-events-pw'], ['blocked@localhost', 'blocked-pw']],
    });
  });
  after(async () => {
    await ts.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fires pre-message/bare with the account as origin, as for its own client', async () => {
    const res = await post(ts.httpUrl, '/msg/alice', { headers: { authorization: basic('bob@localhost', 'bob-events-pw'), 'content-type': 'text/plain' }, body: 'through the events' });
    assert.equal(res.status, 201);
    assert.deepEqual(seen().at(-1), { event: 'pre-message/bare', originType: 'local', originJid: 'bob@localhost', from: 'bob@localhost', to: 'alice@localhost' });
  });

  it('carries the resource of the credentials into origin and from', async () => {
    const res = await post(ts.httpUrl, '/msg/alice@localhost/phone', { headers: { authorization: basic('bob@localhost/ci', 'bob-events-pw'), 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(res.status, 201);
    assert.deepEqual(seen().at(-1), { event: 'pre-message/full', originType: 'local', originJid: 'bob@localhost/ci', from: 'bob@localhost/ci', to: 'alice@localhost/phone' });
  });

  it('lets a module refuse what the account sends; nothing is delivered or stored', async () => {
    const res = await post(ts.httpUrl, '/msg/blocked', { headers: { authorization: basic('bob@localhost', 'bob-events-pw'), 'content-type': 'text/plain' }, body: 'should not pass' });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}: ${res.body}`);
    assert.equal(await ts.server.storage.archive('localhost', 'offline').count('blocked@localhost'), 0);
  });
});
