// One client connection through its stream stages (RFC 6120 §4-§7): header, STARTTLS, SASL, bind, then stanzas.
// Corresponds to Prosody's plugins/mod_c2s.lua with the stream-feature parts of mod_tls, mod_saslauth and mod_bind.
// It runs over a Connection (net/connection.ts), so any transport that carries bytes can carry it.

import { randomBytes, randomUUID } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { parseJid } from '../../util/jid.js';
import { serialize } from '../../util/serialize.js';
import { reply } from '../../util/stanza.js';
import { filterOwner } from '../../util/filters.js';
import type { Connection } from '../../net/connection.js';
import type { ClientSession, ModuleApi, Origin, SessionManagement, Stanza, StanzaFilterChain } from '../../api.js';
import { NS_BIND, NS_CLIENT, NS_ROSTER_VER, NS_SASL, NS_SESSION, NS_STANZAS, NS_STREAM, NS_TLS } from '../../util/xmpp-stream/namespaces.js';
import { SaslNegotiation, offeredMechanisms } from '../../util/sasl/sasl.js';
import { StreamParser, type StreamFailure } from '../../util/xmpp-stream/stream-parser.js';
import { STREAM_CLOSE, streamError, streamHeader, type StreamErrorCondition } from '../../util/xmpp-stream/stream-errors.js';
import { CLOSE_FRAME, FrameReader, openFrame } from './frame-reader.js';

export interface C2sSettings {
  c2s_ports: readonly number[];
  c2s_direct_tls_ports: readonly number[];
  c2s_interfaces: readonly string[];
  c2s_require_encryption: boolean;
  c2s_stanza_size_limit: number;
  c2s_timeout: number;
}

/** What every session shares: settings, the per-host APIs. */
export interface SessionContext {
  settings: C2sSettings;
  log: Logger;
  hostApi(domain: string): ModuleApi | undefined;
  onClosed(session: C2sSession): void;
  /** The stream authenticated: it leaves its address's count of unauthenticated connections. */
  onAuthenticated?(session: C2sSession): void;
  /** A session continues on another stream's connection (XEP-0198 resumption): it is open again. */
  onResumed?(session: C2sSession): void;
}

type QueueItem =
  | { kind: 'start'; header: Element; generation: number }
  | { kind: 'element'; el: Element; generation: number }
  | { kind: 'end'; generation: number }
  | { kind: 'error'; failure: StreamFailure; generation: number };

/** Pause reading when this many parsed elements wait: a flooding client is slowed, not buffered. */
const MAX_QUEUED = 64;
/** After our `</stream:stream>`, wait this long for the peer's before dropping the TCP connection. */
const CLOSE_GRACE_MS = 3_000;
/** A client that does not read its stanzas: close it rather than buffer without bound. */
const MAX_WRITE_BUFFER = 8 * 1024 * 1024;

const STANZA_KINDS = new Set(['message', 'presence', 'iq']);
const IQ_TYPES = new Set(['get', 'set', 'result', 'error']);

/** The throttle key: the socket's address exactly as HTTP sees it (Koa's request.ip), so failures add up. */
function clientAddress(address: string | undefined): string {
  return address ?? 'unknown';
}

export class C2sSession implements ClientSession {
  readonly id = randomUUID();
  readonly address: string;
  private readonly log: Logger;
  private connection: Connection;
  /** A byte stream's parser, or the frame reader of a framed transport (WebSocket). */
  private parser: StreamParser | FrameReader;
  private generation = 0;
  private readonly queue: QueueItem[] = [];
  private isDraining = false;
  private isPaused = false;
  private isHeaderSent = false;
  private isClosedNow = false;
  private timeout: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private sasl: SaslNegotiation | undefined;
  private api: ModuleApi | undefined;
  /** The host's session filters (util/filters.ts), once the stream header named the host. */
  private filtersIn: StanzaFilterChain | undefined;
  private filtersOut: StanzaFilterChain | undefined;
  private origin: Origin | undefined;
  private domain = '';
  private account = '';
  /** The account's SCRAM-SHA-256 StoredKey when this stream authenticated: a new password changes it. */
  private credential: Buffer | undefined;
  private resource = '';
  private available = false;
  private currentPriority = 0;
  private last: Stanza | undefined;
  /** Stanzas deliver() wrote, and how many of them the transport reported written (whenWritten() waits on these). */
  private taken = 0;
  private written = 0;
  private isWriteFailed = false;
  private readonly writeWaiters: Array<{ target: number; resolve: (isWritten: boolean) => void }> = [];
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  /** Stream management (XEP-0198), once the client enabled it. */
  private management: SessionManagement | undefined;
  /** The connection went; kept for resumption. */
  private hibernating = false;
  /** This stream's connection now carries that session (resumed): what this parser reads goes there. */
  private forwardTo: C2sSession | undefined;

