// Types for the parts of @xmpp/client 0.14 (which ships none) that the c2s and e2e specs use.

declare module '@xmpp/client' {
  import type { Element } from '@xmpp/xml';
  import type { EventEmitter } from 'node:events';

  export { xml } from '@xmpp/xml';

  export interface Client extends EventEmitter {
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    jid: { toString(): string } | null;
    reconnect: { stop(): void };
    iqCaller: {
      request(el: Element, timeout?: number): Promise<Element>;
      get(child: Element, to?: string, timeout?: number): Promise<Element>;
    };
    on(event: 'stanza', fn: (el: Element) => void): this;
    on(event: 'error', fn: (err: Error) => void): this;
    on(event: string, fn: (...args: never[]) => void): this;
  }

  export interface ClientOptions {
    service: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
    credentials?: unknown;
  }

  export function client(options: ClientOptions): Client;
}
