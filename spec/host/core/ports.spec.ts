// The port manager (core/ports.ts): a provided `net` item gets its listeners, they close when it is removed,
// and a taken port is an error naming it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { PortManager } from '../../../lib/host/core/ports.js';
import type { NetItem } from '../../../lib/host/api.js';

function manager(settings: Record<string, unknown>): PortManager {
  return new PortManager({
    setting: (key) => settings[key],
    loadTls: () => Promise.reject(new Error('no TLS in this spec')),
    log: pino({ level: 'silent' }),
  });
}

function echoItem(name: string): NetItem {
  return { name, createServer: () => net.createServer((socket) => socket.end('hello\n')) };
}

function read(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    s.on('data', (c) => (text += c.toString()));
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
}

describe('PortManager', () => {
  it('opens a listener on every interface × port of a provided item, and closes them when it is removed', async () => {
    const ports = manager({ echo_ports: [0, 0], echo_interfaces: ['127.0.0.1'] });
    const item = echoItem('echo');
    ports.add(item);
    await ports.ready();
    const bound = ports.ports('echo');
    assert.equal(bound.length, 2);
    assert.equal(await read(bound[0]!), 'hello\n');
    await ports.remove(item);
    assert.deepEqual(ports.ports('echo'), []);
    await assert.rejects(read(bound[0]!), { code: 'ECONNREFUSED' });
  });

  it('reads the keys an item names, and opens nothing without ports', async () => {
    const ports = manager({ other_ports: [0], other_interfaces: ['127.0.0.1'], echo_ports: [] });
    ports.add({ ...echoItem('echo_tls'), portsSetting: 'other_ports', interfacesSetting: 'other_interfaces' });
    ports.add(echoItem('echo'));
    await ports.ready();
    assert.equal(ports.ports('echo_tls').length, 1);
    assert.deepEqual(ports.ports('echo'), []);
    await ports.closeAll();
  });

  it('counts open connections per service', async () => {
    const ports = manager({ hold_ports: [0], hold_interfaces: ['127.0.0.1'] });
    ports.add({ name: 'hold', createServer: () => net.createServer(() => undefined) });
    await ports.ready();
    const client = net.connect({ host: '127.0.0.1', port: ports.ports('hold')[0]! });
    await new Promise((r) => client.once('connect', r));
    while (ports.connectionCount('hold') < 1) await new Promise((r) => setImmediate(r));
    assert.equal(ports.connectionCount('hold'), 1);
    client.destroy();
    while (ports.connectionCount('hold') > 0) await new Promise((r) => setImmediate(r));
    await ports.closeAll();
  });

  it('names the port that is already in use and its config key', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const ports = manager({ http_ports: [port], http_interfaces: ['127.0.0.1'] });
      ports.add(echoItem('http'));
      await assert.rejects(
        ports.ready(),
        (err: Error & { code?: string }) => err.code === 'HOST_ERR_PORT_IN_USE' && err.message.includes(`http port ${port} on 127.0.0.1 is already in use`) && err.message.includes('http_ports'),
      );
      await ports.closeAll();
    } finally {
      blocker.close();
    }
  });
});
