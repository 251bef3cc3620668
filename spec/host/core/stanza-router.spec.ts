// Stanza routing as events (Prosody's stanza_router): event names, pre-events, bounces per RFC 6120 §8.3.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { xml } from '@xmpp/xml';
import { EventBus } from '../../../lib/host/core/events.js';
import { StanzaRouter, eventNames } from '../../../lib/host/core/stanza-router.js';
import { errorReply } from '../../../lib/host/util/stanza.js';
import { StanzaError } from '../../../lib/host/util/errors.js';
import type { Origin, Stanza, StanzaEvent } from '../../../lib/host/api.js';

function setup(): { router: StanzaRouter; bus: EventBus<StanzaEvent>; globalBus: EventBus<unknown>; fired: string[] } {
  const bus = new EventBus<StanzaEvent>();
  const globalBus = new EventBus<unknown>();
  const fired: string[] = [];
  const wrapped = new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop === 'fire') return (name: string, e: StanzaEvent) => (fired.push(name), target.fire(name, e));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const router = new StanzaRouter({ bus: (d) => (d === 'localhost' ? wrapped : undefined), globalBus, log: pino({ level: 'silent' }) });
  return { router, bus, globalBus, fired };
}

function clientOrigin(sent: Stanza[]): Origin {
  return { type: 'c2s', host: 'localhost', jid: 'bob@localhost/phone', send: (s) => sent.push(s) };
}