  constructor(connection: Connection, private readonly ctx: SessionContext) {
    this.connection = connection;
    this.address = clientAddress(connection.remoteAddress);
    this.log = ctx.log.child({ session: this.id.slice(0, 8), address: this.address });
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.parser = this.newParser();
    connection.attach({
      data: (chunk) => this.parser.write(chunk),
      error: (err) => this.log.debug({ err: err.message }, 'socket error'),
      close: () => this.onSocketClosed(),
    });
    const isSecure = connection.isSecure;
    // RFC 6120 §4.6.1 lets a server close streams that stay idle; Prosody's c2s_timeout does it until auth.
    this.timeout = setTimeout(() => this.close('connection-timeout', 'Not authenticated in time.'), ctx.settings.c2s_timeout * 1000);
    this.timeout.unref();
    this.log.debug({ isSecure }, 'client connected');
  }

  // --- ClientSession -------------------------------------------------------------------------------

  get full(): string {
    return this.resource ? `${this.account}/${this.resource}` : '';
  }

  get bare(): string {
    return this.account;
  }

  get host(): string {
    return this.domain;
  }

  get isAvailable(): boolean {
    return this.available;
  }

  get priority(): number {
    return this.currentPriority;
  }

  get isSecure(): boolean {
    return this.connection.isSecure;
  }

  get isClosed(): boolean {
    return this.isClosedNow;
  }

  get lastPresence(): Stanza | undefined {
    return this.last;
  }

  setPresence(isAvailable: boolean, priority: number, presence: Stanza | undefined): void {
    this.available = isAvailable;
    this.currentPriority = priority;
    this.last = isAvailable ? presence : undefined;
  }

  /**
   * False when the stream is closing or closed, or the client let its write buffer pass the limit. That client is
   * closed too (as Prosody's max_send_buffer_size does): it is missing presence and iq results as well, it holds
   * memory, and its next login gets from offline storage what was refused here. A stanza a session filter took
   * (stream management queues, a module drops on purpose) counts as taken.
   */
  deliver(stanza: Stanza): boolean {
    if (this.hibernating) return this.queueHibernating(stanza);
    if (this.isClosedNow || !this.connection.isWritable) return false;
    if (this.connection.writableLength > MAX_WRITE_BUFFER) {
      this.close('policy-violation', 'Not reading fast enough.');
      return false;
    }
    const filtered = this.filtersOut === undefined || this.filtersOut.isEmpty ? stanza : this.filter(this.filtersOut, stanza);
    if (filtered === undefined) return true;
    const seq = ++this.taken;
    this.connection.write(serialize(filtered), (err) => this.onStanzaWritten(seq, err));
    return true;
  }

  /**
   * Resolves true once every stanza taken so far left for the transport (the socket's write callback), false if the
   * connection went first. The hook point for stream management (XEP-0198): there it resolves on the client's <a/>.
   */
  whenWritten(): Promise<boolean> {
    if (this.management) return this.management.whenAcked();
    const target = this.taken;
    if (this.written >= target) return Promise.resolve(true);
    if (this.isWriteFailed) return Promise.resolve(false);
    return new Promise((resolve) => this.writeWaiters.push({ target, resolve }));
  }

  /** The transport reports writes in order: the stanza `seq` and every one before it are out, or the rest never will be. */
  private onStanzaWritten(seq: number, err: Error | null | undefined): void {
    if (err) {
      this.failWrites();
      return;
    }
    if (seq > this.written) this.written = seq;
    while (this.writeWaiters.length > 0 && this.writeWaiters[0]!.target <= this.written) this.writeWaiters.shift()!.resolve(true);
  }

