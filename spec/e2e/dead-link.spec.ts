// A phone behind a link that dies silently: a TCP relay between client and server stops forwarding both ways
// without closing, a message is posted through post_msg (201), and stream management (XEP-0198) brings it exactly
// once: after resumption on a new connection, at the next login when the client never resumes (hibernation runs
// out), and with a second device of the account online (which Prosody 0.12 loses). Clients: a raw one, slixmpp's
// xep_0198 (Debian python3-slixmpp) and @xmpp/client 0.14 (@xmpp/stream-management with @xmpp/reconnect), which
// resumes after its socket is cut or after its own <r/> went unanswered, and falls back to a new session on <failed/>.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { xml } from '@xmpp/xml';
import { PYTHON, pythonModule, requires } from '../helpers/requires.js';
import { startTestServer, testTls, type TestServer } from '../helpers/server.js';
import { goOnline, RawClient, rawAuthenticate, rawLogin, startClient, stopClient, withTimeout } from '../host/c2s/helpers.js';
import { basic, post, waitFor } from '../helpers/load.js';
import type { Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import type { EventEmitter } from 'node:events';

const SM = "xmlns='urn:xmpp:sm:3'";
const SLIX = fileURLToPath(new URL('./slixmpp_smacks.py', import.meta.url));

/**
 * A TCP relay to `target`; each pipe can go silent (nothing forwarded either way, nothing closed) or be cut.
 * `swallowed` counts the bytes from the server the client never got (what the client sends into the silence is
 * dropped uncounted, so a client's own <r/> does not look like the server's message entering the dead link).
 */
class Relay {
  readonly pipes: Array<{ client: net.Socket; server: net.Socket; isSilent: boolean; swallowed: number }> = [];
  private readonly server = net.createServer((client) => {
    const server = net.connect({ host: '127.0.0.1', port: this.target });
    const pipe = { client, server, isSilent: false, swallowed: 0 };
    this.pipes.push(pipe);
    client.on('data', (d) => pipe.isSilent || server.write(d));
    server.on('data', (d) => (pipe.isSilent ? (pipe.swallowed += d.length) : client.write(d)));
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    // While it forwards, a closed end closes the other; silent, it closes nothing (a dead network).
    client.on('close', () => pipe.isSilent || server.destroy());
    server.on('close', () => pipe.isSilent || client.destroy());
  });

  constructor(private readonly target: number) {}

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The newest pipe goes silent; returns it. */
  silence(): { swallowed: number } {
    const pipe = this.pipes.at(-1)!;
    pipe.isSilent = true;
    return pipe;
  }

  /** The client's side of the silent pipes is cut (its OS notices); the server's side stays silently open. */
  cutClients(): void {
    for (const p of this.pipes) if (p.isSilent) p.client.destroy();
  }

  close(): void {
    for (const p of this.pipes) {
      p.client.destroy();
      p.server.destroy();
    }
    this.server.close();
  }
}

async function authenticate(port: number, user: string, password: string): Promise<RawClient> {
  return (await rawAuthenticate(port, user, password)).raw;
}

/** A raw phone: logged in through `port`, stream management with resumption, available. */
async function phone(port: number, user: string, password: string, resource: string): Promise<{ raw: RawClient; id: string }> {
  const { raw } = await rawLogin(port, user, password, resource);
  raw.send(`<enable ${SM} resume='true'/>`);
  const id = /id="([^"]+)"/.exec((await raw.waitFor(/<enabled [^>]*\/>/, 'enabled'))[0])![1]!;
  raw.send('<presence/>');
  await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), 'own presence');
  return { raw, id };
}

