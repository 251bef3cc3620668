// Blocking Command (XEP-0191): get, block, unblock (all) with pushes to interested resources; stanzas from a
// blocked JID (§3.5) and to one (§3.6); post_msg's answer; attacker inputs; deleted with the account.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJid } from '../../../lib/host/api.js';
import { isBlockedBy } from '../../../lib/host/modules/blocklist.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { rawLogins, type RawClient } from '../c2s/helpers.js';

const NS = 'urn:xmpp:blocking';
const jid = (s: string) => {
  const p = parseJid(s);
  assert.ok(p.ok);
  return p.jid;
};

describe('blocklist module', () => {
  describe('isBlockedBy()', () => {
    it('matches full JID, bare JID, domain/resource and domain (XEP-0016 §2.1)', () => {
      assert.ok(isBlockedBy(new Set(['bob@example.org']), jid('bob@example.org/phone')));
      assert.ok(isBlockedBy(new Set(['bob@example.org/phone']), jid('bob@example.org/phone')));
      assert.ok(!isBlockedBy(new Set(['bob@example.org/phone']), jid('bob@example.org/desk')));
      assert.ok(isBlockedBy(new Set(['example.org']), jid('anyone@example.org/x')));
      assert.ok(isBlockedBy(new Set(['example.org/bot']), jid('example.org/bot')));
      assert.ok(!isBlockedBy(new Set(['example.org']), jid('bob@example.net')));
    });
  });

  describe('on the wire', () => {
    let ts: TestServer;
    const { login, closeAll } = rawLogins(() => ts.c2sPort);
    const online = async (c: RawClient): Promise<void> => {
      c.send('<presence/>');
      await c.waitFor(/<presence[^>]*>/);
    };
    let a1: RawClient;
    let a2: RawClient;
    let b: RawClient;

    before(async () => {
      ts = await startTestServer({
        config: { modules_enabled: ['post_msg', 'blocklist'], blocklist: { max_items: 5000 } },
        users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['carol@localhost', 'carol-pw']],
      });
      a1 = await login('alice', 'one');
      a2 = await login('alice', 'two');
      b = await login('bob', 'phone');
      for (const c of [a1, a2, b]) await online(c);
    });
    after(async () => {
      closeAll();
      await ts?.stop();
    });

    it('gives the list, blocks, and pushes the block to every resource that asked for the list', async () => {
      for (const [c, id] of [[a1, 'g1'], [a2, 'g2']] as const) {
        c.send(`<iq type='get' id='${id}'><blocklist xmlns='${NS}'/></iq>`);
        await c.waitFor(new RegExp(`<iq type="result" id="${id}"[^>]*><blocklist xmlns="${NS}"/></iq>`));
      }
      a1.send(`<iq type='set' id='b1'><block xmlns='${NS}'><item jid='Bob@LocalHost'/></block></iq>`);
      await a1.waitFor(/<iq type="result" id="b1"/);
      for (const c of [a1, a2]) await c.waitFor(new RegExp(`<iq type="set" id="push-[^"]+" to="alice@localhost/(one|two)"><block xmlns="${NS}"><item jid="bob@localhost"/></block></iq>`));
      a2.send(`<iq type='get' id='g3'><blocklist xmlns='${NS}'/></iq>`);
      await a2.waitFor(new RegExp(`<iq type="result" id="g3"[^>]*><blocklist xmlns="${NS}"><item jid="bob@localhost"/></blocklist>`));
    });

    it('refuses messages and iq requests from the blocked JID with service-unavailable, drops its presence', async () => {
      b.send("<message to='alice@localhost' id='m1' type='chat'><body>hi</body></message>");
      await b.waitFor(/<message [^>]*id="m1"[^>]*type="error"[^>]*>.*?<service-unavailable /s);
      b.send("<iq type='get' id='p1' to='alice@localhost/one'><ping xmlns='urn:xmpp:ping'/></iq>");
      await b.waitFor(/<iq [^>]*id="p1"[^>]*>.*?<service-unavailable /s);
      b.send("<presence to='alice@localhost'/>");
      b.send("<message to='alice@localhost/two' id='m2' type='headline'><body>quiet</body></message>");
      // carol is not blocked: her message arrives, and nothing of bob's arrived before it.
      const c = await login('carol', 'desk');
      c.send("<message to='alice@localhost/one' id='c1' type='chat'><body>from carol</body></message>");
      await a1.waitFor(/<message [^>]*id="c1"/);
      assert.doesNotMatch(a1.text + a2.text, /bob@localhost/);
    });

    it('refuses the blocker\'s own message to the blocked JID with not-acceptable and <blocked/>', async () => {
      a1.send("<message to='bob@localhost' id='m3' type='chat'><body>hello?</body></message>");
      await a1.waitFor(/<message [^>]*id="m3"[^>]*type="error"[^>]*>.*?<error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><text [^>]*>[^<]*<\/text><blocked xmlns="urn:xmpp:blocking:errors"\/><\/error>/s);
    });

    it('answers a post_msg message from a blocked account with 403, and from the blocker too', async () => {
      const post = (user: string, to: string) =>
        fetch(`${ts.httpUrl}/msg/${to}`, {
          method: 'POST',
          headers: { Authorization: `Basic ${Buffer.from(`${user}@localhost:${user}-pw`).toString('base64')}`, 'Content-Type': 'text/plain' },
          body: 'alert',
        });
      const fromBlocked = await post('bob', 'alice');
      assert.equal(fromBlocked.status, 403);
      assert.match(String(((await fromBlocked.json()) as { detail: string }).detail), /does not accept messages from this account/);
      const fromBlocker = await post('alice', 'bob');
      assert.equal(fromBlocker.status, 403);
      assert.match(String(((await fromBlocker.json()) as { detail: string }).detail), /blocked bob@localhost/);
    });

    it('refuses invalid JIDs, an empty block, blocking oneself and more than max_items, and stays up', async () => {
      a1.send(`<iq type='set' id='e1'><block xmlns='${NS}'><item jid='a@b@c'/></block></iq>`);
      await a1.waitFor(/<iq [^>]*id="e1"[^>]*>.*?<jid-malformed /s);
      a1.send(`<iq type='set' id='e2'><block xmlns='${NS}'><item/></block></iq>`);
      await a1.waitFor(/<iq [^>]*id="e2"[^>]*>.*?<jid-malformed /s);
      a1.send(`<iq type='set' id='e3'><block xmlns='${NS}'/></iq>`);
      await a1.waitFor(/<iq [^>]*id="e3"[^>]*>.*?<bad-request /s);
      a1.send(`<iq type='set' id='e4'><block xmlns='${NS}'><item jid='alice@localhost/two'/></block></iq>`);
      await a1.waitFor(/<iq [^>]*id="e4"[^>]*>.*?<not-acceptable /s);
      const many = Array.from({ length: 10_000 }, (_, i) => `<item jid='${i}@s'/>`).join('');
      a1.send(`<iq type='set' id='e5'><block xmlns='${NS}'>${many}</block></iq>`);
      await a1.waitFor(/<iq [^>]*id="e5"[^>]*>.*?<not-acceptable .*?A blocklist holds at most 5000 JIDs; this request has 10000/s, 'the limit', 15_000);
      a1.send(`<iq type='get' id='e6'><blocklist xmlns='${NS}'/></iq>`);
      await a1.waitFor(new RegExp(`<iq type="result" id="e6"[^>]*><blocklist xmlns="${NS}"><item jid="bob@localhost"/></blocklist>`), 'unchanged');
    });

    it('unblocks one JID, then all, with pushes; messages flow again', async () => {
      a1.send(`<iq type='set' id='b2'><block xmlns='${NS}'><item jid='spam.example'/></block></iq>`);
      await a1.waitFor(/<iq type="result" id="b2"/);
      a1.send(`<iq type='set' id='u1'><unblock xmlns='${NS}'><item jid='bob@localhost'/></unblock></iq>`);
      await a1.waitFor(/<iq type="result" id="u1"/);
      await a2.waitFor(new RegExp(`<unblock xmlns="${NS}"><item jid="bob@localhost"/></unblock>`));
      b.send("<message to='alice@localhost/one' id='m4' type='chat'><body>again</body></message>");
      await a1.waitFor(/<message [^>]*id="m4"/);
      a1.send(`<iq type='set' id='u2'><unblock xmlns='${NS}'/></iq>`);
      await a1.waitFor(/<iq type="result" id="u2"/);
      await a2.waitFor(new RegExp(`<unblock xmlns="${NS}"/>`));
      a2.send(`<iq type='get' id='g4'><blocklist xmlns='${NS}'/></iq>`);
      await a2.waitFor(new RegExp(`<iq type="result" id="g4"[^>]*><blocklist xmlns="${NS}"/>`));
    });

    it('deletes the list with the account', async () => {
      b.send(`<iq type='set' id='b9'><block xmlns='${NS}'><item jid='carol@localhost'/></block></iq>`);
      await b.waitFor(/<iq type="result" id="b9"/);
      const store = ts.server.modules.apiOf('localhost', 'blocklist')!.openStore('blocklist');
      assert.deepEqual(await store.get('bob@localhost'), ['carol@localhost']);
      await ts.server.users.delete('bob@localhost');
      assert.equal(await store.get('bob@localhost'), undefined);
      await ts.server.users.create('bob@localhost', 'bob-pw');
      const again = await login('bob', 'new');
      again.send(`<iq type='get' id='g5'><blocklist xmlns='${NS}'/></iq>`);
      await again.waitFor(new RegExp(`<iq type="result" id="g5"[^>]*><blocklist xmlns="${NS}"/>`), 'a new account starts with no list');
    });
  });
});