  private failWrites(): void {
    this.isWriteFailed = true;
    for (const waiter of this.writeWaiters.splice(0)) waiter.resolve(this.written >= waiter.target);
  }

  /** Close the stream: header if none was sent yet, the error if any, `</stream:stream>`, then the TCP connection. */
  close(condition?: string, text?: string, appCondition?: Element): void {
    if (this.hibernating) return this.endHibernation();
    if (this.isClosedNow) return;
    this.isClosedNow = true;
    this.parser.stop();
    this.queue.length = 0;
    this.clearTimeout();
    if (!this.isHeaderSent) this.sendHeader();
    if (condition) {
      const error = streamError(condition as StreamErrorCondition, text);
      if (appCondition) error.append(appCondition);
      this.write(error.toString());
    }
    this.write(this.connection.isFramed ? CLOSE_FRAME : STREAM_CLOSE);
    this.log.debug({ condition }, 'closing stream');
    this.connection.end();
    this.closeTimer = setTimeout(() => this.connection.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
    this.unregister();
    this.endManagement();
  }

  // --- stream management (XEP-0198): hibernation and resumption ------------------------------------------

  get isHibernating(): boolean {
    return this.hibernating;
  }

  manage(hooks: SessionManagement | undefined): void {
    this.management = hooks;
  }

  dropConnection(): void {
    if (this.isClosedNow || this.hibernating) return;
    this.log.info('connection dropped as dead');
    this.connection.destroy();
  }

  resume(from: ClientSession): boolean {
    const other = from instanceof C2sSession ? from : undefined;
    if (!other || other === this || other.isClosedNow || !other.account || other.resource) return false;
    if (other.account !== this.account || other.domain !== this.domain || !this.resource || (this.isClosedNow && !this.hibernating)) return false;
    if (!this.hibernating) this.abandonConnection();
    const connection = other.handOver(this);
    this.connection = connection;
    this.parser = other.parser;
    this.hibernating = false;
    this.isClosedNow = false;
    this.isPaused = false;
    this.isHeaderSent = true;
    this.isWriteFailed = false;
    this.written = this.taken;
    this.credential = other.credential;
    connection.attach({
      data: (chunk) => this.parser.write(chunk),
      error: (err) => this.log.debug({ err: err.message }, 'socket error'),
      close: () => this.onSocketClosed(),
    });
    for (const item of other.queue.splice(0)) this.enqueue({ ...item, generation: this.generation });
    this.ctx.onResumed?.(this);
    this.log.info({ jid: this.full, address: other.address }, 'session resumed on a new connection');
    return true;
  }

  /** The old connection of a session resumed elsewhere before it was known dead: it closes without ending the session. */
  private abandonConnection(): void {
    const old = this.connection;
    old.attach({ data: () => undefined, error: () => undefined, close: () => undefined });
    this.parser.stop();
    this.queue.length = 0;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.failWrites();
    old.destroy();
  }

  /** This authenticated stream's connection goes to `to` (resumption): this session ends quietly, the connection stays. */
  private handOver(to: C2sSession): Connection {
    this.forwardTo = to;
    this.isClosedNow = true;
    this.clearTimeout();
    if (this.isPaused) {
      this.isPaused = false;
      this.connection.resume();
    }
    this.ctx.onClosed(this);
    this.resolveClosed();
    return this.connection;
  }

  /** Stanzas for a hibernating session: stream management's filter queues them (taken); anything else is refused. */
  private queueHibernating(stanza: Stanza): boolean {
    const filtered = this.filtersOut === undefined || this.filtersOut.isEmpty ? stanza : this.filter(this.filtersOut, stanza);
    return filtered === undefined;
  }

  private endHibernation(): void {
    this.hibernating = false;
    this.isClosedNow = true;
    this.log.debug('hibernation ended');
    this.unregister();
    this.endManagement();
    this.ctx.onClosed(this);
    this.resolveClosed();
  }

  private endManagement(): void {
    const management = this.management;
    this.management = undefined;
    management?.ended();
  }

  /**
   * Close an authenticated stream whose account was deleted or got a new password since it authenticated, as
   * Prosody's mod_c2s does on user-deleted and user-password-changed. Nothing for a stream not authenticated.
   */
  async recheckAccount(): Promise<void> {
    if (!this.account || this.isClosedNow) return;
    const current = await this.api!.users.scramCredentials(this.account, 'sha256');
    if (this.isClosedNow) return;
    if (!current) {
      this.log.info({ jid: this.account }, 'account deleted: closing its stream');
      this.close('not-authorized', 'The account was deleted.');
    } else if (!this.credential || !current.storedKey.equals(this.credential)) {
      this.log.info({ jid: this.account }, 'password changed: closing the stream');
      this.close('reset', 'The password was changed; log in again with the new one.');
    }
  }

  /** Drop the connection now (shutdown, after the grace period). */
  destroy(): void {
    this.connection.destroy();
  }

  /** Resolves once the TCP connection is gone (shutdown waits for it). */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  // --- transport -----------------------------------------------------------------------------------

  private write(text: string): void {
    if (!this.connection.isWritable) return;
    this.connection.write(text);
  }

  /**
   * Run a stanza through the host's filters (Prosody's session.filter). A filter that throws is a bug in its module:
   * logged with its name, and the stanza goes no further.
   */
  private filter(chain: StanzaFilterChain, stanza: Stanza): Stanza | undefined {
    try {
      return chain.run(stanza, this);
    } catch (err) {
      this.log.error({ err, module: filterOwner(err), stanza: stanza.name }, 'a session filter failed; stanza dropped');
      return undefined;
    }
  }

  private newParser(): StreamParser | FrameReader {
    const generation = ++this.generation;
    const Parser = this.connection.isFramed ? FrameReader : StreamParser;
    return new Parser(this.ctx.settings.c2s_stanza_size_limit, {
      onStreamStart: (header) => this.enqueue({ kind: 'start', header, generation }),
      onElement: (el) => this.enqueue({ kind: 'element', el, generation }),
      onStreamEnd: () => this.enqueue({ kind: 'end', generation }),
      onError: (failure) => this.enqueue({ kind: 'error', failure, generation }),
    });
  }

  /** A new stream on the same connection (RFC 6120 §5.4.3.3, §6.4.6): forget the old parser and what it queued. */
  private restartStream(): void {
    this.parser.stop();
    this.isHeaderSent = false;
    this.parser = this.newParser();
  }

  private onSocketClosed(): void {
    this.clearTimeout();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    // XEP-0198 §5: a connection lost (not a stream we or the client closed) may leave the session for resumption.
    const isKept = !this.isClosedNow && this.resource !== '' && this.management?.connectionLost() === true;
    this.isClosedNow = !isKept;
    this.parser.stop();
    this.queue.length = 0;
    this.failWrites();
    if (isKept) {
      this.hibernating = true;
      this.log.debug('connection lost: hibernating');
      return;
    }
    this.unregister();
    this.endManagement();
    this.log.debug('client disconnected');
    this.ctx.onClosed(this);
    this.resolveClosed();
  }

  private clearTimeout(): void {
    if (this.timeout) clearTimeout(this.timeout);
    this.timeout = undefined;
  }

  // --- ordered processing ----------------------------------------------------------------------------

  private enqueue(item: QueueItem): void {
    if (this.forwardTo) return this.forwardTo.enqueue({ ...item, generation: this.forwardTo.generation });
    if (this.isClosedNow) return;
    this.queue.push(item);
    if (this.queue.length >= MAX_QUEUED && !this.isPaused) {
      this.isPaused = true;
      this.connection.pause();
    }
    if (!this.isDraining) void this.drain();
  }

  /** One item at a time, in order: a stanza's routing finishes before the next one starts. */
  private async drain(): Promise<void> {
    this.isDraining = true;
    try {
      for (let item = this.queue.shift(); item && !this.isClosedNow; item = this.queue.shift()) {
        if (item.generation !== this.generation) continue;
        await this.process(item);
      }
    } catch (err) {
      this.log.error({ err }, 'c2s session failed');
      this.close('internal-server-error');
    } finally {
      this.isDraining = false;
      if (this.isPaused && !this.isClosedNow) {
        this.isPaused = false;
        this.connection.resume();
      }
    }
  }

  private async process(item: QueueItem): Promise<void> {
    switch (item.kind) {
      case 'start':
        return this.onStreamStart(item.header);
      case 'element':
        return this.onElement(item.el);
      case 'end':
        this.close();
        return;
      case 'error':
        this.close(item.failure.condition, item.failure.text);
        return;
    }
  }

  // --- stream header (RFC 6120 §4.7) -------------------------------------------------------------------

  private sendHeader(): void {
    this.isHeaderSent = true;
    const header = { id: randomBytes(9).toString('base64url'), from: this.domain || undefined };
    this.write(this.connection.isFramed ? openFrame(header) : streamHeader(header));
  }

  private async onStreamStart(header: Element): Promise<void> {
    const problem = this.checkHeader(header);
    if (problem) {
      this.close(problem.condition, problem.text);
      return;
    }
    this.sendHeader();
    const features = this.features();
    // Modules add theirs (XEP-0352 csi, XEP-0198 sm); a failing one is logged and the rest are offered.
    await this.api!.fireGlobal('stream-features', { session: this, features }).catch((err: unknown) =>
      this.log.error({ err, module: filterOwner(err) }, 'a stream-features handler failed'),
    );
    if (this.isClosedNow) return;
    this.write(features.toString());
  }

  private checkHeader(header: Element): { condition: StreamErrorCondition; text: string } | undefined {
    // A framed stream's header is <open/>, whose namespace the frame reader checked (RFC 7395 §3.4).
    if (!this.connection.isFramed) {
      const [prefix, local] = header.name.includes(':') ? header.name.split(':', 2) : ['', header.name];
      const streamNs = prefix ? header.attrs[`xmlns:${prefix}`] : header.attrs.xmlns;
      if (local !== 'stream' || streamNs !== NS_STREAM) return { condition: 'invalid-namespace', text: `Expected <stream:stream xmlns:stream='${NS_STREAM}'>.` };
      if (header.attrs.xmlns !== NS_CLIENT) return { condition: 'invalid-namespace', text: `This port serves ${NS_CLIENT} streams.` };
    }
    const version = header.attrs.version;
    // A missing version means pre-1.0 XMPP (RFC 6120 §4.7.5), which we do not speak.
    if (!version || !/^1\.\d+$/.test(version)) return { condition: 'unsupported-version', text: 'Only XMPP 1.0 streams are supported.' };
    const to = header.attrs.to;
    if (!to) return { condition: 'improper-addressing', text: "A 'to' attribute is required on the stream header." };
    const parsed = parseJid(to);
    const domain = parsed.ok && parsed.jid.local === null && parsed.jid.resource === null ? parsed.jid.domain : undefined;
    const api = domain ? this.ctx.hostApi(domain) : undefined;
    if (!domain || !api) return { condition: 'host-unknown', text: `This server does not serve ${to}.` };
    // A restarted stream must stay on the host it authenticated for.
    if (this.domain && domain !== this.domain) return { condition: 'host-unknown', text: 'The stream restarted for another host.' };
    this.domain = domain;
    this.api = api;
    this.filtersIn = api.sessionFilters('stanzas/in');
    this.filtersOut = api.sessionFilters('stanzas/out');
    return undefined;
  }

  /** Stream features for the current stage (RFC 6120 §4.3.2). */
  private features(): Element {
    const features = xml('stream:features');
    if (this.account) {
      features.append(xml('bind', { xmlns: NS_BIND }));
      // RFC 3921 session establishment is a no-op; <optional/> tells modern clients to skip it (RFC 3921bis).
      features.append(xml('session', { xmlns: NS_SESSION }, xml('optional')));
      features.append(xml('ver', { xmlns: NS_ROSTER_VER }));
      return features;
    }
    if (!this.connection.isSecure && this.connection.startTls) {
      const starttls = xml('starttls', { xmlns: NS_TLS });
      if (this.ctx.settings.c2s_require_encryption) starttls.append(xml('required'));
      features.append(starttls);
    }
    const mechanisms = offeredMechanisms({ isSecure: this.connection.isSecure, requireEncryption: this.ctx.settings.c2s_require_encryption });
    if (mechanisms.length > 0) {
      features.append(xml('mechanisms', { xmlns: NS_SASL }, ...mechanisms.map((m) => xml('mechanism', {}, m))));
    }
    return features;
  }

  // --- elements --------------------------------------------------------------------------------------

  private async onElement(parsed: Element): Promise<void> {
    const el = this.filtersIn === undefined || this.filtersIn.isEmpty ? parsed : this.filter(this.filtersIn, parsed);
    if (el === undefined) return;
    const ns = el.attrs.xmlns ?? NS_CLIENT;
    if (!this.account) return this.onUnauthenticated(el, ns);
    if (ns !== NS_CLIENT) return this.onNonza(el, ns);
    if (!STANZA_KINDS.has(el.name)) {
      this.close('unsupported-stanza-type', `<${el.name}/> in ${ns} is not a stanza.`);
      return;
    }
    if (this.isBindRequest(el)) return this.bind(el);
    if (this.isSessionRequest(el)) {
      this.deliver(reply(el));
      return;
    }
    if (!this.resource) {
      // RFC 6120 §7.1: no stanzas before a resource is bound.
      this.bounce(el, 'auth', 'not-authorized');
      return;
    }
    await this.route(el);
  }

  /** Another namespace's top-level element after authentication goes to the module that claims it (Prosody's stanza/<xmlns>:<name>). */
  private async onNonza(el: Element, ns: string): Promise<void> {
    const claimed = await this.api!.fireGlobal(`stanza/${ns}:${el.name}`, { session: this, stanza: el });
    if (claimed === undefined && !this.isClosedNow) this.close('unsupported-stanza-type', `<${el.name}/> in ${ns} is not supported here.`);
  }

  private async onUnauthenticated(el: Element, ns: string): Promise<void> {
    if (el.name === 'starttls' && ns === NS_TLS) return this.starttls();
    if (ns === NS_SASL) return this.onSasl(el);
    // RFC 6120 §4.9.3.12: stanzas before authentication are a stream error.
    if (ns === NS_CLIENT && STANZA_KINDS.has(el.name)) this.close('not-authorized', 'Authenticate first.');
    else this.close('unsupported-stanza-type', `<${el.name}/> in ${ns} is not expected here.`);
  }

  // --- STARTTLS (RFC 6120 §5) ------------------------------------------------------------------------

  private starttls(): void {
    if (this.connection.isSecure || !this.connection.startTls) {
      // §5.4.2.2: failure, then close.
      this.write(xml('failure', { xmlns: NS_TLS }).toString());
      this.close();
      return;
    }
    // The connection stops reading plaintext before <proceed/> goes out: the next bytes are the TLS handshake.
    this.parser.stop();
    this.connection.startTls(
      xml('proceed', { xmlns: NS_TLS }).toString(),
      () => {
        // SASL state was made for a plaintext stream (its offers, encryption-required): start afresh.
        this.sasl = undefined;
        this.restartStream();
      },
      (protocol) => this.log.debug({ protocol }, 'STARTTLS done'),
    );
  }

  // --- SASL (RFC 6120 §6) ----------------------------------------------------------------------------

  private async onSasl(el: Element): Promise<void> {
    const api = this.api;
    if (!api) return;
    this.sasl ??= new SaslNegotiation({
      host: this.domain,
      users: api.users,
      address: this.address,
      isSecure: this.connection.isSecure,
      requireEncryption: this.ctx.settings.c2s_require_encryption,
    });
    const result = await this.sasl.handle(el);
    if (this.isClosedNow) return;
    // Read before <success/> is written: right after it the client may send its new stream header.
    const credential = result.jid ? (await api.users.scramCredentials(result.jid, 'sha256'))?.storedKey : undefined;
    if (this.isClosedNow) return;
    if (result.jid && !credential) {
      this.close('not-authorized', 'The account was deleted.');
      return;
    }
    this.write(result.reply.toString());
    if (result.jid) {
      this.account = result.jid;
      this.credential = credential;
      this.log.info({ jid: result.jid }, 'authenticated');
      this.ctx.onAuthenticated?.(this);
      this.restartStream();
      return;
    }
    if (this.sasl.isExhausted) this.close('policy-violation', 'Too many failed authentication attempts.');
  }

  // --- resource binding (RFC 6120 §7) ----------------------------------------------------------------

  private isBindRequest(el: Element): boolean {
    return el.name === 'iq' && el.attrs.type === 'set' && el.getChild('bind', NS_BIND) !== undefined;
  }

  private isSessionRequest(el: Element): boolean {
    return el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS_SESSION) !== undefined;
  }

