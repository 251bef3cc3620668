// Writes held back to the end of the event-loop turn (lib/host/net/end-of-turn.ts): when tasks and answers are held and
// in what order they go, and, on the real server, that no 201 is written while its message is still held back.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Client } from '@xmpp/client';
import { TurnEnd } from '../../../lib/host/net/end-of-turn.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type Server } from '../../../lib/host/core/server.js';
import { startTestServer, testTls, type TestServer } from '../../helpers/server.js';
import { goOnline, startClient, stopClient, trustTestCertificate, withTimeout } from '../c2s/helpers.js';
import { basic } from '../../post_msg/helpers/http.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A turn end in which two requests have begun: it gathers. Returns the first one's mark. */
function busyTurn(): { turn: TurnEnd; begun: number } {
  const turn = new TurnEnd();
  const begun = turn.begin();
  turn.begin();
  return { turn, begun };
}

describe('TurnEnd', () => {
  describe('#defer()', () => {
    it('runs a task at once while requests come one at a time', () => {
      const turn = new TurnEnd();
      turn.begin();
      let ran = false;
      turn.defer(() => (ran = true));
      assert.equal(ran, true);
    });

    it('holds tasks to the end of a turn that read several requests, then runs them in the order deferred', async () => {
      const { turn } = busyTurn();
      const order: string[] = [];
      turn.defer(() => order.push('a'));
      turn.defer(() => order.push('b'));
      assert.deepEqual(order, []);
      await nextTurn();
      assert.deepEqual(order, ['a', 'b']);
    });

    it('gives a task deferred while the turn\'s tasks run a turn end of its own', async () => {
      const { turn } = busyTurn();
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

  describe('isOn', () => {
    it('switched off, runs every task and answers every request at once, even in a busy turn', () => {
      const turn = new TurnEnd({ isOn: false });
      const begun = turn.begin();
      turn.begin();
      let ran = false;
      turn.defer(() => (ran = true));
      assert.equal(ran, true);
      assert.equal(turn.isGathering(), false);
      assert.equal(turn.wait(begun), undefined);
    });
  });

  describe('#wait()', () => {
    it('answers a lone request at once', () => {
      const turn = new TurnEnd();
      assert.equal(turn.wait(turn.begin()), undefined);
    });

    it('releases the answers of a busy turn after every task of it, also those deferred after the wait', async () => {
      const { turn, begun } = busyTurn();
      const order: string[] = [];
      const first = turn.wait(begun)!.then(() => order.push('answer 1'));
      turn.defer(() => order.push('flush'));
      const second = turn.wait(begun)!.then(() => order.push('answer 2'));
      await Promise.all([first, second]);
      assert.deepEqual(order, ['flush', 'answer 1', 'answer 2']);
    });

    it('keeps gathering in the turn after a busy one, from its first request on', async () => {
      const { turn } = busyTurn();
      await nextTurn();
      assert.ok(turn.wait(turn.begin()) instanceof Promise);
    });

    it('stops gathering once requests come one at a time again', async () => {
      const { turn } = busyTurn();
      await nextTurn();
      await turn.wait(turn.begin());
      assert.equal(turn.wait(turn.begin()), undefined);
    });

    it('answers at once a request that finished after its turn ended, with nothing left to flush', async () => {
      const { turn, begun } = busyTurn();
      // Like the offline store's commit: an immediate queued after the turn's end, in the same check phase.
      const later = await new Promise((resolve) => setImmediate(() => resolve(turn.wait(begun))));
      assert.equal(later, undefined);
    });

    it('still holds such an answer while a stream waits to be flushed', async () => {
      const { turn, begun } = busyTurn();
      await nextTurn();
      turn.begin();
      turn.begin();
      const order: string[] = [];
      turn.defer(() => order.push('flush'));
      const waited = turn.wait(begun);
      assert.ok(waited instanceof Promise);
      await waited;
      assert.deepEqual(order, ['flush']);
    });
  });
});

/** Keep-alive connections to the HTTP port, each handing its answers' statuses to `next()` in order. */
async function connectAll(port: number, count: number): Promise<Array<{ socket: net.Socket; next(): Promise<number> }>> {
  return Promise.all(Array.from({ length: count }, () => new Promise<{ socket: net.Socket; next(): Promise<number> }>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve({ socket, next }));
    socket.once('error', reject);
    let text = '';
    const statuses: number[] = [];
    const waiting: Array<(status: number) => void> = [];
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (;;) {
        const head = text.indexOf('\r\n\r\n');
        if (head === -1) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head))?.[1] ?? 0);
        if (text.length < head + 4 + length) return;
        const status = Number(text.slice(9, 12));
        text = text.slice(head + 4 + length);
        const waiter = waiting.shift();
        if (waiter) waiter(status);
        else statuses.push(status);
      }
    });
    function next(): Promise<number> {
      const status = statuses.shift();
      return status === undefined ? new Promise((r) => waiting.push(r)) : Promise.resolve(status);
    }
  })));
}

