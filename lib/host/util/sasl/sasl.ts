// SASL negotiation on a client stream (RFC 6120 §6), like Prosody's mod_saslauth: <auth/>, <response/>,
// <abort/> in, <challenge/>, <success/>, <failure/> out. Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-1/-256.

import { xml, type Element } from '@xmpp/xml';
import { parseJid } from '../jid.js';
import type { ScramCredentials } from './sasl-scram.js';
import { NS_SASL } from '../xmpp-stream/namespaces.js';
import { SCRAM_MECHANISMS, ScramServer, type SaslCondition, type SaslStep } from './sasl-scram.js';
import type { AuthAdmission } from '../throttle.js';

/** Result of authenticating a password for an account. */
export type AuthResult =
  | { ok: true; jid: string }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number };

/** The account lookups SASL needs; the host's user service implements them (api.ts UsersApi). */
export interface SaslUsers {
  authenticate(input: { jid: string; password: string; address: string }): Promise<AuthResult>;
  scramCredentials(bareJid: string, hash: 'sha1' | 'sha256'): Promise<ScramCredentials | undefined>;
  /** Stand-in credentials for an unknown account, shaped and drawn like the stored ones, stable per name. */
  scramDecoy(bareJid: string, hash: 'sha1' | 'sha256'): Promise<ScramCredentials>;
  /** A throttle slot for one credential check (counts checks in flight, not only failures). */
  beginAuthAttempt(address: string): AuthAdmission | Promise<AuthAdmission>;
  authRetryAfter(address: string): number;
}

/** RFC 6120 §6.4.5: allow a reasonable number of retries (2 to 5), then close. */
export const MAX_SASL_FAILURES = 5;
/** A throttled address waits at most this long for its (failed) answer, so a held stream stays cheap. */
const MAX_THROTTLE_DELAY_MS = 5_000;

export interface SaslContext {
  host: string;
  users: SaslUsers;
  /** The client's IP address, key of the shared failure throttle. */
  address: string;
  isSecure: boolean;
  requireEncryption: boolean;
  /** Waits before a throttled answer; tests shorten it. */
  sleep?(ms: number): Promise<void>;
}

/** What the stream does after one SASL element. */
export interface SaslResult {
  reply: Element;
  /** Set on success: the authenticated bare JID. */
  jid?: string;
}

/** Mechanisms to offer now. PLAIN only over TLS unless encryption is not required; never a -PLUS one. */
export function offeredMechanisms(ctx: Pick<SaslContext, 'isSecure' | 'requireEncryption'>): string[] {
  if (!ctx.isSecure && ctx.requireEncryption) return [];
  return ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
}

/** Strict base64 (RFC 6120 §6.4.2 requires it); `=` alone is the empty response. */
export function decodeSaslPayload(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '=') return Buffer.alloc(0);
  if (trimmed.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) return undefined;
  return Buffer.from(trimmed, 'base64');
}

function encode(data: Buffer | undefined): string {
  if (!data || data.length === 0) return '=';
  return data.toString('base64');
}

function failureElement(condition: SaslCondition, text?: string): Element {
  const el = xml('failure', { xmlns: NS_SASL }, xml(condition));
  if (text) el.append(xml('text', { 'xml:lang': 'en' }, text));
  return el;
}

/** Parse a PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd, UTF-8. */
export function parsePlain(message: Buffer): { authzid: string; authcid: string; password: string } | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(message);
  } catch {
    return undefined;
  }
  const parts = text.split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid, authcid, password] = parts as [string, string, string];
  if (authcid === '' || password === '') return undefined;
  return { authzid, authcid, password };
}

type Pending =
  | { kind: 'plain' }
  | { kind: 'scram-first'; server: ScramServer }
  | { kind: 'scram-final'; server: ScramServer };

export class SaslNegotiation {
  private pending: Pending | undefined;
  private failures = 0;

  constructor(private readonly ctx: SaslContext) {}

  /** Too many failures on this stream: the caller closes it. */
  get isExhausted(): boolean {
    return this.failures >= MAX_SASL_FAILURES;
  }

  /** The account JID for a SASL username; accepts `user@host` too, as some PLAIN clients send it. */
  jidOf(username: string): string | undefined {
    const at = username.lastIndexOf('@');
    const local = at >= 0 && username.slice(at + 1).toLowerCase() === this.ctx.host ? username.slice(0, at) : username;
    const parsed = parseJid(`${local}@${this.ctx.host}`);
    if (!parsed.ok || parsed.jid.resource !== null || parsed.jid.domain !== this.ctx.host) return undefined;
    return parsed.jid.bare;
  }

  async handle(el: Element): Promise<SaslResult> {
    if (el.name === 'auth') return this.onAuth(el);
    if (el.name === 'response') return this.onResponse(el);
    if (el.name === 'abort') {
      this.pending = undefined;
      return this.fail('aborted');
    }
    return this.fail('malformed-request', `Unexpected <${el.name}/>.`);
  }

