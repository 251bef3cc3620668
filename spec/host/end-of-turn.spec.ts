// Writes held back to the end of the event-loop turn (lib/host/end-of-turn.ts): the order of the deferred tasks and
// answers, and, on the real server, that a delivered stanza leaves in the turn's flush, before the 201 reporting it.

import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Client } from '@xmpp/client';
import { TurnEnd } from '../../lib/host/end-of-turn.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { goOnline, nextStanza, startClient, stopClient, trustTestCertificate } from './c2s/helpers.js';
import { basic, request } from '../post_msg/helpers/http.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TurnEnd', () => {
  describe('#defer()', () => {
    it('runs nothing at once, then every task of the turn in the order deferred', async () => {
      const turn = new TurnEnd();
      const order: string[] = [];
      turn.defer(() => order.push('a'));
      turn.defer(() => order.push('b'));
      assert.deepEqual(order, []);
      await nextTurn();
      assert.deepEqual(order, ['a', 'b']);
    });

    it('gives a task deferred while the turn\'s tasks run a turn of its own', async () => {
      const turn = new TurnEnd();
      const order: number[] = [];
      turn.defer(() => {
        order.push(1);
        turn.defer(() => order.push(3));
      });
      turn.defer(() => order.push(2));
      await nextTurn();
      assert.deepEqual(order, [1, 2]);
      await nextTurn();
      assert.deepEqual(order, [1, 2, 3]);
    });
  });

  describe('#wait()', () => {
    it('releases the answers after every task of the turn, also those deferred after it was called', async () => {
      const turn = new TurnEnd();
      const begun = turn.begin();
      const order: string[] = [];
      const first = turn.wait(begun)!.then(() => order.push('answer 1'));
      turn.defer(() => order.push('flush'));
      const second = turn.wait(begun)!.then(() => order.push('answer 2'));
      await Promise.all([first, second]);
      assert.deepEqual(order, ['flush', 'answer 1', 'answer 2']);
    });

    it('holds the answer of work that finishes within its turn', () => {
      const turn = new TurnEnd();
      assert.ok(turn.wait(turn.begin()) instanceof Promise);
    });

    it('answers at once work that finished after its turn ended, with nothing left to flush', async () => {
      const turn = new TurnEnd();
      const begun = turn.begin();
      // Like the offline store's commit: an immediate queued after the turn's end, in the same check phase.
      const later = await new Promise((resolve) => setImmediate(() => resolve(turn.wait(begun))));
      assert.equal(later, undefined);
    });

    it('still holds such an answer while a stream waits to be flushed', async () => {
      const turn = new TurnEnd();
      const begun = turn.begin();
      await nextTurn();
      const order: string[] = [];
      turn.defer(() => order.push('flush'));
      const waited = turn.wait(begun);
      assert.ok(waited instanceof Promise);
      await waited;
      assert.deepEqual(order, ['flush']);
    });
  });
});

describe('Writes at the end of the turn, on the server', () => {
  let ts: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  const events: string[] = [];
  const originalUncork = Object.getOwnPropertyDescriptor(TLSSocket.prototype, 'uncork');

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({ users: [['alice@localhost', 'alice-secret'], ['bob@localhost', 'bob-secret']] });
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret', resource: 'desk' });
    await goOnline(alice, 'alice');
    // Seen from the server's side: a TLS socket let go with data held in it, and an HTTP answer written.
    const uncork = TLSSocket.prototype.uncork;
    TLSSocket.prototype.uncork = function (this: TLSSocket) {
      if (this.writableCorked === 1 && this.writableLength > 0) events.push('stream flushed');
      uncork.call(this);
    };
    const end = ServerResponse.prototype.end;
    ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
      events.push(`answer ${this.statusCode}`);
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof end;
  });

  afterEach(() => {
    events.length = 0;
  });

  after(async () => {
    if (originalUncork) Object.defineProperty(TLSSocket.prototype, 'uncork', originalUncork);
    else delete (TLSSocket.prototype as { uncork?: unknown }).uncork;
    delete (ServerResponse.prototype as { end?: unknown }).end;
    if (alice) await stopClient(alice);
    await ts?.stop();
    restoreTls?.();
  });

  it('flushes the recipient\'s stream with the message before it writes the 201', async () => {
    const received = nextStanza(alice, (el) => el.is('message'), 'the message at alice');
    const res = await request(`${ts.httpUrl}/msg/alice`, {
      headers: { Authorization: basic('bob@localhost', 'bob-secret'), 'Content-Type': 'text/plain' },
      body: 'db1 is down',
    });
    assert.equal(res.status, 201, res.text);
    assert.equal((await received).getChildText('body'), 'db1 is down');
    assert.deepEqual(events, ['stream flushed', 'answer 201']);
  });
});