describe('StanzaRouter', () => {
  describe('#route()', () => {
    it('fires pre-message/bare on the sender host, then message/bare on the recipient host', async () => {
      const { router, bus, fired } = setup();
      // A pre-event is fired only when something listens to it (a chain without handlers costs a promise per stanza).
      bus.add('pre-message/bare', () => undefined);
      bus.add('message/bare', () => 'delivered');
      const result = await router.route(xml('message', { to: 'Alice@LocalHost', type: 'chat' }), clientOrigin([]));
      assert.equal(result, 'delivered');
      assert.deepEqual(fired, ['pre-message/bare', 'message/bare']);
    });

    it('normalises the to address before handlers see it', async () => {
      const { router, bus } = setup();
      let seen = '';
      bus.add('message/full', (e) => (seen = e.stanza.attrs.to!));
      await router.route(xml('message', { to: 'ALICE@localhost/Phone' }), clientOrigin([]));
      assert.equal(seen, 'alice@localhost/Phone');
    });

    it('lets a pre- handler claim a stanza (blocking modules)', async () => {
      const { router, bus, fired } = setup();
      bus.add('pre-message/bare', () => 'discarded');
      assert.equal(await router.route(xml('message', { to: 'alice@localhost' }), clientOrigin([])), 'discarded');
      assert.deepEqual(fired, ['pre-message/bare']);
    });

    it('fires iq-get/host/<xmlns>:<name> for an iq to the server', async () => {
      const { router, bus, fired } = setup();
      bus.add('pre-iq/host', () => undefined);
      bus.add('iq-get/host/urn:xmpp:ping:ping', () => true);
      await router.route(xml('iq', { to: 'localhost', type: 'get', id: '1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), clientOrigin([]));
      assert.deepEqual(fired, ['pre-iq/host', 'iq-get/host/urn:xmpp:ping:ping']);
    });

    it('uses to_type self for an iq without to (RFC 6120 §10.3.3)', () => {
      const iq = xml('iq', { type: 'get', id: 'r' }, xml('query', { xmlns: 'jabber:iq:roster' }));
      assert.deepEqual(eventNames(iq, 'self'), ['iq-get/self/jabber:iq:roster:query', 'iq/self/jabber:iq:roster:query', 'iq/self']);
    });

    it('bounces service-unavailable for an unclaimed iq get', async () => {
      const { router } = setup();
      const sent: Stanza[] = [];
      await router.route(xml('iq', { to: 'localhost', type: 'get', id: 'q1', from: 'bob@localhost/phone' }, xml('query', { xmlns: 'urn:example' })), clientOrigin(sent));
      assert.equal(sent.length, 1);
      const reply = sent[0]!;
      assert.equal(reply.attrs.type, 'error');
      assert.equal(reply.attrs.id, 'q1');
      assert.equal(reply.attrs.to, 'bob@localhost/phone');
      assert.equal(reply.attrs.from, 'localhost');
      assert.ok(reply.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    });

    it('never answers an error with an error', async () => {
      const { router } = setup();
      const sent: Stanza[] = [];
      await router.route(xml('iq', { to: 'localhost', type: 'error', id: 'x' }), clientOrigin(sent));
      assert.equal(sent.length, 0);
    });

    it('rejects with remote-server-not-found for a domain not served, when the origin cannot take a bounce', async () => {
      const { router } = setup();
      await assert.rejects(router.route(xml('message', { to: 'a@example.org' }), { type: 'host', host: 'localhost' }), (err) => err instanceof StanzaError && err.condition === 'remote-server-not-found');
    });

    it('offers a stanza for a domain not served to route/remote on the global bus, which may claim it', async () => {
      const { router, bus, globalBus, fired } = setup();
      bus.add('pre-message/bare', () => undefined);
      const seen: StanzaEvent[] = [];
      globalBus.add('route/remote', (e) => (seen.push(e as StanzaEvent), 'delivered'));
      const origin = clientOrigin([]);
      const stanza = xml('message', { to: 'Alice@Example.org', from: 'bob@localhost/phone' });
      assert.equal(await router.route(stanza, origin), 'delivered');
      // The sender's pre-event still runs first (blocking, carbons); nothing fires on a local bus for the remote domain.
      assert.deepEqual(fired, ['pre-message/bare']);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.stanza, stanza);
      assert.equal(seen[0]!.origin, origin);
      assert.equal(seen[0]!.host, 'example.org');
      assert.equal(stanza.attrs.to, 'alice@example.org');
    });

    it('does not fire route/remote for a served domain', async () => {
      const { router, bus, globalBus } = setup();
      let remote = 0;
      globalBus.add('route/remote', () => ++remote);
      bus.add('message/bare', () => 'delivered');
      assert.equal(await router.route(xml('message', { to: 'alice@localhost' }), clientOrigin([])), 'delivered');
      assert.equal(remote, 0);
    });

    it('bounces remote-server-not-found to the sender when route/remote is unclaimed', async () => {
      const { router, globalBus } = setup();
      let offered = 0;
      globalBus.add('route/remote', () => void offered++);
      const sent: Stanza[] = [];
      const result = await router.route(xml('message', { to: 'alice@example.org', from: 'bob@localhost/phone', id: 'm1' }, xml('body', {}, 'hi')), clientOrigin(sent));
      assert.equal(result, undefined);
      assert.equal(offered, 1);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.attrs.type, 'error');
      assert.equal(sent[0]!.attrs.to, 'bob@localhost/phone');
      assert.ok(sent[0]!.getChild('error')?.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    });

    it('answers jid-malformed for an invalid to', async () => {
      const { router } = setup();
      await assert.rejects(router.route(xml('message', { to: 'a@b@c' }), { type: 'host', host: 'localhost' }), (err) => err instanceof StanzaError && err.condition === 'jid-malformed');
    });

    it('turns a crashing handler into internal-server-error', async () => {
      const { router, bus } = setup();
      bus.add('message/bare', () => {
        throw new TypeError('bug');
      });
      await assert.rejects(router.route(xml('message', { to: 'alice@localhost' }), { type: 'host', host: 'localhost' }), (err) => err instanceof StanzaError && err.condition === 'internal-server-error');
    });
  });

  describe('errorReply()', () => {
    it('swaps the addresses and adds the condition (RFC 6120 §8.3)', () => {
      const reply = errorReply(xml('message', { from: 'a@x/r', to: 'b@x', id: '7' }, xml('body', {}, 'hi')), new StanzaError('item-not-found', 'gone'));
      assert.equal(reply.toString(), '<message from="b@x" to="a@x/r" id="7" type="error"><body>hi</body><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">gone</text></error></message>');
    });
  });
});