function post(socket: net.Socket, text: string): void {
  socket.write(`POST /msg/alice HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${basic('bob@localhost', 'bob-secret')}\r\n` +
    `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/**
 * One POST on each of `count` connections, then another on each, written in one synchronous loop: the first round
 * makes sure the server reads every connection (a connection it has not accepted yet would be read a turn later)
 * and has the credentials cached, so the second round's requests are all read and handled in one turn.
 */
async function postTogether(port: number, count: number): Promise<{ first: number[]; second: number[] }> {
  const conns = await connectAll(port, count);
  try {
    conns.forEach((c, i) => post(c.socket, `first ${i}`));
    const first = await withTimeout(Promise.all(conns.map((c) => c.next())), 'the first answers');
    conns.forEach((c, i) => post(c.socket, `second ${i}`));
    const second = await withTimeout(Promise.all(conns.map((c) => c.next())), 'the second answers');
    return { first, second };
  } finally {
    for (const c of conns) c.socket.destroy();
  }
}

describe('Writes at the end of the turn, on the server', () => {
  let ts: TestServer;
  let restoreTls: () => void;
  let alice: Client;
  const received: string[] = [];
  /** Server-side TLS sockets with writes held back (corked), and how many writes were held in all. */
  const holding = new Set<TLSSocket>();
  let heldWrites = 0;
  const answersWhileHeld: number[] = [];

  before(async () => {
    restoreTls = trustTestCertificate();
    ts = await startTestServer({ users: [['alice@localhost', 'alice-secret'], ['bob@localhost', 'bob-secret']] });
    alice = await startClient({ port: ts.c2sPort, username: 'alice', password: 'alice-secret', resource: 'desk' });
    alice.on('stanza', (el) => {
      if (el.is('message')) received.push(el.getChildText('body') ?? '');
    });
    await goOnline(alice, 'alice');
    const { write, uncork } = TLSSocket.prototype;
    TLSSocket.prototype.write = function (this: TLSSocket, ...args: unknown[]) {
      if (this.writableCorked > 0) {
        holding.add(this);
        heldWrites++;
      }
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    TLSSocket.prototype.uncork = function (this: TLSSocket) {
      if (this.writableCorked === 1) holding.delete(this);
      uncork.call(this);
    };
    const end = ServerResponse.prototype.end;
    ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
      if (holding.size > 0) answersWhileHeld.push(this.statusCode);
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof end;
  });

  after(async () => {
    delete (TLSSocket.prototype as { write?: unknown }).write;
    delete (TLSSocket.prototype as { uncork?: unknown }).uncork;
    delete (ServerResponse.prototype as { end?: unknown }).end;
    if (alice) await stopClient(alice);
    await ts?.stop();
    restoreTls?.();
  });

  it('gathers the messages of requests read in one turn, and writes no 201 while its message is held back', async () => {
    const { first, second } = await postTogether(Number(new URL(ts.httpUrl).port), 10);
    assert.deepEqual([...first, ...second], Array(20).fill(201));
    await withTimeout((async () => {
      while (received.length < 20) await new Promise((r) => setTimeout(r, 10));
    })(), 'the 20 messages at alice');
    const expected = Array.from({ length: 10 }, (_, i) => [`first ${i}`, `second ${i}`]).flat();
    assert.deepEqual([...received].sort(), expected.sort());
    assert.ok(heldWrites >= 1, 'no delivery was held to the end of the turn: the requests were not gathered');
    assert.deepEqual(answersWhileHeld, []);
  });
});

describe('The write batcher as a service', () => {
  it('is no module-level singleton: net/end-of-turn.ts exports only the class', async () => {
    assert.deepEqual(Object.keys(await import('../../../lib/host/net/end-of-turn.js')), ['TurnEnd']);
  });

  it('is one per server, shared by http and c2s; writesAtTurnEnd: false turns off that server\'s only', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xmppd-spec-'));
    const config = {
      data_dir: dataDir, log_level: 'silent', http_ports: [0], c2s_ports: [0], s2s_ports: [0], tls: testTls(),
      modules_enabled: [], virtual_hosts: { localhost: {} },
    };
    const off = await startServer({ config, writesAtTurnEnd: false });
    const on = await startServer({ config: { ...config, data_dir: join(dataDir, 'on') } });
    try {
      const batcher = (server: Server, module: string) => server.modules.apiOf('*', module)!.writeBatcher;
      assert.equal(batcher(off, 'http'), batcher(off, 'c2s'));
      assert.notEqual(batcher(off, 'http'), batcher(on, 'http'));
      for (const server of [off, on]) {
        batcher(server, 'http').begin();
        batcher(server, 'http').begin();
      }
      assert.equal(batcher(off, 'http').isGathering(), false);
      assert.equal(batcher(on, 'http').isGathering(), true);
      await nextTurn();
    } finally {
      await Promise.all([off.stop(), on.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
