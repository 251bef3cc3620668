// Stream servers before login: a direct TLS handshake that never comes is dropped, and unauthenticated
// connections per address are capped while other addresses still connect (XEP-0205 §4.3).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net, { type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import { createStreamServer, UnauthenticatedLimit, type Admission } from '../../../lib/host/net/tcp-listener.js';
import { testTls } from '../../helpers/server.js';

const log = pino({ level: 'silent' });
const pem = () => ({ key: readFileSync(testTls().key), cert: readFileSync(testTls().cert) });
const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function start(kind: 'starttls' | 'direct_tls', extra: { handshakeTimeoutMs?: number; unauthenticated?: UnauthenticatedLimit } = {}) {
  const accepted: Array<{ socket: Socket; admission: Admission }> = [];
  const server = createStreamServer({ kind, tls: pem(), log, ...extra, onConnection: (socket, _isSecure, admission) => void accepted.push({ socket, admission }) });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { port, accepted };
}

/** Resolves with how long the server took to close the connection, or 'open' after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<number | 'open'> {
  const start = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    });
    socket.on('error', () => undefined);
  });
}

const connect = (port: number, localAddress = '127.0.0.1'): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.on('error', reject);
  });

const tick = () => new Promise((r) => setTimeout(r, 50));

describe('createStreamServer()', () => {
  it('drops a direct TLS connection that never starts its handshake', async () => {
    const { port, accepted } = await start('direct_tls', { handshakeTimeoutMs: 300 });
    const silent = await connect(port);
    const closed = await closedWithin(silent, 3_000);
    assert.notEqual(closed, 'open', 'closed by the server');
    assert.equal(accepted.length, 0);
  });

  it('still completes a direct TLS handshake that comes in time', async () => {
    const { port, accepted } = await start('direct_tls', { handshakeTimeoutMs: 2_000 });
    const client = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((r) => client.once('secureConnect', r));
    await tick();
    assert.equal(accepted.length, 1);
    client.destroy();
  });

  for (const kind of ['starttls', 'direct_tls'] as const) {
    it(`${kind}: closes the connection over the per-address cap, while another address still connects`, async () => {
      const limit = new UnauthenticatedLimit(2);
      const { port } = await start(kind, { unauthenticated: limit });
      const first = [await connect(port), await connect(port)];
      await tick();
      assert.equal(limit.count('127.0.0.1'), 2);
      const third = await connect(port);
      assert.notEqual(await closedWithin(third, 2_000), 'open', 'the third one from 127.0.0.1 is closed');
      const elsewhere = await connect(port, '127.0.0.2');
      assert.equal(await closedWithin(elsewhere, 300), 'open', 'another address is not affected');
      // A closed connection frees its place.
      first[0]!.destroy();
      await tick();
      const again = await connect(port);
      assert.equal(await closedWithin(again, 300), 'open');
      [first[1]!, elsewhere, again].forEach((s) => s.destroy());
    });
  }

  it('frees the place of a connection that authenticated', async () => {
    const limit = new UnauthenticatedLimit(1);
    const { port, accepted } = await start('starttls', { unauthenticated: limit });
    const first = await connect(port);
    await tick();
    accepted[0]!.admission.authenticated();
    accepted[0]!.admission.authenticated(); // twice is once
    assert.equal(limit.count('127.0.0.1'), 0);
    const second = await connect(port);
    assert.equal(await closedWithin(second, 300), 'open');
    first.destroy();
    await tick();
    assert.equal(limit.count('127.0.0.1'), 1, 'the authenticated one closing does not free another place');
    second.destroy();
  });
});
