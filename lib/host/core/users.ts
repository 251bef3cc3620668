// Accounts: SCRAM credentials only (RFC 5802 / RFC 7677, like Prosody's internal_hashed), PLAIN verified by
// deriving the keys and comparing in constant time; unknown users cost the same derivation (no enumeration).

import { createHmac, hash as digest, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import saslprep from '@mongodb-js/saslprep';
import { HostError } from '../util/errors.js';
import { parseJid } from '../util/jid.js';
import type { AuthResult, ScramCredentials, UsersApi } from '../api.js';
import type { AuthAdmission, AuthThrottle } from '../util/throttle.js';
import { decoyCredentials, decoyIterations } from '../util/sasl/sasl-scram.js';
import type { UserRecord, UserStore } from '../api.js';

const pbkdf2Async = promisify(pbkdf2);
/** How long the accounts' iteration counts are trusted before they are read again. */
const PROFILE_TTL_MS = 60_000;

type Hash = 'sha1' | 'sha256';
const KEY_LENGTH: Record<Hash, number> = { sha1: 20, sha256: 32 };

/** SASLprep (RFC 4013) a password; undefined when it holds prohibited characters. */
export function prepPassword(password: string): string | undefined {
  try {
    return saslprep(password);
  } catch {
    return undefined;
  }
}

/** Derive StoredKey and ServerKey (RFC 5802 §3) off the event loop (pbkdf2 runs in libuv's pool). */
export async function deriveScram(password: string, salt: Buffer, iterations: number, hash: Hash): Promise<{ storedKey: Buffer; serverKey: Buffer }> {
  return scramKeys(await pbkdf2Async(password, salt, iterations, KEY_LENGTH[hash], hash), hash);
}

/** deriveScram with PBKDF2 on the event loop, blocking it: only to measure what the pool is worth (the bench). */
export async function deriveScramOnEventLoop(password: string, salt: Buffer, iterations: number, hash: Hash): Promise<{ storedKey: Buffer; serverKey: Buffer }> {
  return scramKeys(pbkdf2Sync(password, salt, iterations, KEY_LENGTH[hash], hash), hash);
}

function scramKeys(salted: Buffer, hash: Hash): { storedKey: Buffer; serverKey: Buffer } {
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return {
    storedKey: digest(hash, clientKey, 'buffer'),
    serverKey: createHmac(hash, salted).update('Server Key').digest(),
  };
}

/** A StoredKey no cache entry matches (every real one is 32 bytes): what an unknown name is looked up against. */
const NO_STORED_KEY = Buffer.alloc(0);

/**
 * Verified (jid, password) pairs, so a correct password does not cost a PBKDF2 on every request.
 * The key is SHA-256 over a per-process random secret and the pair (no password is kept, not even hashed
 * plainly; the keys never leave the process, so a secret prefix is as good as an HMAC here);
 * the value is the StoredKey the password matched. A hit counts only while the account's current
 * StoredKey is still that one, so a password change or deletion invalidates it: at once when made by
 * this process, within 1 ms when made by the CLI or another node (the user store's cache, see
 * modules/storage_sqlite/sqlite.ts).
 */
export class CredentialCache {
  // One SHA-256 block of secret; crypto.hash is one native call, where createHmac builds an OpenSSL context per request.
  private readonly secret = randomBytes(32).toString('hex');
  private readonly entries = new Map<string, { storedKey: Buffer; expires: number }>();

  constructor(private readonly ttlMs = 60_000, private readonly maxEntries = 10_000, private readonly now: () => number = Date.now) {}

  private id(jid: string, password: string): string {
    // A JID never holds NUL (XML forbids it), so the first NUL ends the JID: no two pairs share an input.
    return digest('sha256', `${this.secret}${jid}\0${password}`, 'base64');
  }

  matches(jid: string, password: string, current: Buffer): boolean {
    const id = this.id(jid, password);
    const entry = this.entries.get(id);
    if (!entry) return false;
    if (entry.expires <= this.now() || entry.storedKey.length !== current.length || !timingSafeEqual(entry.storedKey, current)) {
      this.entries.delete(id);
      return false;
    }
    return true;
  }

  remember(jid: string, password: string, storedKey: Buffer): void {
    const id = this.id(jid, password);
    this.entries.delete(id);
    this.entries.set(id, { storedKey, expires: this.now() + this.ttlMs });
    // Maps iterate in insertion order: the first entry is the oldest.
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface UserServiceOptions {
  store: UserStore;
  throttle: AuthThrottle;
  iterations: number;
  isLocalHost(domain: string): boolean;
  /** Called after every change, so credential caches and sessions can react. */
  onChange?(jid: string, change: 'created' | 'password' | 'deleted'): void;
  /** Verified-credential cache; omit to derive on every check. */
  cache?: CredentialCache;
  /** The key derivation (specs count its calls); default deriveScram. */
  derive?: typeof deriveScram;
  /**
   * Keys the decoys of unknown names; the server keeps it in data_dir, so a name's decoy is the same after a restart
   * (a per-process one would change while a real account's salt does not, telling them apart). Default: random.
   */
  decoySecret?: Buffer;
}

/** The user store as the host uses it: admin operations (CLI) plus the UsersApi that modules see. */
export class UserService implements Omit<UsersApi, 'beginAuthAttempt' | 'authRetryAfter'> {
  /** Keys the decoy accounts of unknown names: same shape and cost as a real one, stable per name. */
  private readonly decoySecret: Buffer;
  /** Accounts per iteration count, re-read at most once a minute (decoys are drawn from it). */
  private iterationProfile: { counts: Array<{ iterations: number; accounts: number }>; readAt: number } | undefined;
  private profileReading: Promise<void> | undefined;

  constructor(private readonly opts: UserServiceOptions) {
    this.decoySecret = opts.decoySecret ?? randomBytes(32);
  }

  /** SCRAM stand-in for an unknown account: salt and keys from the name, its iteration count drawn like a real account's. */
  async scramDecoy(bareJid: string, hash: Hash): Promise<ScramCredentials> {
    return decoyCredentials(this.decoySecret, bareJid, hash, await this.decoyIterations(bareJid));
  }

  private async decoyIterations(bareJid: string): Promise<number> {
    const profile = this.iterationProfile;
    if (!profile || Date.now() - profile.readAt > PROFILE_TTL_MS) {
      this.profileReading ??= this.opts.store
        .iterationCounts()
        .then((counts) => void (this.iterationProfile = { counts, readAt: Date.now() }))
        // A store that fails fails the account lookups themselves; the decoys keep the last profile meanwhile.
        .catch(() => undefined)
        .finally(() => (this.profileReading = undefined));
      // Only the first ever waits; later ones use the last profile while it is re-read.
      if (!profile) await this.profileReading;
    }
    return decoyIterations(this.decoySecret, bareJid, this.iterationProfile?.counts ?? [], this.opts.iterations);
  }

  /** Normalise an account JID for admin operations: bare, with a localpart, on a served host. */
  accountJid(input: string): string {
    const parsed = parseJid(input);
    if (!parsed.ok) throw new HostError('HOST_ERR_JID_INVALID', parsed.error);
    const { jid } = parsed;
    if (jid.local === null || jid.resource !== null) {
      throw new HostError('HOST_ERR_JID_INVALID', `${JSON.stringify(input)} is not an account address; write it as user@host, e.g. alice@localhost.`);
    }
    if (!this.opts.isLocalHost(jid.domain)) {
      throw new HostError('HOST_ERR_HOST_UNKNOWN', `${jid.domain} is not a virtual host of this server; add it under virtual_hosts or use one that is.`);
    }
    return jid.bare;
  }

  async create(jid: string, password: string): Promise<string> {
    const bare = this.accountJid(jid);
    const record = await this.credentials(bare, password);
    if (!(await this.opts.store.create(record))) {
      throw new HostError('HOST_ERR_USER_EXISTS', `${bare} exists already; use passwd to change its password.`);
    }
    this.opts.onChange?.(bare, 'created');
    return bare;
  }

  async setPassword(jid: string, password: string): Promise<string> {
    const bare = this.accountJid(jid);
    const record = await this.credentials(bare, password);
    if (!(await this.opts.store.update(record))) {
      throw new HostError('HOST_ERR_USER_UNKNOWN', `${bare} does not exist; use adduser to create it.`);
    }
    this.opts.onChange?.(bare, 'password');
    return bare;
  }

  async delete(jid: string): Promise<string> {
    const bare = this.accountJid(jid);
    if (!(await this.opts.store.delete(bare))) {
      throw new HostError('HOST_ERR_USER_UNKNOWN', `${bare} does not exist.`);
    }
    this.opts.onChange?.(bare, 'deleted');
    return bare;
  }

  list(host?: string): Promise<string[]> {
    return this.opts.store.list(host);
  }

  async exists(bareJid: string): Promise<boolean> {
    return (await this.opts.store.get(bareJid)) !== undefined;
  }

  async verifyPassword(bareJid: string, password: string): Promise<boolean> {
    return this.check(await this.opts.store.get(bareJid), bareJid, password);
  }

  /** The answer for the account's record (undefined: unknown); synchronous for a cached password. */
  private check(known: UserRecord | undefined, bareJid: string, password: string): boolean | Promise<boolean> {
    const { cache } = this.opts;
    // An unknown name is looked up too (against a key no entry holds), so both take the same steps before deriving.
    if (cache?.matches(bareJid, password, known ? known.sha256StoredKey : NO_STORED_KEY) && known) return true;
    return this.verifyByDerivation(known, bareJid, password);
  }

  private async verifyByDerivation(known: UserRecord | undefined, bareJid: string, password: string): Promise<boolean> {
    const { cache } = this.opts;
    const record = known ? { salt: known.salt, iterations: known.iterations, storedKey: known.sha256StoredKey } : await this.scramDecoy(bareJid, 'sha256');
    const prepared = prepPassword(password);
    // Derive even for a prohibited password or an unknown user: the answer's timing must not tell which.
    const derive = this.opts.derive ?? deriveScram;
    const { storedKey } = await derive(prepared ?? password, record.salt, record.iterations, 'sha256');
    const isMatch = timingSafeEqual(storedKey, record.storedKey) && prepared !== undefined && known !== undefined;
    if (isMatch) cache?.remember(bareJid, password, record.storedKey);
    return isMatch;
  }

  async authenticate(input: { jid: string; password: string; address: string }): Promise<AuthResult> {
    const { throttle } = this.opts;
    const wait = throttle.retryAfter(input.address);
    if (wait > 0) return { ok: false, reason: 'throttled', retryAfterSeconds: wait };
    let known = await this.opts.store.get(input.jid);
    // Even a cached password is checked inside a slot: otherwise a throttled guesser learns from the cache.
    let admission: AuthAdmission | Promise<AuthAdmission> = throttle.begin(input.address);
    if (admission instanceof Promise) {
      admission = await admission;
      // It waited for a slot: the account may have changed meanwhile.
      if (admission.ok) known = await this.opts.store.get(input.jid);
    }
    if (!admission.ok) return { ok: false, reason: 'throttled', retryAfterSeconds: admission.retryAfterSeconds };
    const { attempt } = admission;
    // Not through verifyPassword: one async call less per request when the password is cached.
    let isMatch: boolean;
    try {
      const verdict = this.check(known, input.jid, input.password);
      isMatch = verdict === true || (verdict !== false && (await verdict));
    } catch (err) {
      attempt.succeeded(); // no verdict: free the slot without counting a failure
      throw err;
    }
    if (isMatch) {
      attempt.succeeded();
      return { ok: true, jid: input.jid };
    }
    attempt.failed();
    return { ok: false, reason: 'invalid' };
  }

  async scramCredentials(bareJid: string, hash: Hash): Promise<ScramCredentials | undefined> {
    const record = await this.opts.store.get(bareJid);
    if (!record) return undefined;
    return hash === 'sha1'
      ? { salt: record.salt, iterations: record.iterations, storedKey: record.sha1StoredKey, serverKey: record.sha1ServerKey }
      : { salt: record.salt, iterations: record.iterations, storedKey: record.sha256StoredKey, serverKey: record.sha256ServerKey };
  }

  private async credentials(jid: string, password: string): Promise<UserRecord> {
    const prepared = prepPassword(password);
    if (prepared === undefined || prepared.length === 0) {
      throw new HostError('HOST_ERR_PASSWORD_INVALID', 'The password is empty or contains characters SASLprep forbids (control characters, unassigned code points); choose another.');
    }
    return scramRecord(jid, prepared, randomBytes(16), this.opts.iterations);
  }
}

/** An account's stored credentials for an already SASLprep'd password: both SCRAM hashes, one salt. */
export async function scramRecord(jid: string, preparedPassword: string, salt: Buffer, iterations: number): Promise<UserRecord> {
  const [sha1, sha256] = await Promise.all([
    deriveScram(preparedPassword, salt, iterations, 'sha1'),
    deriveScram(preparedPassword, salt, iterations, 'sha256'),
  ]);
  return {
    jid,
    iterations,
    salt,
    sha1StoredKey: sha1.storedKey,
    sha1ServerKey: sha1.serverKey,
    sha256StoredKey: sha256.storedKey,
    sha256ServerKey: sha256.serverKey,
  };
}
