// Benchmark helper for the s2s series: a minimal c2s client over STARTTLS (RFC 6120 §5, SASL PLAIN, bind, initial
// presence) that speaks to xmppd and to Prosody alike, then sends messages or counts those it receives.
// No XML parser: it waits for a few known elements while logging in and counts `</message>` afterwards.

import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

const header = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;

export class S2sBenchClient {
  /** Messages received since login (each `</message>`). */
  received = 0;
  /** The last text the server sent, for the error when it closes the connection. */
  private last = '';
  private carry = '';
  private onCount: (() => void) | undefined;

  private constructor(private readonly socket: TLSSocket) {
    socket.on('data', (text: string) => {
      const data = this.carry + text;
      this.last = (this.last + text).slice(-500);
      let at = data.indexOf('</message>');
      while (at !== -1) {
        this.received++;
        at = data.indexOf('</message>', at + 10);
      }
      // A marker cut by the chunk boundary is completed by the next chunk.
      this.carry = data.slice(-9);
      this.onCount?.();
    });
  }

  /** Log in as user@domain/resource on 127.0.0.1:port (the server's certificate is not checked: a bench on loopback). */
  static async login(port: number, domain: string, user: string, password: string, resource: string, timeoutMs = 15_000): Promise<S2sBenchClient> {
    const raw: Socket = connectTcp({ host: '127.0.0.1', port });
    const deadline = setTimeout(() => raw.destroy(new Error(`${user}@${domain}: no session within ${timeoutMs} ms`)), timeoutMs);
    try {
      await once(raw, /<proceed[^>]*\/>/, () => raw.write(`${header(domain)}`), /<\/stream:features>/, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      raw.removeAllListeners('data');
      const socket = connectTls({ socket: raw, servername: domain, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
      socket.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      const plain = Buffer.from(`\0${user}\0${password}`).toString('base64');
      await once(socket, /<success/, () => socket.write(header(domain)), /<\/stream:features>/, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain}</auth>`, /<failure/);
      await once(socket, /<\/iq>|<iq[^>]*\/>/, () => socket.write(header(domain)), /<\/stream:features>/, `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
      await once(socket, /<presence/, () => socket.write('<presence/>'));
      socket.removeAllListeners('data');
      socket.on('error', () => undefined);
      return new S2sBenchClient(socket);
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Write `text` now; false when the socket's buffer is full (wait for drain()). */
  write(text: string): boolean {
    return this.socket.write(text);
  }

  /** Resolves when the socket can take more; rejects if it closes or stays full for `timeoutMs`. */
  drain(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => finish();
      const onClose = (): void => finish(new Error(`the server closed the sending client's connection; it last sent: ${this.last}`));
      const timer = setTimeout(() => finish(new Error(`the server read nothing from the sending client for ${timeoutMs} ms`)), timeoutMs);
      if (this.socket.destroyed) return finish(new Error(`the sending client's connection is closed; the server last sent: ${this.last}`));
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  /** Resolves when `received` reaches `count`, or after `timeoutMs` (check `received`). */
  waitFor(count: number, timeoutMs: number): Promise<void> {
    if (this.received >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onCount = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.onCount = () => {
        if (this.received >= count) done();
      };
    });
  }

  close(): void {
    this.socket.end('</stream:stream>');
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }
}

/**
 * Run `start`, wait for `first` (then write `then`) and for `done`; `failure` rejects. With only `done`: wait for it.
 * The steps of a login, each the next element the server sends.
 */
function once(socket: Socket, done: RegExp, start: () => void, first?: RegExp, then?: string, failure?: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let isFirstSeen = first === undefined;
    const onData = (chunk: Buffer | string): void => {
      buffer += chunk.toString();
      if (!isFirstSeen && first!.test(buffer)) {
        isFirstSeen = true;
        buffer = '';
        if (then) socket.write(then);
        return;
      }
      if (isFirstSeen && failure?.test(buffer)) return finish(new Error(`login failed: ${buffer.slice(0, 300)}`));
      if (isFirstSeen && done.test(buffer)) finish();
    };
    const onClose = (): void => finish(new Error(`connection closed during login: ${buffer.slice(0, 300)}`));
    const finish = (err?: Error): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', finish);
      if (err) reject(err);
      else resolve();
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', finish);
    start();
  });
}