async function online(port: number, user: string, password: string, resource: string): Promise<RawClient> {
  const { raw } = await rawLogin(port, user, password, resource);
  raw.send('<presence/>');
  await raw.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`), 'own presence');
  return raw;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const count = (text: string, needle: string): number => text.split(needle).length - 1;

/** The parts of @xmpp/client 0.14 that do stream management and reconnection (not in types/xmpp-client.d.ts). */
interface SmInternals {
  streamManagement: EventEmitter & { enabled: boolean; id: string; inbound: number; requestAckInterval: number; timeout: number };
  reconnect: { start(): void; stop(): void; reconnect(): Promise<void> };
}
const internals = (c: Client): SmInternals => c as unknown as SmInternals;

/** Everything an @xmpp/client receives (stanzas and nonzas, in order) and what it sends. */
function watch(c: Client): { received: Element[]; sent: Element[] } {
  const seen = { received: [] as Element[], sent: [] as Element[] };
  c.on('element', (el: Element) => seen.received.push(el));
  c.on('send', (el: Element) => seen.sent.push(el));
  return seen;
}

const isSm = (el: Element, name: string): boolean => el.name === name && el.attrs.xmlns === 'urn:xmpp:sm:3';
const isStanza = (el: Element): boolean => ['message', 'presence', 'iq'].includes(el.name);
const messagesWithId = (els: Element[], id: string): Element[] => els.filter((el) => el.name === 'message' && el.attrs.id === id);

/** An @xmpp/client phone: online through `port`, stream management with resumption enabled, available. */
async function xmppPhone(port: number, user: string, password: string, tune: (sm: SmInternals['streamManagement']) => void = () => undefined) {
  const c = await startClient({ port, username: user, password, resource: 'phone' });
  const seen = watch(c);
  const sm = internals(c).streamManagement;
  tune(sm);
  await waitFor(`${user}'s @xmpp/client to enable stream management`, () => sm.enabled, 5_000);
  assert.ok(seen.sent.some((el) => isSm(el, 'enable') && el.attrs.resume === 'true'), 'it asked for resumption');
  await goOnline(c, user);
  return { c, seen, sm };
}

/** One ping round trip: the server has read everything the client sent before it. */
const roundTrip = (c: Client): Promise<Element> => withTimeout(c.iqCaller.get(xml('ping', { xmlns: 'urn:xmpp:ping' }), 'localhost'), 'a ping round trip');

