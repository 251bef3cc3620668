// Real XMPP-over-WebSocket clients (RFC 7395) against the websocket module on loopback (ws://, which counts as
// secure there): @xmpp/client and stanza log in (SCRAM where they offer it, PLAIN too), bind, receive a message
// posted through post_msg, and @xmpp/client sends one to another account. Both frame the stream as RFC 7395 says
// (<open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing, one element per message) and neither needed a
// compatibility path here: a difference would be named in the spec that meets it, with the side RFC 7395 takes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { client, xml, type Client } from '@xmpp/client';
import * as stanza from 'stanza';
import type { Agent, Stanzas } from 'stanza';

type ReceivedMessage = Stanzas.ReceivedMessage;
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, stopClient, withTimeout } from '../host/c2s/helpers.js';

const ACCOUNTS: Array<[string, string]> = [
  ['alice@localhost', 'alice-secret'],
  ['bob@localhost', 'bob-secret'],
  ['carol@localhost', 'carol-secret'],
];

/** Post a message as bob through post_msg (what a script's curl does). */
async function postMessage(ts: TestServer, to: string, text: string): Promise<void> {
  const res = await fetch(`${ts.httpUrl}/msg/${to}`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from('bob@localhost:bob-secret').toString('base64')}`, 'Content-Type': 'text/plain' },
    body: text,
  });
  const answerText = await res.text();
  assert.equal(res.status, 201, answerText);
  const answer = JSON.parse(answerText) as { outcome: string };
  assert.equal(answer.outcome, 'delivered', 'the account was online over the WebSocket');
}

describe('WebSocket clients (RFC 7395)', () => {
  let ts: TestServer;
  let wsUrl: string;
  const hadWebSocket = 'WebSocket' in globalThis;

  before(async () => {
    // @xmpp/websocket uses the platform's WebSocket, which Node 20 has only behind a flag: ws stands in for it.
    if (!hadWebSocket) (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
    ts = await startTestServer({ config: { modules_enabled: ['post_msg', 'websocket'] }, users: ACCOUNTS });
    wsUrl = `${ts.httpUrl.replace('http://', 'ws://')}/xmpp-websocket`;
  });

  after(async () => {
    await ts?.stop();
    if (!hadWebSocket) delete (globalThis as { WebSocket?: unknown }).WebSocket;
  });

  describe('@xmpp/client', () => {
    /** Mechanisms the server offered, seen by the client in its <stream:features/>. */
    async function start(username: string, password: string, opts: { mechanism?: string; resource?: string; offered?: string[] } = {}): Promise<Client> {
      const credentials = async (authenticate: (c: { username: string; password: string }, m: string) => Promise<void>, mechanisms: string[]) => {
        opts.offered?.push(...mechanisms);
        // The client's own preference (SCRAM-SHA-1 first) unless a spec asks for one.
        return authenticate({ username, password }, opts.mechanism ?? mechanisms[0]!);
      };
      const c = client({ service: wsUrl, domain: 'localhost', credentials, resource: opts.resource });
      c.reconnect.stop();
      c.on('error', () => undefined);
      try {
        await withTimeout(c.start(), `${username} to come online over the WebSocket`);
      } catch (err) {
        await stopClient(c);
        throw err;
      }
      return c;
    }

    it('logs in with SCRAM-SHA-1, binds the asked resource, and receives a message posted through post_msg', async () => {
      const offered: string[] = [];
      const alice = await start('alice', 'alice-secret', { resource: 'browser', offered });
      try {
        assert.ok(offered.includes('SCRAM-SHA-1'), `SCRAM-SHA-1 offered over ws:// on loopback (got ${offered.join(', ')})`);
        assert.equal(String(alice.jid), 'alice@localhost/browser');
        await goOnline(alice, 'alice');
        const received = nextStanza(alice, (el) => el.is('message') && el.getChildText('body') !== null, 'the posted message');
        await postMessage(ts, 'alice@localhost', 'Deploy finished over ws');
        const msg = await received;
        assert.equal(msg.attrs.from, 'bob@localhost');
        assert.equal(msg.attrs.to, 'alice@localhost');
        assert.equal(msg.getChildText('body'), 'Deploy finished over ws');
      } finally {
        await stopClient(alice);
      }
    });

    it('logs in with PLAIN and sends a message to another account, who gets it from its full JID', async () => {
      const alice = await start('alice', 'alice-secret', { mechanism: 'PLAIN', resource: 'ws' });
      const carol = await start('carol', 'carol-secret', { resource: 'ws' });
      try {
        await goOnline(carol, 'carol');
        const received = nextStanza(carol, (el) => el.is('message') && el.getChildText('body') !== null, 'alice\'s message at carol');
        await alice.send(xml('message', { to: 'carol@localhost', type: 'chat' }, xml('body', {}, 'hello carol, from a WebSocket')));
        const msg = await received;
        assert.equal(msg.attrs.from, 'alice@localhost/ws');
        assert.equal(msg.getChildText('body'), 'hello carol, from a WebSocket');
      } finally {
        await stopClient(alice);
        await stopClient(carol);
      }
    });

    it('is refused with not-authorized for a wrong password', async () => {
      await assert.rejects(start('alice', 'wrong'), /not-authorized/);
    });
  });

  describe('stanza', () => {
    /** stanza's mechanisms other than PLAIN, disabled to make it use PLAIN. */
    const NOT_PLAIN = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'X-OAUTH2', 'OAUTHBEARER', 'EXTERNAL', 'ANONYMOUS'];

    /** A bound session; `mechanism` is what the client chose, read from its <auth/>. */
    async function start(jid: string, password: string, opts: { plainOnly?: boolean } = {}): Promise<{ agent: Agent; mechanism: () => string | undefined }> {
      // The endpoint is given, so stanza does no XEP-0156 lookup over https at the domain.
      const agent = stanza.createClient({ jid, password, resource: 'stanza', transports: { websocket: wsUrl, bosh: false } });
      if (opts.plainOnly) for (const name of NOT_PLAIN) agent.sasl.disable(name);
      let mechanism: string | undefined;
      agent.on('raw:outgoing', (data) => {
        mechanism ??= /<auth [^>]*mechanism=["']([^"']+)["']/.exec(data)?.[1];
      });
      const bound = new Promise<void>((resolve, reject) => {
        agent.on('session:started', () => resolve());
        agent.on('auth:failed', () => reject(new Error('auth failed')));
        agent.on('stream:error', (err) => reject(new Error(`stream error ${JSON.stringify(err)}`)));
      });
      agent.connect();
      try {
        await withTimeout(bound, `${jid} to start a session with stanza`);
      } catch (err) {
        agent.disconnect();
        throw err;
      }
      return { agent, mechanism: () => mechanism };
    }

    /** Close as RFC 7395 §3.6 says: the client's <close/> is answered with the server's before the socket goes. */
    async function stop(agent: Agent): Promise<void> {
      let answered = false;
      agent.on('raw:incoming', (data) => {
        if (/^<close [^>]*xmlns=["']urn:ietf:params:xml:ns:xmpp-framing["']/.test(data)) answered = true;
      });
      const ended = new Promise<void>((resolve) => agent.on('disconnected', () => resolve()));
      agent.disconnect();
      await withTimeout(ended, 'stanza to disconnect', 3_000);
      assert.ok(answered, 'the server answered <close/> with <close/> (RFC 7395 §3.6)');
    }

    for (const [label, plainOnly] of [['SCRAM', false], ['PLAIN', true]] as const) {
      it(`logs in with ${label}, binds, and receives a message posted through post_msg`, async () => {
        const { agent, mechanism } = await start('alice@localhost', 'alice-secret', { plainOnly });
        try {
          if (plainOnly) assert.equal(mechanism(), 'PLAIN');
          else assert.match(mechanism() ?? '', /^SCRAM-SHA-/, 'stanza chose SCRAM, offered over ws:// on loopback');
          assert.match(agent.jid, /^alice@localhost\/.+/);
          // Available: the server echoes the initial presence to the session (RFC 6121 §4.2.2) before delivering.
          const available = new Promise<void>((resolve) => agent.on('presence', (p) => p.from === agent.jid && resolve()));
          agent.sendPresence();
          await withTimeout(available, 'alice\'s own presence back');
          const received = new Promise<ReceivedMessage>((resolve) => agent.on('message', (m) => m.body !== undefined && resolve(m)));
          await postMessage(ts, 'alice@localhost', `Deploy finished (${label})`);
          const msg = await withTimeout(received, 'the posted message at stanza');
          assert.equal(msg.from, 'bob@localhost');
          assert.equal(msg.body, `Deploy finished (${label})`);
        } finally {
          await stop(agent);
        }
      });
    }
  });
});

