// The port manager (Prosody's core/portmanager.lua): consumes `net` items, opens one server per configured
// interface × port, closes them when the providing module unloads, and names a taken port in its error.

import type { Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import type { NetItem } from '../api.js';
import { HostError } from '../util/errors.js';

export interface OpenPort {
  /** The net item's name: `c2s`, `https`, … */
  service: string;
  address: string;
  port: number;
  server: NetServer;
}

export interface PortManagerDeps {
  /** A host key from the config (`c2s_ports`, `http_interfaces`, …). */
  setting(key: string): unknown;
  /** The server's TLS pair; asked for only when an item that needs it has ports, and at most once. */
  loadTls(): Promise<{ key: string; cert: string }>;
  log: Logger;
}

interface Service {
  item: NetItem;
  ports: OpenPort[];
  /** Connections open on its ports now. */
  connections: number;
  opening: Promise<void>;
  closing?: Promise<void>;
}

export class PortManager {
  private readonly services = new Map<NetItem, Service>();
  private tls: Promise<{ key: string; cert: string }> | undefined;

  constructor(private readonly deps: PortManagerDeps) {}

  /** Open the item's ports (item-added/net); `ready()` reports a failure. */
  add(item: NetItem): void {
    const service: Service = { item, ports: [], connections: 0, opening: Promise.resolve() };
    service.opening = this.open(service);
    // A failure is reported by ready() (at start) or here (a module loaded later).
    service.opening.catch((err: unknown) => this.deps.log.error({ err, service: item.name }, 'cannot open a listener'));
    this.services.set(item, service);
  }

  /** Close the item's ports (its module unloads). */
  remove(item: NetItem): Promise<void> {
    const service = this.services.get(item);
    if (!service) return Promise.resolve();
    this.services.delete(item);
    return this.closeService(service);
  }

  /** Resolves when every port asked for so far is open; rejects with the first that could not be. */
  async ready(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.opening));
  }

  /** Stop accepting on every port; resolves when the servers are closed. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => this.closeService(s)));
  }

  /** Bound ports of a service, in config order (tests listen on port 0 and ask here). */
  ports(name: string): number[] {
    return [...this.services.values()].filter((s) => s.item.name === name).flatMap((s) => s.ports.map((p) => p.port));
  }

  /** Connections open now on a service's ports. */
  connectionCount(name: string): number {
    let n = 0;
    for (const s of this.services.values()) if (s.item.name === name) n += s.connections;
    return n;
  }

  private async open(service: Service): Promise<void> {
    const { item } = service;
    const ports = (this.deps.setting(item.portsSetting ?? `${item.name}_ports`) as readonly number[] | undefined) ?? item.defaultPorts ?? [];
    const interfaces = (this.deps.setting(item.interfacesSetting ?? `${item.name}_interfaces`) as readonly string[] | undefined) ?? ['127.0.0.1'];
    if (ports.length === 0) return;
    const tls = item.tls ? await (this.tls ??= this.deps.loadTls()) : undefined;
    for (const address of interfaces) {
      for (const port of ports) {
        const server = item.createServer(tls);
        server.on('connection', (socket) => {
          service.connections++;
          socket.once('close', () => service.connections--);
        });
        const open = await listen(server, item, address, port);
        // Closed meanwhile (its module unloaded while this port was opening): do not keep it.
        if (service.closing) {
          await closeServer(item, open.server);
          return;
        }
        service.ports.push(open);
        server.on('error', (err) => this.deps.log.error({ err, service: item.name, port: open.port }, 'listener error'));
        this.deps.log.info({ service: item.name, address, port: open.port }, `${item.name} listening`);
      }
    }
  }

  private closeService(service: Service): Promise<void> {
    service.closing ??= Promise.all(service.ports.map((p) => closeServer(service.item, p.server))).then(() => undefined);
    return service.closing;
  }
}

function listen(server: NetServer, item: NetItem, address: string, port: number): Promise<OpenPort> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      const what = `${item.name} port ${port} on ${address}`;
      const key = item.portsSetting ?? `${item.name}_ports`;
      if (err.code === 'EADDRINUSE') reject(new HostError('HOST_ERR_PORT_IN_USE', `${what} is already in use; stop the other program or change ${key}.`, { cause: err }));
      else reject(new HostError('HOST_ERR_PORT_IN_USE', `cannot listen on ${what}: ${err.message}.`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve({ service: item.name, address, port: typeof bound === 'object' && bound ? bound.port : port, server });
    });
  });
}

function closeServer(item: NetItem, server: NetServer): Promise<void> {
  if (item.close) return item.close(server);
  return new Promise((resolve) => server.close(() => resolve()));
}