describe('dead link (XEP-0198 through a silent relay)', () => {
  let ts: TestServer;
  let relay: Relay;
  let relayPort: number;
  const raws: RawClient[] = [];
  const keep = (r: RawClient): RawClient => (raws.push(r), r);
  const send = (to: string, text: string) =>
    post(ts.httpUrl, `/msg/${to}`, { headers: { authorization: basic('bob@localhost', 'bob-pw'), 'content-type': 'text/plain' }, body: text });

  before(async () => {
    ts = await startTestServer({
      config: { modules_enabled: ['post_msg', 'smacks'], smacks: { hibernation_time: 1.5, max_ack_delay: 1 } },
      users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['carol@localhost', 'carol-pw'], ['dave@localhost', 'dave-pw'], ['erin@localhost', 'erin-pw'], ['grace@localhost', 'grace-pw']],
    });
    relay = new Relay(ts.c2sPort);
    relayPort = await relay.listen();
  });

  after(async () => {
    for (const r of raws) r.close();
    relay?.close();
    await ts?.stop();
  });

  it('never resumes: after hibernation_time the message arrives exactly once at the next login', async () => {
    const { raw: first } = await phone(relayPort, 'carol', 'carol-pw', 'phone');
    keep(first);
    relay.silence();
    const res = await send('carol', 'wait for me');
    assert.equal(res.status, 201, res.body);
    // max_ack_delay (1 s) marks the link dead, hibernation (1.5 s) runs out.
    await sleep(3200);
    const next = keep(await online(ts.c2sPort, 'carol', 'carol-pw', 'laptop'));
    await next.waitFor(/<body>wait for me<\/body>/, 'the message at the next login');
    await sleep(400);
    assert.equal(count(next.text, 'wait for me'), 0, 'exactly once');
  });

  it('never resumes, with a second device online (@xmpp/client with stream management): each gets it exactly once', async () => {
    const desk = await startClient({ port: ts.c2sPort, username: 'dave', password: 'dave-pw', resource: 'desk' });
    const deskBodies: string[] = [];
    desk.on('stanza', (el) => {
      const body = el.is('message') ? el.getChildText('body') : null;
      if (body) deskBodies.push(body);
    });
    try {
      await desk.send(xml('presence'));
      const sm = (desk as unknown as { streamManagement: { enabled: boolean } }).streamManagement;
      await withTimeout((async () => { while (!sm.enabled) await sleep(10); })(), '@xmpp/client to enable stream management');
      const { raw: first } = await phone(relayPort, 'dave', 'dave-pw', 'phone');
      keep(first);
      relay.silence();
      const res = await send('dave', 'both devices');
      assert.equal(res.status, 201, res.body);
      await sleep(3200);
      assert.deepEqual(deskBodies, ['both devices'], 'the desk got it once');
      const next = keep(await online(ts.c2sPort, 'dave', 'dave-pw', 'phone'));
      await next.waitFor(/<body>both devices<\/body>/, 'the phone gets it at its next login');
      await sleep(400);
      assert.equal(count(next.text, 'both devices'), 0, 'exactly once');
      assert.deepEqual(deskBodies, ['both devices'], 'still once at the desk');
    } finally {
      await stopClient(desk);
    }
  });

  const skipSlixmpp = requires([pythonModule('python3-slixmpp', 'slixmpp.plugins.xep_0198')]);
  it('slixmpp (xep_0198) resumes through the relay once its connection is cut: exactly once', { skip: skipSlixmpp, timeout: 60_000 }, async () => {
    const child = spawn(PYTHON, [SLIX, '--jid', 'bob@localhost/slix', '--password', 'bob-pw', '--port', String(relayPort), '--ca', testTls().cert, '--timeout', '25']);
    const events: Array<Record<string, string>> = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        events.push(JSON.parse(buffered.slice(0, i)) as Record<string, string>);
        buffered = buffered.slice(i + 1);
      }
    });
    const until = async (what: string, check: () => boolean, ms = 10_000): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`waiting for ${what}; events: ${JSON.stringify(events)}; stderr: ${stderr.slice(-1500)}`);
        await sleep(20);
      }
    };
    try {
      await until('slixmpp online with stream management', () => events.some((e) => e.event === 'ready') && events.some((e) => e.event === 'sm_enabled'));
      const pipe = relay.silence();
      const answer = post(ts.httpUrl, '/msg/bob', { headers: { authorization: basic('alice@localhost', 'alice-pw'), 'content-type': 'text/plain' }, body: 'for slixmpp' });
      await until('the message to enter the dead link', () => pipe.swallowed > 0);
      relay.cutClients();
      await until('slixmpp resumed', () => events.some((e) => e.event === 'resumed'));
      await until('the message', () => events.some((e) => e.event === 'message'));
      assert.equal((await answer).status, 201);
      await sleep(1500);
      assert.deepEqual(events.filter((e) => e.event === 'message').map((e) => e.body), ['for slixmpp'], 'exactly once');
    } finally {
      child.kill();
    }
  });

  it('@xmpp/client never resumes: after hibernation_time its <resume/> gets <failed/>, it binds anew and gets the message exactly once', async () => {
    const { c, seen, sm } = await xmppPhone(relayPort, 'grace', 'grace-pw');
    try {
      const previd = sm.id;
      relay.silence();
      const res = await send('grace', 'after hibernation');
      assert.equal(res.status, 201, res.body);
      const { id, outcome } = JSON.parse(res.body) as { id: string; outcome: string };
      // Nothing can cross the silent link, so no acknowledgement within 2 s: the message waits in offline storage.
      assert.equal(outcome, 'stored');
      // The phone's OS notices; with @xmpp/reconnect stopped (as startClient leaves it) the phone stays away.
      relay.cutClients();
      await waitFor(
        'the hibernation to run out',
        () => ts.logLines().some((l) => l.msg === 'smacks: hibernated too long; ending the session' && l.jid === 'grace@localhost/phone'),
        10_000,
      );
      const mark = seen.received.length;
      const isOnline = new Promise((resolve) => c.once('online', resolve));
      // The same client comes back: @xmpp/stream-management kept sm.id, so it tries <resume/> before binding.
      await internals(c).reconnect.reconnect();
      await withTimeout(isOnline, 'grace online again');
      assert.equal(seen.sent.filter((el) => isSm(el, 'resume')).at(-1)?.attrs.previd, previd, 'it tried to resume');
      // XEP-0198 §5: an expired session is item-not-found; the client then binds a new one and enables again.
      const failed = seen.received.slice(mark).find((el) => isSm(el, 'failed'));
      assert.ok(failed?.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), 'resumption failed with item-not-found');
      await waitFor('stream management enabled again', () => sm.enabled && sm.id !== '' && sm.id !== previd, 5_000);
      await goOnline(c, 'grace');
      await waitFor('the message at the next login', () => messagesWithId(seen.received, id).length > 0, 5_000);
      await roundTrip(c);
      await sleep(400);
      assert.equal(messagesWithId(seen.received, id).length, 1, 'exactly once');
      assert.ok(messagesWithId(seen.received, id)[0]!.getChild('delay', 'urn:xmpp:delay'), 'from offline storage, with its delay');
      assert.deepEqual(seen.received.slice(mark).filter((el) => el.name === 'message').map((el) => el.attrs.id), [id], 'no other message');
    } finally {
      await stopClient(c);
    }
  });

  // A raw client never answers the server's <r/>: on a 1.5 s hibernation it would have 2.5 s (max_ack_delay and
  // hibernation_time) from login to <resume/>, which a loaded machine can miss.
  describe('resuming (hibernation_time 30 s: the resumption never races its end)', () => {
    let ts30: TestServer;
    let relay30: Relay;
    let relay30Port: number;
    const send30 = (to: string, text: string) =>
      post(ts30.httpUrl, `/msg/${to}`, { headers: { authorization: basic('bob@localhost', 'bob-pw'), 'content-type': 'text/plain' }, body: text });

    before(async () => {
      ts30 = await startTestServer({
        config: { modules_enabled: ['post_msg', 'smacks'], smacks: { hibernation_time: 30, max_ack_delay: 1 } },
        users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'bob-pw'], ['erin@localhost', 'erin-pw'], ['frank@localhost', 'frank-pw'], ['heidi@localhost', 'heidi-pw']],
      });
      relay30 = new Relay(ts30.c2sPort);
      relay30Port = await relay30.listen();
    });

    after(async () => {
      relay30?.close();
      await ts30?.stop();
    });

    it('resumes directly after the relay went silent: the posted message arrives exactly once', async () => {
      const { raw: first, id } = await phone(relay30Port, 'alice', 'alice-pw', 'phone');
      keep(first);
      const pipe = relay30.silence();
      const answer = send30('alice', 'through the dead link');
      // The server wrote it into the silent pipe.
      await withTimeout((async () => { while (pipe.swallowed === 0) await sleep(10); })(), 'the message to enter the dead link');
      const second = keep(await authenticate(ts30.c2sPort, 'alice', 'alice-pw'));
      second.send(`<resume ${SM} previd='${id}' h='1'/>`);
      await second.waitFor(/<resumed [^>]*\/>/, 'resumed');
      const got = await second.waitFor(/<body>through the dead link<\/body>/, 'the message after resumption');
      assert.ok(got);
      const res = await answer;
      assert.equal(res.status, 201, res.body);
      await sleep(300);
      assert.equal(count(second.text, 'through the dead link'), 0, 'exactly once');
    });

    it('resumes and acknowledges: exactly once, also at a later login', async () => {
      const { raw: first, id } = await phone(relay30Port, 'erin', 'erin-pw', 'phone');
      keep(first);
      const pipe = relay30.silence();
      const answer = send30('erin', 'once only');
      await withTimeout((async () => { while (pipe.swallowed === 0) await sleep(10); })(), 'the message to enter the dead link');
      const second = keep(await authenticate(ts30.c2sPort, 'erin', 'erin-pw'));
      second.send(`<resume ${SM} previd='${id}' h='1'/>`);
      const resumed = await second.waitFor(/<resumed [^>]*\/>([\s\S]*<body>once only<\/body>[\s\S]*?<\/message>)/, 'resumed and the message');
      // The client acknowledges what it got since <resumed/> (the own presence was acknowledged by h='1').
      const sent = 1 + resumed[1]!.match(/<(message|presence|iq)[ >]/g)!.length;
      second.send(`<a ${SM} h='${sent}'/>`);
      assert.equal((await answer).status, 201);
      await sleep(300);
      assert.equal(second.isClosed, false);
      const later = keep(await online(ts30.c2sPort, 'erin', 'erin-pw', 'tablet'));
      await sleep(500);
      assert.equal(count(later.text + second.text, 'once only'), 0, 'not stored for later, not sent again');
    });

    /**
     * The phone's link goes silent, a message is posted to it, `notice` lets the client find out, and @xmpp/reconnect
     * (1 s after the socket closed) opens a new connection on which @xmpp/stream-management sends <resume/>.
     */
    async function resumesOnce(user: string, text: string, opts: { tune?: (sm: SmInternals['streamManagement']) => void; notice: () => void }) {
      const { c, seen, sm } = await xmppPhone(relay30Port, user, `${user}-pw`, opts.tune);
      try {
        internals(c).reconnect.start();
        const previd = sm.id;
        const pipe = relay30.silence();
        const answer = post(ts30.httpUrl, `/msg/${user}`, { headers: { authorization: basic('bob@localhost', 'bob-pw'), 'content-type': 'text/plain' }, body: text });
        await waitFor('the message to enter the dead link', () => pipe.swallowed > 0, 5_000);
        opts.notice();
        await waitFor(`${user}'s @xmpp/client to resume`, () => seen.received.some((el) => isSm(el, 'resumed')), 20_000);
        const resume = seen.sent.find((el) => isSm(el, 'resume'));
        assert.equal(resume?.attrs.previd, previd, 'it resumed the session it had');
        const res = await answer;
        assert.equal(res.status, 201, res.body);
        const { id, outcome } = JSON.parse(res.body) as { id: string; outcome: string };
        await waitFor('the message after resumption', () => messagesWithId(seen.received, id).length > 0, 5_000);
        const h = sm.inbound;
        await waitFor(`the client to acknowledge h=${h}`, () => seen.sent.some((el) => isSm(el, 'a') && el.attrs.h === String(h)), 5_000);
        await roundTrip(c);
        // The <resume h/> acknowledged what the client had got (its own presence): only the lost message is resent,
        // once, stamped with when it was first sent; then the ping's result.
        const afterResumed = seen.received.slice(seen.received.findIndex((el) => isSm(el, 'resumed')) + 1).filter(isStanza);
        assert.deepEqual(afterResumed.map((el) => [el.name, el.attrs.type, el.attrs.id ?? null]).slice(0, 1), [['message', 'chat', id]]);
        assert.deepEqual(afterResumed.slice(1).map((el) => [el.name, el.attrs.type]), [['iq', 'result']], 'nothing else resent');
        assert.ok(afterResumed[0]!.getChild('delay', 'urn:xmpp:delay'), 'resent with a delay (XEP-0203)');
        // Acknowledged after resumption: a stored copy is taken back, so a later login of the account does not get it.
        const later = await online(relay30Port, user, `${user}-pw`, 'tablet');
        try {
          await sleep(500);
          assert.equal(count(later.text, text), 0, 'not stored for later');
        } finally {
          later.close();
        }
        assert.equal(messagesWithId(seen.received, id).length, 1, 'exactly once');
        return { outcome };
      } finally {
        internals(c).reconnect.stop();
        await stopClient(c);
      }
    }

    it('resumes once its socket is cut (the OS noticed the dead link): the message arrives exactly once', async () => {
      await resumesOnce('frank', 'cut, then resumed', { notice: () => relay30.cutClients() });
    });

    it('notices the dead link itself (its <r/> unanswered for sm.timeout), then resumes: exactly once', async () => {
      const { outcome } = await resumesOnce('heidi', 'noticed, then resumed', {
        // Defaults are an <r/> after 30 s of quiet and 60 s for its <a/>; shorter here until it resumed. It then
        // sends </stream:stream> into the silence, waits its 2 s for the server's, and closes its socket (the relay
        // answers the FIN). Had that </stream:stream> reached us, the session would have ended (XEP-0198 §7, Stream
        // Closure: a cleanly closed stream ends the session) and its <resume/> would get <failed/>: @xmpp/client
        // closes cleanly a stream it means to resume, so on a link only slow it falls back to a new session.
        tune: (sm) => {
          Object.assign(sm, { requestAckInterval: 500, timeout: 1_500 });
          sm.once('resumed', () => Object.assign(sm, { requestAckInterval: 30_000, timeout: 60_000 }));
        },
        notice: () => undefined,
      });
      // Its own timers keep it away more than the 2 s post_msg waits for an acknowledgement: the 201 said stored,
      // and the later login above showed the stored copy was taken back when the resent message was acknowledged.
      assert.equal(outcome, 'stored');
    });
  });
});