  private async onAuth(el: Element): Promise<SaslResult> {
    this.pending = undefined;
    const mechanism = el.attrs.mechanism ?? '';
    if (!this.ctx.isSecure && this.ctx.requireEncryption) return this.fail('encryption-required', 'Use STARTTLS first.');
    if (!offeredMechanisms(this.ctx).includes(mechanism)) return this.fail('invalid-mechanism');
    const payload = decodeSaslPayload(el.getText());
    if (!payload) return this.fail('incorrect-encoding');
    const throttled = await this.throttled();
    if (throttled) return throttled;

    if (mechanism === 'PLAIN') {
      if (payload.length === 0) return this.challenge({ kind: 'plain' }, Buffer.alloc(0));
      return this.plain(payload);
    }
    const server = this.scramServer(mechanism);
    if (payload.length === 0) return this.challenge({ kind: 'scram-first', server }, Buffer.alloc(0));
    return this.scramFirst(server, payload);
  }

  private async onResponse(el: Element): Promise<SaslResult> {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return this.fail('malformed-request', 'No authentication in progress.');
    const payload = decodeSaslPayload(el.getText());
    if (!payload) return this.fail('incorrect-encoding');
    if (pending.kind === 'plain') return this.plain(payload);
    if (pending.kind === 'scram-first') return this.scramFirst(pending.server, payload);
    return this.scramFinal(pending.server, payload);
  }

  private scramServer(mechanism: string): ScramServer {
    const hash = SCRAM_MECHANISMS[mechanism]!;
    return new ScramServer(hash, {
      credentials: async (username) => {
        const jid = this.jidOf(username);
        return jid ? this.ctx.users.scramCredentials(jid, hash) : undefined;
      },
      // An unparsable name gets a decoy too, so it is answered like an unknown account.
      decoy: (username) => this.ctx.users.scramDecoy(this.jidOf(username) ?? `${username}\0invalid`, hash),
    });
  }

  private async scramFirst(server: ScramServer, payload: Buffer): Promise<SaslResult> {
    const step = await server.start(payload.toString('utf8'));
    if (step.kind === 'challenge') return this.challenge({ kind: 'scram-final', server }, step.data);
    return this.fromStep(step);
  }

  private async scramFinal(server: ScramServer, payload: Buffer): Promise<SaslResult> {
    // Verified only inside a throttle slot: parallel streams from one address share its limit.
    const admission = await this.ctx.users.beginAuthAttempt(this.ctx.address);
    if (!admission.ok) return this.throttledFailure(admission.retryAfterSeconds);
    const step = server.finish(payload.toString('utf8'));
    if (step.kind === 'failure' && step.isCredentialFailure) admission.attempt.failed();
    else admission.attempt.succeeded();
    return this.fromStep(step);
  }

  private async plain(payload: Buffer): Promise<SaslResult> {
    const parsed = parsePlain(payload);
    if (!parsed) return this.fail('malformed-request', 'Expected [authzid] NUL authcid NUL password.');
    const jid = this.jidOf(parsed.authcid);
    // An unparsable username is a wrong login like any other: same answer, counted by the throttle.
    const result = await this.ctx.users.authenticate({ jid: jid ?? `invalid@${this.ctx.host}`, password: parsed.password, address: this.ctx.address });
    if (!result.ok && result.reason === 'throttled') return this.throttledFailure(result.retryAfterSeconds);
    if (!result.ok || !jid) return this.fail('not-authorized');
    return this.succeed(jid, parsed.authzid || undefined, undefined);
  }

  private fromStep(step: SaslStep): SaslResult {
    if (step.kind === 'failure') return this.fail(step.condition, step.text);
    if (step.kind === 'challenge') return { reply: xml('challenge', { xmlns: NS_SASL }, encode(step.data)) };
    const jid = this.jidOf(step.username);
    if (!jid) return this.fail('not-authorized');
    return this.succeed(jid, step.authzid, step.data);
  }

  private succeed(jid: string, authzid: string | undefined, data: Buffer | undefined): SaslResult {
    // We do not let one account act as another (RFC 6120 §6.3.8): the authzid, if any, must be the account itself.
    if (authzid !== undefined) {
      const parsed = parseJid(authzid);
      if (!parsed.ok || parsed.jid.resource !== null || parsed.jid.bare !== jid) return this.fail('invalid-authzid');
    }
    return { reply: xml('success', { xmlns: NS_SASL }, encode(data)), jid };
  }

  private challenge(pending: Pending, data: Buffer): SaslResult {
    this.pending = pending;
    return { reply: xml('challenge', { xmlns: NS_SASL }, encode(data)) };
  }

  /** A throttled address gets a slow `not-authorized` without its password being checked. */
  private async throttled(): Promise<SaslResult | undefined> {
    const wait = this.ctx.users.authRetryAfter(this.ctx.address);
    if (wait <= 0) return undefined;
    return this.throttledFailure(wait);
  }

  private async throttledFailure(retryAfterSeconds: number): Promise<SaslResult> {
    const sleep = this.ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
    await sleep(Math.min(retryAfterSeconds * 1000, MAX_THROTTLE_DELAY_MS));
    return this.fail('not-authorized', `Too many failed attempts from your address; try again in ${retryAfterSeconds} s.`);
  }

  private fail(condition: SaslCondition, text?: string): SaslResult {
    this.failures++;
    return { reply: failureElement(condition, text) };
  }
}