  private bind(iq: Element): void {
    if (this.resource) {
      // One resource per stream (RFC 6120 §7.7.2.1 lets us refuse a second one).
      this.bounce(iq, 'cancel', 'not-allowed');
      return;
    }
    const requested = iq.getChild('bind', NS_BIND)?.getChildText('resource')?.trim();
    const resource = requested ? this.prepResource(requested) : `xmppd-${randomBytes(6).toString('base64url')}`;
    if (resource === undefined) {
      this.bounce(iq, 'modify', 'bad-request');
      return;
    }
    const api = this.api!;
    const full = `${this.account}/${resource}`;
    const existing = api.sessions.byFull(full);
    // Prosody's default conflict rule ("kick_old"): the new session wins (RFC 6120 §7.7.2.2).
    if (existing) existing.close('conflict', 'Replaced by a new connection.');
    this.resource = resource;
    this.origin = { type: 'c2s', host: this.domain, jid: full, send: (st) => this.deliver(st) };
    api.sessions.add(this);
    this.clearTimeout();
    this.log.info({ jid: full }, 'resource bound');
    this.deliver(reply(iq, xml('bind', { xmlns: NS_BIND }, xml('jid', {}, full))));
  }

  private prepResource(requested: string): string | undefined {
    const parsed = parseJid(`${this.account}/${requested}`);
    return parsed.ok && parsed.jid.resource !== null ? parsed.jid.resource : undefined;
  }

