// An incoming server-to-server stream (RFC 6120 §§4-5, XEP-0220 receiving and authoritative sides): STARTTLS,
// dialback (verified by connecting back), then stanzas whose `from` domain must be the one authenticated.
// Prosody's plugins/mod_s2s.lua (s2sin) with mod_dialback.

import { randomBytes, randomUUID } from 'node:crypto';
import { escapeXML, xml, type Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { parseJid } from '../../util/jid.js';
import type { Connection } from '../../net/connection.js';
import { StreamParser } from '../../util/xmpp-stream/stream-parser.js';
import { NS_SASL, NS_STREAM, NS_TLS } from '../../util/xmpp-stream/namespaces.js';
import { STREAM_CLOSE, streamError, type StreamErrorCondition } from '../../util/xmpp-stream/stream-errors.js';
import type { ModuleApi, Origin, Stanza } from '../../api.js';
import { NS_SM, parseH, wireH } from '../../util/sm-count.js';
import { isValidKey } from './dialback.js';
import { certificateProblem } from './certs.js';
import { S2sFailure, type S2sSettings } from './outgoing.js';
import { NS_DIALBACK, NS_DIALBACK_FEATURE, NS_SERVER, STANZA_KINDS, dialbackElement, isServerStreamHeader, s2sHeader, textOf } from './stream.js';

export interface IncomingContext {
  settings: S2sSettings;
  log: Logger;
  secret: Buffer;
  /** The API of a virtual host served here, else undefined. */
  hostApi(domain: string): ModuleApi | undefined;
  /** Ask the authoritative server of `remote` whether `key` is its key for this stream (XEP-0220 §2.1.2). */
  verify(local: string, remote: string, streamId: string, key: string): Promise<boolean>;
  /** Send an error back to the remote sender (a bounce), through our outgoing stream to its domain. */
  bounce(stanza: Stanza, local: string): void;
  onClosed(stream: IncomingStream): void;
  /** Count the stream as one of `domain`'s; false when that domain has its most streams already. */
  admitDomain(stream: IncomingStream, domain: string): boolean;
  /** `domain` has its most authenticated incoming streams (checked before a dialback makes us connect out). */
  isDomainFull(domain: string): boolean;
  /** The stream authenticated its first domain: it leaves its address's count of unauthenticated connections. */
  onAuthenticated?(stream: IncomingStream): void;
}

/** Pause reading when this many stanzas wait for routing: a flooding peer is slowed, not buffered. */
const MAX_QUEUED = 64;
const CLOSE_GRACE_MS = 3_000;
/** Dialback requests one stream may have pending; more is a peer trying to make us connect out without bound. */
const MAX_PENDING_DIALBACK = 8;
/** SASL EXTERNAL attempts one stream may make before it is closed. */
const MAX_SASL_ATTEMPTS = 3;

type StreamErrorName = StreamErrorCondition | 'invalid-from' | 'remote-connection-failed' | 'undefined-condition';

export class IncomingStream {
  readonly id = randomUUID();
  private readonly log: Logger;
  private parser: StreamParser;
  private streamId = '';
  private local = '';
  /** Remote domains authenticated on this stream, each for the local domain it authenticated to. */
  private readonly authenticated = new Set<string>();
  private pendingDialback = 0;
  /** The domain the peer's stream header says it is (RFC 6120 §4.7.1), normalised; '' when absent. */
  private claimed = '';
  private saslAttempts = 0;
  /** XEP-0198: stanzas from the peer handled since it enabled stream management (a running total); undefined: off. */
  private handled: number | undefined;
  private isSmEnabled = false;
  private queued = 0;
  private isPaused = false;
  private chain: Promise<void> = Promise.resolve();
  private isHeaderSent = false;
  private isClosed = false;
  private readonly setupTimer: NodeJS.Timeout;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly connection: Connection, private readonly ctx: IncomingContext) {
    this.log = ctx.log.child({ s2sin: this.id.slice(0, 8), address: connection.remoteAddress });
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.parser = this.newParser();
    connection.attach({
      data: (chunk) => this.parser.write(chunk),
      error: (err) => this.log.debug({ err: err.message }, 'socket error'),
      close: () => this.onSocketClosed(),
    });
    this.setupTimer = setTimeout(() => {
      if (this.authenticated.size === 0) this.close('connection-timeout', 'Not authenticated in time.');
    }, ctx.settings.timeoutMs);
    this.setupTimer.unref();
  }

  get isSecure(): boolean {
    return this.connection.isSecure;
  }

  whenClosed(): Promise<void> {
    return this.closed;
  }

  destroy(): void {
    this.connection.destroy();
  }

  close(condition?: StreamErrorName, text?: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.parser.stop();
    clearTimeout(this.setupTimer);
    if (!this.isHeaderSent) this.sendHeader();
    if (condition) this.write(streamError(condition as StreamErrorCondition, text).toString());
    this.write(STREAM_CLOSE);
    this.log.debug({ condition, text }, 'closing incoming s2s stream');
    this.connection.end();
    setTimeout(() => this.connection.destroy(), CLOSE_GRACE_MS).unref();
  }

  private write(text: string): void {
    if (this.connection.isWritable) this.connection.write(text);
  }

  private newParser(): StreamParser {
    return new StreamParser(this.ctx.settings.stanzaSizeLimit, {
      onStreamStart: (header) => this.onStreamStart(header),
      onElement: (el) => this.onElement(el),
      onStreamEnd: () => this.close(),
      onError: (failure) => this.close(failure.condition, failure.text),
    });
  }

  private onSocketClosed(): void {
    this.isClosed = true;
    clearTimeout(this.setupTimer);
    this.parser.stop();
    this.ctx.onClosed(this);
    this.resolveClosed();
  }

  private sendHeader(): void {
    this.isHeaderSent = true;
    this.streamId = randomBytes(12).toString('base64url');
    this.write(s2sHeader({ id: this.streamId, from: this.local || undefined }));
  }

  // --- stream header and features (RFC 6120 §4.7, §4.3.2) ------------------------------------------------

  private onStreamStart(header: Element): void {
    if (!isServerStreamHeader(header)) return this.close('invalid-namespace', `This port serves ${NS_SERVER} streams.`);
    const version = header.attrs.version;
    // Without version="1.0" there is no TLS and no features (RFC 6120 §4.7.5): not spoken here.
    if (!version || !/^1\.\d+$/.test(version)) return this.close('unsupported-version', 'Only XMPP 1.0 streams are supported.');
    const to = header.attrs.to;
    if (to !== undefined) {
      const parsed = parseJid(to);
      const domain = parsed.ok && parsed.jid.local === null && parsed.jid.resource === null ? parsed.jid.domain : undefined;
      if (!domain || !this.ctx.hostApi(domain)) return this.close('host-unknown', `This server does not serve ${to}.`);
      this.local = domain;
    }
    const from = header.attrs.from;
    if (from !== undefined && this.authenticated.size === 0) {
      const domain = checkDomain(from);
      if (!domain) return this.close('invalid-from', `${from} is not a domain.`);
      this.claimed = domain;
    }
    this.sendHeader();
    // s2s_secure_auth: a TLS peer whose certificate does not authenticate it has nothing left to try; say why.
    if (this.connection.isSecure && this.ctx.settings.secureAuth && this.authenticated.size === 0) {
      const problem = this.externalProblem(this.claimed);
      if (problem) {
        this.log.info({ from: this.claimed, reason: problem }, 'refused an incoming s2s stream (s2s_secure_auth)');
        return this.close('not-authorized', `${this.claimed || 'The peer'} is not authenticated: ${problem}; this server accepts certificate authentication only (s2s_secure_auth).`);
      }
    }
    const features = xml('stream:features');
    if (!this.connection.isSecure && this.connection.startTls) {
      const starttls = xml('starttls', { xmlns: NS_TLS });
      if (this.ctx.settings.requireEncryption) starttls.append(xml('required'));
      features.append(starttls);
    }
    // XEP-0178 §2: EXTERNAL is offered only to a peer whose certificate is valid for the domain it claims.
    if (this.connection.isSecure && this.authenticated.size === 0 && this.local && this.externalProblem(this.claimed) === undefined) {
      features.append(xml('mechanisms', { xmlns: NS_SASL }, xml('mechanism', {}, 'EXTERNAL')));
    }
    if (this.connection.isSecure || !this.ctx.settings.requireEncryption) {
      // XEP-0198: offered before dialback too (enabled only once authenticated), on the restarted stream after SASL.
      if (!this.isSmEnabled) features.append(xml('sm', { xmlns: NS_SM }));
      if (!this.ctx.settings.secureAuth) features.append(xml('dialback', { xmlns: NS_DIALBACK_FEATURE }, xml('errors')));
    }
    this.write(features.toString());
  }

  // --- elements ----------------------------------------------------------------------------------------

  private onElement(el: Element): void {
    const ns = el.attrs.xmlns ?? NS_SERVER;
    if (ns === NS_TLS && el.name === 'starttls') return this.startTls();
    if (ns === NS_SASL && el.name === 'auth') return this.onAuth(el);
    if (ns === NS_SM) return this.onSm(el);
    if (ns === NS_DIALBACK && el.name === 'result') return this.onDialbackResult(el);
    if (ns === NS_DIALBACK && el.name === 'verify') return this.onDialbackVerify(el);
    if (ns === NS_SERVER && STANZA_KINDS.has(el.name)) return this.onStanza(el);
    if (ns === NS_STREAM && el.name === 'error') {
      this.log.debug({ error: el.toString().slice(0, 300) }, 'peer sent a stream error');
      return this.close();
    }
    this.close('unsupported-stanza-type', `<${el.name}/> in ${ns} is not understood here.`);
  }

  private startTls(): void {
    if (this.connection.isSecure || !this.connection.startTls) return this.close('policy-violation', 'STARTTLS is not available now.');
    this.parser.stop();
    this.connection.startTls(
      `<proceed xmlns='${NS_TLS}'/>`,
      () => {
        this.isHeaderSent = false;
        this.parser = this.newParser();
      },
      (protocol) => this.log.debug({ protocol }, 'TLS established'),
    );
  }

  /** XEP-0198 on an incoming stream: <enable/> (no resumption between servers), <r/> answered once what came before it was handled. */
  private onSm(el: Element): void {
    const failed = (why: string): void => this.write(`<failed xmlns='${NS_SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>${escapeXML(why)}</text></failed>`);
    if (el.name === 'enable') {
      if (this.authenticated.size === 0) return failed('Authenticate before enabling stream management.');
      if (this.isSmEnabled) return failed('Stream management is enabled already.');
      this.isSmEnabled = true;
      // Counting starts after the stanzas that came before <enable/>, once they were routed.
      this.chain = this.chain.then(() => {
        this.handled = 0;
        this.log.debug('stream management enabled on the incoming stream');
        if (!this.isClosed) this.write(`<enabled xmlns='${NS_SM}'/>`);
      });
      return;
    }
    if (el.name === 'r') {
      if (!this.isSmEnabled) return this.close('unsupported-stanza-type', 'Stream management is not enabled.');
      // After the stanzas already received: h counts them once they were routed.
      this.chain = this.chain.then(() => {
        if (!this.isClosed && this.handled !== undefined) this.write(`<a xmlns='${NS_SM}' h='${wireH(this.handled)}'/>`);
      });
      return;
    }
    if (el.name === 'a') {
      // We send the peer no stanzas on its stream: any h but 0 is more than was sent (XEP-0198 §4).
      if (parseH(el.attrs.h) !== 0) return this.close('undefined-condition', 'handled-count-too-high: nothing was sent on this stream.');
      return;
    }
    this.close('unsupported-stanza-type', `<${el.name}/> in ${NS_SM} is not understood here.`);
  }

  /** Why the peer's certificate does not authenticate `domain` (undefined: it does); '' claims nothing. */
  private externalProblem(domain: string): string | undefined {
    if (!domain) return 'its stream header names no domain (from)';
    return certificateProblem(this.connection.peerCertificate?.(), domain);
  }

  /** SASL EXTERNAL (RFC 6120 §6, XEP-0178 §2): the certificate the peer showed during TLS authenticates its domain. */
  private onAuth(el: Element): void {
    const fail = (condition: string, reason: string): void => {
      this.log.info({ from: this.claimed, reason }, 'refused SASL EXTERNAL');
      this.write(`<failure xmlns='${NS_SASL}'><${condition}/><text xml:lang='en'>${escapeXML(reason)}</text></failure>`);
      if (++this.saslAttempts >= MAX_SASL_ATTEMPTS) this.close('policy-violation', 'Too many failed authentication attempts.');
    };
    if (el.attrs.mechanism !== 'EXTERNAL') return fail('invalid-mechanism', 'Only EXTERNAL is offered between servers.');
    if (!this.connection.isSecure) return fail('encryption-required', 'SASL EXTERNAL needs TLS.');
    if (this.authenticated.size > 0) return fail('aborted', 'This stream is authenticated already.');
    if (!this.local) return fail('not-authorized', 'Open the stream to one of our domains (to) first.');
    // The authzid: the domain itself (base64), or "=" / nothing for the header's from (RFC 6120 §6.4.2).
    const text = textOf(el).trim();
    let authzid = this.claimed;
    if (text && text !== '=') {
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return fail('incorrect-encoding', 'The authzid is not base64.');
      authzid = Buffer.from(text, 'base64').toString('utf8');
    }
    const domain = checkDomain(authzid);
    if (!domain) return fail('invalid-authzid', 'The authzid must be a domain.');
    if (this.claimed && domain !== this.claimed) return fail('invalid-authzid', `The stream header says ${this.claimed}, the authzid ${domain}.`);
    if (this.ctx.hostApi(domain)) return fail('invalid-authzid', `${domain} is served here.`);
    const problem = this.externalProblem(domain);
    if (problem) return fail('not-authorized', `${domain} is not authenticated: ${problem}.`);
    if (!this.ctx.admitDomain(this, domain)) return this.tooMany(domain);
    this.write(`<success xmlns='${NS_SASL}'/>`);
    this.onAuthenticatedDomain(domain, this.local, 'SASL EXTERNAL');
    // RFC 6120 §6.4.6: the peer starts a new stream on this connection.
    this.parser.stop();
    this.isHeaderSent = false;
    this.parser = this.newParser();
  }

  private tooMany(domain: string): void {
    this.log.info({ from: domain }, 'refused an incoming s2s stream: too many from its domain');
    this.close('policy-violation', `${domain} has too many streams to this server already.`);
  }

  private onAuthenticatedDomain(from: string, to: string, mechanism: 'SASL EXTERNAL' | 'dialback'): void {
    if (this.authenticated.size === 0) this.ctx.onAuthenticated?.(this);
    this.authenticated.add(`${from} ${to}`);
    clearTimeout(this.setupTimer);
    this.log.info({ from, to, secure: this.connection.isSecure, mechanism }, `incoming s2s stream authenticated (${mechanism})`);
  }

  /** XEP-0220 §2.1.2: the originating server claims `from`; ask its authoritative server, then answer. */
  private onDialbackResult(el: Element): void {
    const from = checkDomain(el.attrs.from);
    const to = checkDomain(el.attrs.to);
    const key = textOf(el);
    if (!from || !to || !key) return this.close('improper-addressing', 'db:result needs from, to and a key.');
    if (!this.ctx.hostApi(to)) return this.close('host-unknown', `This server does not serve ${to}.`);
    if (this.local && to !== this.local) return this.close('host-unknown', `This stream was opened to ${this.local}.`);
    if (!this.connection.isSecure && this.ctx.settings.requireEncryption) return this.close('policy-violation', 'Encryption is required before authentication (s2s_require_encryption).');
    if (this.ctx.settings.secureAuth) return this.close('not-authorized', 'Only certificate authentication is accepted here (s2s_secure_auth).');
    if (this.ctx.hostApi(from)) return this.close('invalid-from', `${from} is served here.`);
    if (this.pendingDialback >= MAX_PENDING_DIALBACK) return this.close('policy-violation', 'Too many dialback requests at once.');
    // Refused before we connect out to verify: a stream already counted for `from` may add local domains.
    if (this.ctx.isDomainFull(from) && ![...this.authenticated].some((k) => k.startsWith(`${from} `))) return this.tooMany(from);
    this.pendingDialback++;
    const answer = (attrs: Record<string, string>, inner?: string): void => {
      this.pendingDialback--;
      if (!this.isClosed) this.write(dialbackElement('result', { from: to, to: from, ...attrs }, undefined, inner));
    };
    this.ctx
      .verify(to, from, this.streamId, key)
      .then((isValid) => {
        if (!isValid) {
          this.log.info({ from, to }, 'dialback key invalid');
          answer({ type: 'invalid' });
          this.close('not-authorized', `The dialback key for ${from} is not valid.`);
          return;
        }
        if (!this.ctx.admitDomain(this, from)) {
          answer({ type: 'error' }, `<error type='wait'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
          return this.tooMany(from);
        }
        this.onAuthenticatedDomain(from, to, 'dialback');
        answer({ type: 'valid' });
      })
      .catch((err: unknown) => {
        const condition = err instanceof S2sFailure ? err.condition : 'remote-server-not-found';
        this.log.info({ from, reason: (err as Error).message }, 'could not verify a dialback key');
        // XEP-0220 §2.4: the error says why, the stream stays.
        answer({ type: 'error' }, `<error type='cancel'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
      });
  }

  /** XEP-0220 §2.1.3: we are the authoritative server; say whether we made this key for that stream. */
  private onDialbackVerify(el: Element): void {
    const from = checkDomain(el.attrs.from);
    const to = checkDomain(el.attrs.to);
    const id = el.attrs.id;
    const key = textOf(el);
    if (!from || !to || !id || !key) return this.close('improper-addressing', 'db:verify needs from, to, id and a key.');
    if (!this.ctx.hostApi(to)) return this.close('host-unknown', `This server does not serve ${to}.`);
    const isValid = isValidKey(this.ctx.secret, from, to, id, key);
    this.write(dialbackElement('verify', { from: to, to: from, id, type: isValid ? 'valid' : 'invalid' }));
  }

  // --- stanzas ----------------------------------------------------------------------------------------------

  private onStanza(el: Element): void {
    if (this.authenticated.size === 0) return this.close('not-authorized', 'Authenticate before sending stanzas.');
    const from = el.attrs.from ? parseJid(el.attrs.from) : undefined;
    const to = el.attrs.to ? parseJid(el.attrs.to) : undefined;
    // RFC 6120 §8.1.1.1, §8.1.2.1: both addresses are required between servers.
    if (!from?.ok || !to?.ok) return this.close('improper-addressing', 'A stanza between servers needs valid from and to addresses.');
    if (!this.ctx.hostApi(to.jid.domain)) return this.close('host-unknown', `This server does not serve ${to.jid.domain}.`);
    // RFC 6120 §4.9.3.9, §13.7.2.3: only the domain this stream authenticated may speak on it.
    if (!this.authenticated.has(`${from.jid.domain} ${to.jid.domain}`)) {
      return this.close('invalid-from', `${from.jid.domain} is not authenticated on this stream for ${to.jid.domain}.`);
    }
    el.attrs.from = from.jid.full;
    el.attrs.to = to.jid.full;
    this.enqueue(el, to.jid.domain);
  }

  private enqueue(stanza: Stanza, local: string): void {
    this.queued++;
    if (this.queued >= MAX_QUEUED && !this.isPaused) {
      this.isPaused = true;
      this.connection.pause();
    }
    this.chain = this.chain.then(() => this.route(stanza, local)).finally(() => {
      this.queued--;
      if (this.isPaused && this.queued < MAX_QUEUED / 2 && !this.isClosed) {
        this.isPaused = false;
        this.connection.resume();
      }
    });
  }

  /** Routed as if a local client of the remote domain sent it; errors go back over s2s (RFC 6121 §8.5). */
  private async route(stanza: Stanza, local: string): Promise<void> {
    if (this.isClosed) return;
    const api = this.ctx.hostApi(local);
    if (!api) return;
    const origin: Origin = { type: 's2s', host: local, jid: stanza.attrs.from, send: (s) => this.ctx.bounce(s, local) };
    try {
      await api.route(stanza, origin);
    } catch (err) {
      this.log.error({ err }, 'routing a stanza from a remote server failed');
    }
    // Handled: delivered, stored or answered with an error, as for a client's stanza (XEP-0198 §4).
    if (this.handled !== undefined) this.handled++;
  }
}

/** A bare domain from an attribute, normalised, or undefined. */
function checkDomain(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const parsed = parseJid(value);
  return parsed.ok && parsed.jid.local === null && parsed.jid.resource === null ? parsed.jid.domain : undefined;
}
