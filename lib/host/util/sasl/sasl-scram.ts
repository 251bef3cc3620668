// SASL SCRAM-SHA-1 and SCRAM-SHA-256, server side (RFC 5802, RFC 7677), like Prosody's util/sasl/scram.lua.
// No channel binding: we never offer -PLUS, so a client that asks for it (`p=`) is refused (RFC 5802 §6).

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

/** What SCRAM needs of an account (RFC 5802 §3); the user store derives it once per password. */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramHash = 'sha1' | 'sha256';

export const SCRAM_MECHANISMS: Record<string, ScramHash> = {
  'SCRAM-SHA-256': 'sha256',
  'SCRAM-SHA-1': 'sha1',
};

/** SASL failure conditions (RFC 6120 §6.5). */
export type SaslCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

/** One step of a SASL exchange, as the negotiation turns it into `<challenge/>`, `<success/>` or `<failure/>`. */
export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; authzid: string | undefined; data?: Buffer }
  | { kind: 'failure'; condition: SaslCondition; text?: string; isCredentialFailure?: boolean };

export interface ScramDeps {
  /** The stored credentials of a username (already SASLprepped), or undefined when there is no such account. */
  credentials(username: string): Promise<ScramCredentials | undefined>;
  /** Stand-in credentials for an unknown user, stable per username, so the exchange does not reveal it. */
  decoy(username: string): Promise<ScramCredentials>;
  /** Server nonce; tests pass the RFC's. */
  nonce?(): string;
}

interface ClientFirst {
  gs2Header: string;
  authzid: string | undefined;
  username: string;
  clientNonce: string;
  bare: string;
}

type SaslFailure = Extract<SaslStep, { kind: 'failure' }>;

const failure = (condition: SaslCondition, text?: string): SaslFailure => ({ kind: 'failure', condition, ...(text ? { text } : {}) });
const credentialFailure = (): SaslFailure => ({ kind: 'failure', condition: 'not-authorized', isCredentialFailure: true });

/** Decode a SCRAM saslname (RFC 5802 §5.1): `=2C` is `,` and `=3D` is `=`; any other `=` is malformed. */
export function decodeSaslName(name: string): string | undefined {
  if (/=(?!2C|3D)/.test(name)) return undefined;
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Split `k=v,k=v` attributes, keeping their order. */
function attributes(text: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) return undefined;
    out.push([m[1]!, m[2]!]);
  }
  return out;
}

