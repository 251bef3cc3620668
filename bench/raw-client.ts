// Benchmark helper: a minimal c2s client over direct TLS (XEP-0368) — stream header, SASL PLAIN (RFC 4616),
// stream restart, resource binding (RFC 6120 §7). Used for thousands of idle sessions (far cheaper than
// @xmpp/client) and, with a scanner instead of an XML parser, for receivers that must not limit the load.

import tls from 'node:tls';

export interface SessionOptions {
  port: number;
  /** PEM of the server's self-signed certificate: verification stays on. */
  ca: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  timeoutMs: number;
  /** Enable stream management (XEP-0198) with resumption after binding, and answer the server's <r/>. */
  smacks?: boolean;
}

const streamHeader = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;

const FEATURES_END = /<\/stream:features>/;
const SASL_DONE = /<success\b[^>]*(\/>|>[\s\S]*?<\/success>)|<failure\b[\s\S]*?<\/failure>/;
const BIND_DONE = /<iq\b[^>]*>[\s\S]*?<\/iq>/;

/**
 * Connect, authenticate and bind. Resolves with the socket (utf8, no 'data' listener left: the caller attaches
 * its own in the same tick) or rejects within timeoutMs.
 */
export function openBoundSession(opts: SessionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let step: 'features' | 'sasl' | 'features2' | 'bind' = 'features';
    const socket = tls.connect({ host: '127.0.0.1', port: opts.port, ca: opts.ca, servername: opts.domain, minVersion: 'TLSv1.2' });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`${opts.username}: not bound within ${opts.timeoutMs} ms (at ${step})`)), opts.timeoutMs);
    const onClose = (): void => fail(new Error(`${opts.username}: connection closed at ${step}`));
    socket.setEncoding('utf8');
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.once('secureConnect', () => socket.write(streamHeader(opts.domain)));
    const onData = (text: string): void => {
      buffer += text;
      if (step === 'features' && FEATURES_END.test(buffer)) {
        buffer = '';
        step = 'sasl';
        const plain = Buffer.from(`\0${opts.username}\0${opts.password}`, 'utf8').toString('base64');
        socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain}</auth>`);
        return;
      }
      if (step === 'sasl') {
        const done = SASL_DONE.exec(buffer);
        if (!done) return;
        if (done[0].startsWith('<failure')) return fail(new Error(`${opts.username}: SASL failed: ${done[0]}`));
        buffer = '';
        step = 'features2';
        socket.write(streamHeader(opts.domain));
        return;
      }
      if (step === 'features2' && FEATURES_END.test(buffer)) {
        buffer = '';
        step = 'bind';
        socket.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${opts.resource}</resource></bind></iq>`);
        return;
      }
      if (step === 'bind') {
        const done = BIND_DONE.exec(buffer);
        if (!done) return;
        if (!/type=["']result["']/.test(done[0])) return fail(new Error(`${opts.username}: bind failed: ${done[0]}`));
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', fail);
        socket.on('error', () => undefined);
        resolve(socket);
      }
    };
    socket.on('data', onData);
  });
}

/** An authenticated, bound session that sends nothing more (no presence, so it is sent nothing); close() ends it. */
export class IdleSession {
  private constructor(private readonly socket: tls.TLSSocket) {}

  static async open(opts: SessionOptions): Promise<IdleSession> {
    const socket = await openBoundSession(opts);
    if (opts.smacks) socket.write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    // Read and drop whatever comes (nothing should), keep no buffer; h stays 0: it handles no stanza after <enable/>.
    socket.on('data', (chunk: string) => {
      if (opts.smacks && chunk.includes('<r ')) socket.write("<a xmlns='urn:xmpp:sm:3' h='0'/>");
    });
    return new IdleSession(socket);
  }

  get isOpen(): boolean {
    return !this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface OpenManyOptions extends Omit<SessionOptions, 'username' | 'resource'> {
  /** Account local parts, one session each. */
  usernames: readonly string[];
  /** Sessions being set up at once. */
  concurrency: number;
  /** Stop opening new sessions after this; those open so far are kept. */
  deadlineMs: number;
}

/** Open one session per username, `concurrency` at a time, until done or the deadline; failures are counted. */
export async function openIdleSessions(opts: OpenManyOptions): Promise<{ sessions: IdleSession[]; failures: string[]; seconds: number }> {
  const started = Date.now();
  const sessions: IdleSession[] = [];
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.usernames.length && Date.now() - started < opts.deadlineMs) {
      const username = opts.usernames[next++]!;
      try {
        sessions.push(await IdleSession.open({ ...opts, username, resource: 'idle' }));
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return { sessions, failures, seconds: (Date.now() - started) / 1000 };
}

/** A TLS connection that writes a few bytes, waits for an answer, then stays open doing nothing (tls-floor.ts). */
export function openBareTls(opts: { port: number; ca: string; servername: string; timeoutMs: number }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: opts.port, ca: opts.ca, servername: opts.servername, minVersion: 'TLSv1.2' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('secureConnect', () => socket.write('<hello/>'));
    socket.once('data', () => {
      clearTimeout(timer);
      socket.on('data', () => undefined);
      resolve(socket);
    });
  });
}

/**
 * Finds `<message …>` and `<presence …>` start tags in a stream of text, across chunk boundaries, without
 * parsing XML: body text cannot hold a literal `<` (it is escaped), so every `<message` is a stanza.
 */
export class StanzaScanner {
  private carry = '';

  constructor(private readonly onStartTag: (name: 'message' | 'presence', tag: string) => void) {}

  write(text: string): void {
    const data = this.carry + text;
    let from = 0;
    for (;;) {
      const lt = data.indexOf('<', from);
      if (lt === -1) {
        this.carry = '';
        return;
      }
      const gt = data.indexOf('>', lt);
      if (gt === -1) {
        // An unfinished tag: keep it for the next chunk (a body's text holds no '<', so this stays short).
        this.carry = data.slice(lt);
        return;
      }
      const tag = data.slice(lt, gt + 1);
      if (tag.startsWith('<message') && /^<message[\s/>]/.test(tag)) this.onStartTag('message', tag);
      else if (tag.startsWith('<presence') && /^<presence[\s/>]/.test(tag)) this.onStartTag('presence', tag);
      from = gt + 1;
    }
  }
}

/** The `id` attribute of a start tag, or ''. */
export function idOf(tag: string): string {
  return /\sid=(?:"([^"]*)"|'([^']*)')/.exec(tag)?.slice(1).find((v) => v !== undefined) ?? '';
}
