// An outgoing server-to-server stream (RFC 6120 §§4-5, XEP-0220, XEP-0368): resolve, connect, STARTTLS, then
// dialback for our domain; or a short-lived stream that asks the authoritative server to verify a key.
// Prosody's plugins/mod_s2s.lua (s2sout) with mod_dialback's initiating side.

import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import type { Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { StreamParser } from '../../util/xmpp-stream/stream-parser.js';
import { NS_SASL, NS_STREAM, NS_STREAMS_ERRORS, NS_TLS } from '../../util/xmpp-stream/namespaces.js';
import { peerCertificateOf } from '../../net/connection.js';
import { NS_SM, newlyAcked, parseH, wireH } from '../../util/sm-count.js';
import { certificateProblem } from './certs.js';
import { STREAM_CLOSE } from '../../util/xmpp-stream/stream-errors.js';
import { dialbackKey } from './dialback.js';
import { NS_DIALBACK, dialbackElement, s2sHeader, textOf } from './stream.js';
import type { Target, TargetResolver } from './resolve.js';

export interface S2sSettings {
  requireEncryption: boolean;
  secureAuth: boolean;
  timeoutMs: number;
  idleMs: number;
  stanzaSizeLimit: number;
  /** PEM trust anchors for peer certificates; undefined: Node's bundled roots. */
  ca: string | undefined;
}

export interface OutgoingContext {
  settings: S2sSettings;
  log: Logger;
  secret: Buffer;
  resolver: TargetResolver;
  /** Our key and certificate, shown to peers for SASL EXTERNAL (XEP-0178); undefined before the listeners made them. */
  identity(): { key: string; cert: string } | undefined;
}

export type FailureCondition = 'remote-server-not-found' | 'remote-server-timeout';

/**
 * Why a remote domain could not be reached or authenticated; the message names the domain and the reason. RFC 6120
 * §8.3.3.16: remote-server-not-found when it cannot be resolved or connected to (type cancel); §8.3.3.17:
 * remote-server-timeout when no stream was set up in time (type wait) or its negotiation failed because of TLS,
 * SASL or dialback (type cancel: trying again fails the same way).
 */
export class S2sFailure extends Error {
  readonly type: 'cancel' | 'wait';
  constructor(readonly condition: FailureCondition, message: string, type?: 'cancel' | 'wait') {
    super(message);
    this.name = 'S2sFailure';
    this.type = type ?? (condition === 'remote-server-timeout' ? 'wait' : 'cancel');
  }
}

/** After our `</stream:stream>`, wait this long for the peer's before dropping the connection. */
const CLOSE_GRACE_MS = 3_000;
/** A peer that does not read: close rather than buffer without bound. */
const MAX_WRITE_BUFFER = 8 * 1024 * 1024;

export type Purpose = { kind: 'route' } | { kind: 'verify'; id: string; key: string };

/** What became of a stanza sent with stream management on: the peer acknowledged it, or the stream ended first. */
export type AckOutcome = 'acknowledged' | 'lost';

/** Unacknowledged stanzas one stream may hold; past it the peer is not keeping up and the stream is closed. */
const MAX_UNACKED = 10_000;

/** XEP-0198 on an outgoing stream (no resumption between servers, as in Prosody). */
interface SmOut {
  /** The peer said <enabled/>; until then (or after <failed/>) nothing is known. */
  isEnabled: boolean;
  /** Stanzas the peer acknowledged, a running total; `acked + unacked.length` is what we sent since <enable/>. */
  acked: number;
  unacked: Array<((outcome: AckOutcome) => void) | undefined>;
  isAwaitingAck: boolean;
  requestTimer: NodeJS.Immediate | undefined;
  ackTimer: NodeJS.Timeout | undefined;
}

export class OutgoingStream {
  /** Resolves once the stream may carry stanzas (route) or the key was answered (verify); rejects with S2sFailure. */
  readonly ready: Promise<void>;
  /** For a verify stream: the authoritative server said the key is valid. */
  isVerified = false;
  /** The peer's certificate is valid for the remote domain (RFC 6125) against s2s_ca_file. */
  isCertificateValid = false;
  /** How this stream authenticated us to the peer, once it did. */
  mechanism: 'EXTERNAL' | 'dialback' | undefined;
  /** Why the peer's certificate does not authenticate it (for s2s_secure_auth's refusal). */
  private certificateIssue = 'it has not shown a certificate';
  /** SASL EXTERNAL: sent and not answered, then succeeded (the restarted stream's features end setup). */
  private sasl: 'none' | 'tried' | 'succeeded' | 'failed' = 'none';
  /** The last features offered XEP-0198. */
  private isSmOffered = false;
  private sm: SmOut | undefined;
  onClosed: (() => void) | undefined;
  /** Why setup failed, once it did. */
  failure: S2sFailure | undefined;
  private resolveReady!: () => void;
  private rejectReady!: (err: S2sFailure) => void;
  private isSettled = false;
  private isClosed = false;
  private socket: Socket | undefined;
  private parser: StreamParser | undefined;
  private streamId = '';
  private isSecure = false;
  private setupTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly ctx: OutgoingContext, readonly local: string, readonly remote: string, private readonly purpose: Purpose) {
    this.log = ctx.log.child({ s2sout: remote, from: local, purpose: purpose.kind });
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers may attach later; an unobserved failure must not crash the process.
    this.ready.catch(() => undefined);
    this.setupTimer = setTimeout(() => this.fail('remote-server-timeout', `${remote} did not complete a stream within ${ctx.settings.timeoutMs / 1000} s`), ctx.settings.timeoutMs);
    this.setupTimer.unref();
    void this.start();
  }

  get isReady(): boolean {
    return this.isSettled && !this.isClosed;
  }

  /** Stream management is on: stanzas sent are acknowledged (XEP-0198). */
  get isManaged(): boolean {
    return this.sm?.isEnabled === true;
  }

  /**
   * Write a serialized stanza on an authenticated stream; false when it cannot take it. With stream management,
   * `onAck` learns later whether the peer acknowledged it or the stream ended first; without, it is never called.
   */
  send(text: string, onAck?: (outcome: AckOutcome) => void): boolean {
    if (!this.isReady || !this.socket || this.socket.destroyed) return false;
    if (this.socket.writableLength > MAX_WRITE_BUFFER || (this.sm && this.sm.unacked.length >= MAX_UNACKED)) {
      this.close();
      return false;
    }
    this.socket.write(text);
    if (this.sm) {
      this.sm.unacked.push(onAck);
      this.requestAck();
    }
    this.touch();
    return true;
  }

  close(error?: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.clearTimers();
    this.parser?.stop();
    this.endSm();
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      socket.end(`${error ?? ''}${STREAM_CLOSE}`);
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    }
    if (!this.isSettled) this.settle(new S2sFailure('remote-server-not-found', `the stream to ${this.remote} was closed during setup`));
    this.onClosed?.();
  }

  private async start(): Promise<void> {
    let targets: Target[];
    try {
      targets = await this.ctx.resolver.targets(this.remote);
    } catch (err) {
      return this.fail('remote-server-not-found', `${this.remote}: ${(err as Error).message}`);
    }
    const reasons: string[] = [];
    for (const target of targets) {
      if (this.isClosed) return;
      try {
        const socket = await this.connect(target);
        if (this.isClosed) {
          socket.destroy();
          return;
        }
        this.log.debug({ address: target.address, port: target.port, directTls: target.isDirectTls }, 'connected');
        return this.attach(socket, target.isDirectTls);
      } catch (err) {
        reasons.push(`${target.host}:${target.port} ${describe(err)}`);
      }
    }
    this.fail('remote-server-not-found', `${this.remote} cannot be reached (${reasons.join('; ')})`);
  }

  private connect(target: Target): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = target.isDirectTls
        ? connectTls({ host: target.address, port: target.port, ...this.tlsOptions(), ALPNProtocols: ['xmpp-server'] })
        : connectTcp({ host: target.address, port: target.port });
      const onError = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once(target.isDirectTls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        if (target.isDirectTls) this.onSecured(socket as TLSSocket);
        resolve(socket);
      });
    });
  }

  private tlsOptions(): { servername: string; ca: string | undefined; rejectUnauthorized: false; minVersion: 'TLSv1.2'; key?: string; cert?: string } {
    // Not rejected here: an unverified certificate still allows dialback unless s2s_secure_auth (XEP-0220 §1.2).
    // Our certificate goes along so the peer can take SASL EXTERNAL instead (XEP-0178 §2).
    return { servername: this.remote, ca: this.ctx.settings.ca, rejectUnauthorized: false, minVersion: 'TLSv1.2', ...this.ctx.identity() };
  }

  private onSecured(socket: TLSSocket): void {
    this.isSecure = true;
    const problem = certificateProblem(peerCertificateOf(socket), this.remote);
    this.isCertificateValid = problem === undefined;
    if (problem) this.certificateIssue = problem;
  }

  private attach(socket: Socket, isSecure: boolean): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.parser?.write(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => {
      if (!this.isSettled) this.fail('remote-server-not-found', `${this.remote} closed the connection during setup`);
      else this.close();
    });
    this.isSecure = isSecure;
    this.openStream();
  }

  private openStream(): void {
    this.parser?.stop();
    this.streamId = '';
    this.parser = new StreamParser(this.ctx.settings.stanzaSizeLimit, {
      onStreamStart: (header) => (this.streamId = header.attrs.id ?? ''),
      onElement: (el) => this.onElement(el),
      // The peer closing its stream before ours was set up failed the setup (ejabberd does it when it crashes).
      onStreamEnd: () => (this.isSettled ? this.close() : this.fail('remote-server-not-found', `${this.remote} closed its stream during setup`)),
      onError: (failure) => this.fail('remote-server-not-found', `${this.remote} sent a broken stream (${failure.condition})`),
    });
    this.socket!.write(s2sHeader({ from: this.local, to: this.remote }));
  }

  private onElement(el: Element): void {
    const ns = el.attrs.xmlns;
    if (ns === NS_STREAM && el.name === 'features') return this.onFeatures(el);
    if (ns === NS_STREAM && el.name === 'error') {
      const condition = el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS_STREAMS_ERRORS && c.name !== 'text');
      const text = el.getChild('text', NS_STREAMS_ERRORS);
      const why = text ? `: ${textOf(text).slice(0, 300)}` : '';
      const reason = `${this.remote} ended the stream with ${condition?.name ?? 'an error'}${why}`;
      // A peer that refuses to authenticate us (not-authorized: our certificate, its secure_auth) failed the negotiation.
      return condition?.name === 'not-authorized' ? this.refuse(reason) : this.fail('remote-server-not-found', reason);
    }
    if (ns === NS_TLS && el.name === 'proceed') return this.upgrade();
    if (ns === NS_TLS && el.name === 'failure') return this.refuse(`${this.remote} failed STARTTLS`);
    if (ns === NS_SASL && this.sasl === 'tried' && el.name === 'success') return this.onSaslSuccess();
    if (ns === NS_SASL && this.sasl === 'tried' && el.name === 'failure') return this.onSaslFailure(el);
    if (ns === NS_SM) return this.onSm(el);
    if (ns === NS_DIALBACK && el.name === 'result' && this.purpose.kind === 'route') return this.onResult(el);
    if (ns === NS_DIALBACK && el.name === 'verify' && this.purpose.kind === 'verify') return this.onVerify(el);
    // RFC 6120 §4.1: this stream carries our stanzas only; anything else from the peer is not for us.
    this.log.debug({ element: el.name, ns }, 'ignored an element on an outgoing stream');
  }

  private onFeatures(features: Element): void {
    this.isSmOffered = features.getChild('sm', NS_SM) !== undefined;
    const starttls = features.getChild('starttls', NS_TLS);
    if (!this.isSecure && starttls) {
      this.socket!.write(`<starttls xmlns='${NS_TLS}'/>`);
      return;
    }
    if (!this.isSecure && this.ctx.settings.requireEncryption) {
      return this.refuse(`${this.remote} does not offer TLS and s2s_require_encryption is on`);
    }
    if (this.ctx.settings.secureAuth && !this.isCertificateValid) {
      return this.refuse(`${this.remote} is not authenticated: ${this.certificateIssue}, and s2s_secure_auth is on`);
    }
    if (this.sasl === 'succeeded') {
      this.mechanism = 'EXTERNAL';
      this.log.info({ secure: this.isSecure, peerCertificateValid: this.isCertificateValid }, 'outgoing s2s stream authenticated (SASL EXTERNAL)');
      return this.authenticated();
    }
    const offersExternal = features
      .getChild('mechanisms', NS_SASL)
      ?.getChildren('mechanism')
      .some((m) => textOf(m).trim() === 'EXTERNAL');
    // XEP-0178 §2: the peer trusts our certificate for our domain; the authzid is that domain.
    if (this.purpose.kind === 'route' && this.isSecure && offersExternal && this.sasl === 'none') {
      this.sasl = 'tried';
      this.socket!.write(`<auth xmlns='${NS_SASL}' mechanism='EXTERNAL'>${Buffer.from(this.local).toString('base64')}</auth>`);
      return;
    }
    if (this.purpose.kind === 'route' && this.ctx.settings.secureAuth) {
      const why = this.sasl === 'failed' ? 'refused our SASL EXTERNAL' : 'does not offer SASL EXTERNAL for our certificate';
      return this.refuse(`${this.remote} ${why}, and s2s_secure_auth allows no dialback`);
    }
    this.sendDialback();
  }

  private sendDialback(): void {
    if (this.purpose.kind === 'verify') {
      const p = this.purpose;
      this.socket!.write(dialbackElement('verify', { from: this.local, to: this.remote, id: p.id }, p.key));
      return;
    }
    if (!this.streamId) return this.refuse(`${this.remote} gave its stream no id, which dialback needs`);
    // XEP-0220 §2.1.1: the key binds receiving domain, originating domain and the stream the receiver chose.
    const key = dialbackKey(this.ctx.secret, this.remote, this.local, this.streamId);
    this.socket!.write(dialbackElement('result', { from: this.local, to: this.remote }, key));
  }

  /** RFC 6120 §6.4.6: a new stream on the same TLS connection, now authenticated. */
  private onSaslSuccess(): void {
    this.sasl = 'succeeded';
    this.openStream();
  }

  /** The peer would not take our certificate: dialback on this stream unless s2s_secure_auth (XEP-0178 §2, step 7). */
  private onSaslFailure(el: Element): void {
    this.sasl = 'failed';
    const condition = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name ?? 'failure';
    this.log.info({ condition }, 'the peer refused SASL EXTERNAL');
    if (this.ctx.settings.secureAuth) return this.refuse(`${this.remote} refused our SASL EXTERNAL (${condition}), and s2s_secure_auth allows no dialback`);
    this.sendDialback();
  }

  private upgrade(): void {
    const raw = this.socket!;
    this.parser?.stop();
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secured = connectTls({ socket: raw, ...this.tlsOptions() });
    secured.once('secureConnect', () => {
      this.onSecured(secured);
      this.socket = undefined;
      this.attach(secured, true);
    });
    secured.once('error', (err) => this.refuse(`TLS with ${this.remote} failed (${err.message})`));
    raw.once('close', () => secured.destroy());
  }

  private onResult(el: Element): void {
    if (el.attrs.from !== this.remote || el.attrs.to !== this.local) return;
    if (el.attrs.type === 'valid') {
      this.mechanism = 'dialback';
      this.log.info({ secure: this.isSecure }, 'outgoing s2s stream authenticated (dialback)');
      return this.authenticated();
    }
    const error = el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string');
    this.refuse(`${this.remote} refused our dialback (${el.attrs.type ?? 'no type'}${error ? `: ${error.name}` : ''})`);
  }

  private onVerify(el: Element): void {
    if (this.purpose.kind !== 'verify' || el.attrs.id !== this.purpose.id) return;
    this.isVerified = el.attrs.type === 'valid';
    this.settle();
    this.close();
  }

  /** Ready for stanzas; XEP-0198 §3 enabled first when the peer offered it, so every stanza after it is counted. */
  private authenticated(): void {
    if (this.isSmOffered && this.purpose.kind === 'route') {
      this.socket!.write(`<enable xmlns='${NS_SM}'/>`);
      this.sm = { isEnabled: false, acked: 0, unacked: [], isAwaitingAck: false, requestTimer: undefined, ackTimer: undefined };
    }
    this.touch();
    this.settle();
  }

  /** XEP-0198 elements from the peer: <enabled/>, <failed/>, <a h/>, <r/>. */
  private onSm(el: Element): void {
    const sm = this.sm;
    if (el.name === 'r') {
      // This stream carries our stanzas only: we handled none of the peer's.
      this.socket?.write(`<a xmlns='${NS_SM}' h='0'/>`);
      return;
    }
    if (!sm) return;
    if (el.name === 'enabled') {
      sm.isEnabled = true;
      this.log.debug('stream management enabled on the outgoing stream');
      return;
    }
    if (el.name === 'failed') {
      // Nothing sent so far will be acknowledged: those stanzas count as sent, as without stream management.
      this.log.debug('the peer refused stream management');
      this.sm = undefined;
      if (sm.requestTimer) clearImmediate(sm.requestTimer);
      if (sm.ackTimer) clearTimeout(sm.ackTimer);
      return;
    }
    if (el.name !== 'a') return;
    const h = parseH(el.attrs.h);
    const count = h === undefined ? undefined : newlyAcked(sm.acked, h);
    if (h === undefined || count === undefined || count > sm.unacked.length) {
      const sent = wireH(sm.acked + sm.unacked.length);
      this.log.info({ h: el.attrs.h, sent }, 'the peer acknowledged more than was sent');
      return this.close(`<stream:error><undefined-condition xmlns='${NS_STREAMS_ERRORS}'/><handled-count-too-high xmlns='${NS_SM}' h='${h ?? 0}' send-count='${sent}'/></stream:error>`);
    }
    sm.acked += count;
    sm.isAwaitingAck = false;
    if (sm.ackTimer) clearTimeout(sm.ackTimer);
    sm.ackTimer = undefined;
    if (count > 0) this.log.debug({ h, acknowledged: count }, 'the peer acknowledged stanzas');
    for (const onAck of sm.unacked.splice(0, count)) onAck?.('acknowledged');
    if (sm.unacked.length > 0) this.requestAck();
  }

  /** One <r/> per turn while stanzas wait for acknowledgement; unanswered within s2s_timeout, the stream is dead. */
  private requestAck(): void {
    const sm = this.sm;
    if (!sm || sm.isAwaitingAck || sm.requestTimer) return;
    sm.requestTimer = setImmediate(() => {
      sm.requestTimer = undefined;
      if (this.isClosed || this.sm !== sm || sm.unacked.length === 0) return;
      sm.isAwaitingAck = true;
      this.socket?.write(`<r xmlns='${NS_SM}'/>`);
      sm.ackTimer = setTimeout(() => {
        this.log.info('the peer did not acknowledge in time; closing the stream');
        this.close();
      }, this.ctx.settings.timeoutMs);
      sm.ackTimer.unref();
    });
  }

  /** The stream ends: what the peer did not acknowledge may not have arrived. */
  private endSm(): void {
    const sm = this.sm;
    if (!sm) return;
    this.sm = undefined;
    if (sm.requestTimer) clearImmediate(sm.requestTimer);
    if (sm.ackTimer) clearTimeout(sm.ackTimer);
    if (sm.unacked.length > 0) this.log.info({ unacknowledged: sm.unacked.length }, 'outgoing stream ended with unacknowledged stanzas');
    for (const onAck of sm.unacked.splice(0)) onAck?.('lost');
  }

  /** Close an authenticated stream nobody used for a while (Prosody closes idle s2s too). */
  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.log.debug('closing an idle outgoing stream');
      this.close();
    }, this.ctx.settings.idleMs);
    this.idleTimer.unref();
  }

  private settle(failure?: S2sFailure): void {
    if (this.isSettled) return;
    this.isSettled = true;
    if (this.setupTimer) clearTimeout(this.setupTimer);
    this.setupTimer = undefined;
    this.failure = failure;
    if (failure) this.rejectReady(failure);
    else this.resolveReady();
  }

  /** RFC 6120 §8.3.3.17: the stream is up but its negotiation failed (TLS, SASL, dialback). */
  private refuse(reason: string): void {
    this.fail('remote-server-timeout', reason, 'cancel');
  }

  private fail(condition: FailureCondition, reason: string, type?: 'cancel' | 'wait'): void {
    if (this.isSettled && !this.isClosed) {
      this.log.info({ reason }, 'outgoing s2s stream ended');
      this.close();
      return;
    }
    if (this.isSettled) return;
    this.log.info({ reason, condition }, 'outgoing s2s stream failed');
    this.settle(new S2sFailure(condition, reason, type));
    this.close();
  }

  private clearTimers(): void {
    if (this.setupTimer) clearTimeout(this.setupTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ETIMEDOUT') return 'timed out';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'unreachable';
  return code ?? (err as Error).message;
}