/** Parse client-first-message (RFC 5802 §7). Returns a failure step when it is malformed or asks for what we lack. */
export function parseClientFirst(message: string): ClientFirst | SaslStep {
  const m = /^([^,]*),([^,]*),(.*)$/s.exec(message);
  if (!m) return failure('malformed-request', 'Expected a GS2 header.');
  const [, cbind, authzPart, bare] = m as unknown as [string, string, string, string];
  if (cbind.startsWith('p=')) return failure('malformed-request', 'Channel binding is not offered here.');
  if (cbind !== 'n' && cbind !== 'y') return failure('malformed-request', 'Bad channel binding flag.');
  let authzid: string | undefined;
  if (authzPart !== '') {
    if (!authzPart.startsWith('a=')) return failure('malformed-request', 'Bad authzid.');
    authzid = decodeSaslName(authzPart.slice(2));
    if (authzid === undefined) return failure('malformed-request', 'Bad authzid encoding.');
  }
  const attrs = attributes(bare);
  if (!attrs || attrs.length < 2) return failure('malformed-request', 'Expected n= and r=.');
  // A mandatory extension (m=) we cannot know must fail the exchange (RFC 5802 §5.1).
  if (attrs[0]![0] === 'm') return failure('malformed-request', 'Unsupported mandatory extension.');
  if (attrs[0]![0] !== 'n' || attrs[1]![0] !== 'r') return failure('malformed-request', 'Expected n= then r=.');
  const decoded = decodeSaslName(attrs[0]![1]);
  const clientNonce = attrs[1]![1];
  if (decoded === undefined || decoded === '' || clientNonce === '') return failure('malformed-request', 'Empty username or nonce.');
  let username: string;
  try {
    username = saslprep(decoded);
  } catch {
    return failure('malformed-request', 'Username fails SASLprep.');
  }
  return { gs2Header: `${cbind},${authzPart},`, authzid, username, clientNonce, bare };
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** One SCRAM exchange on one stream: start() with client-first, finish() with client-final. */
export class ScramServer {
  private first: ClientFirst | undefined;
  private serverFirst = '';
  private nonce = '';
  private creds: ScramCredentials | undefined;
  private isKnownUser = false;

  constructor(private readonly hash: ScramHash, private readonly deps: ScramDeps) {}

  async start(clientFirst: string): Promise<SaslStep> {
    const parsed = parseClientFirst(clientFirst);
    if ('kind' in parsed) return parsed;
    this.first = parsed;
    const stored = await this.deps.credentials(parsed.username);
    this.isKnownUser = stored !== undefined;
    this.creds = stored ?? (await this.deps.decoy(parsed.username));
    this.nonce = parsed.clientNonce + (this.deps.nonce?.() ?? randomBytes(18).toString('base64'));
    this.serverFirst = `r=${this.nonce},s=${this.creds.salt.toString('base64')},i=${this.creds.iterations}`;
    return { kind: 'challenge', data: Buffer.from(this.serverFirst) };
  }

  finish(clientFinal: string): SaslStep {
    const { first, creds } = this;
    if (!first || !creds) return failure('malformed-request', 'No exchange in progress.');
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) return failure('malformed-request', 'Expected a proof.');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (!attrs || attrs[0]?.[0] !== 'c' || attrs[1]?.[0] !== 'r') return failure('malformed-request', 'Expected c= then r=.');
    if (attrs[0][1] !== Buffer.from(first.gs2Header).toString('base64')) return failure('malformed-request', 'Channel binding data does not match.');
    if (attrs[1][1] !== this.nonce) return failure('malformed-request', 'Nonce does not match.');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const authMessage = `${first.bare},${this.serverFirst},${withoutProof}`;
    const clientSignature = createHmac(this.hash, creds.storedKey).update(authMessage).digest();
    if (proof.length !== clientSignature.length) return credentialFailure();
    const storedKey = createHash(this.hash).update(xor(proof, clientSignature)).digest();
    const isMatch = timingSafeEqual(storedKey, creds.storedKey) && this.isKnownUser;
    if (!isMatch) return credentialFailure();
    const serverSignature = createHmac(this.hash, creds.serverKey).update(authMessage).digest();
    return { kind: 'success', username: first.username, authzid: first.authzid, data: Buffer.from(`v=${serverSignature.toString('base64')}`) };
  }
}

/** Derive decoy credentials for unknown users from a per-process secret: same shape, same cost, never matching. */
export function decoyCredentials(secret: Buffer, username: string, hash: ScramHash, iterations: number): ScramCredentials {
  const mac = (label: string) => createHmac('sha256', secret).update(`${label}\0${username}`).digest();
  const length = hash === 'sha1' ? 20 : 32;
  return {
    salt: mac('salt').subarray(0, 16),
    iterations,
    storedKey: mac(`stored-${hash}`).subarray(0, length),
    serverKey: mac(`server-${hash}`).subarray(0, length),
  };
}

/**
 * The iteration count of an unknown name's decoy: drawn, stable per name, from the counts real accounts
 * have, weighted by how many have each. After `pbkdf2_iterations` changes, old accounts keep their count
 * until their password changes, so a decoy at the new count would tell them apart; drawn like this, a
 * count says nothing about whether its account exists. `fallback` serves while there is no account.
 */
export function decoyIterations(secret: Buffer, username: string, counts: ReadonlyArray<{ iterations: number; accounts: number }>, fallback: number): number {
  const total = counts.reduce((sum, c) => sum + c.accounts, 0);
  if (total === 0) return fallback;
  // A point in [0, total) fixed by the name; the counts are sorted, so a name moves only when its boundary does.
  const point = (createHmac('sha256', secret).update(`iterations\0${username}`).digest().readUIntBE(0, 6) / 2 ** 48) * total;
  let upTo = 0;
  for (const c of counts) {
    upTo += c.accounts;
    if (point < upTo) return c.iterations;
  }
  return counts[counts.length - 1]!.iterations;
}