  // --- stanzas -----------------------------------------------------------------------------------------

  private async route(stanza: Element): Promise<void> {
    if (stanza.name === 'iq' && (!IQ_TYPES.has(stanza.attrs.type ?? '') || !stanza.attrs.id)) {
      this.bounce(stanza, 'modify', 'bad-request');
      return;
    }
    // RFC 6120 §8.1.2.1: the server stamps the sender's full JID, whatever the client wrote.
    stanza.attrs.from = this.full;
    try {
      await this.api!.route(stanza, this.origin!);
    } catch (err) {
      // The router bounces StanzaErrors itself; anything reaching here is a bug to log, not to kill the stream.
      this.log.error({ err, stanza: stanza.name }, 'routing failed');
    }
  }

  /** Answer a stanza with an error (RFC 6120 §8.3), never an error to an error or a result. */
  private bounce(stanza: Element, type: string, condition: string): void {
    const kind = stanza.attrs.type;
    if (kind === 'error' || (stanza.name === 'iq' && kind === 'result')) return;
    const reply = xml(stanza.name, { id: stanza.attrs.id, type: 'error', to: this.full || undefined }, xml('error', { type }, xml(condition, { xmlns: NS_STANZAS })));
    this.deliver(reply);
  }

  // --- teardown ----------------------------------------------------------------------------------------

  /** Leave the registry; an available resource going away is an unavailable presence (RFC 6121 §4.5.1). */
  private unregister(): void {
    const api = this.api;
    if (!api || !this.resource || !this.origin) return;
    const origin = this.origin;
    this.origin = undefined;
    const wasAvailable = this.available;
    this.available = false;
    api.sessions.remove(this);
    if (!wasAvailable) return;
    const unavailable = xml('presence', { type: 'unavailable', from: this.full });
    api.route(unavailable, { ...origin, send: () => undefined }).catch((err: unknown) => this.log.error({ err }, 'routing the final unavailable presence failed'));
  }
}
