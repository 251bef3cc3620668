// The app-token store (post_msg.md §11): tokens `xmppd_<id>.<secret>`, of which only SHA-256(secret) is kept, per
// account in the map store `tokenauth`, plus an id → account index. Prosody's mod_tokenauth keeps its tokens the same way.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HostError, parseJid, type MapStore, type TokenCheck, type TokenInfo, type TokenService } from '../../api.js';
import { keyedLock } from '../../util/keyed-lock.js';

/** A stored token: what is listed, plus the hash of its secret (never the secret). */
export interface StoredToken extends TokenInfo {
  /** Hex SHA-256 of the secret part. */
  hash: string;
}

/** The id is 8 random bytes in hex (public: listed, used to revoke); the secret 32 random bytes in base64url. */
const TOKEN_RE = /^xmppd_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
/** Largest lifetime accepted: ten years (a longer one is a mistake, not a policy). */
export const MAX_TOKEN_SECONDS = 10 * 365 * 86400;
export const MAX_TOKEN_NAME = 100;
export const MAX_SCOPE_ENTRIES = 100;
/** Live (unexpired) tokens an account may hold: one per script or device is a handful; this bounds a runaway loop. */
export const MAX_TOKENS_PER_ACCOUNT = 100;
/** The hash an unknown id is compared with, so that it costs what a known one does. */
const DECOY_HASH = Buffer.alloc(32);

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export interface TokenStoreOptions {
  /** The map store `tokenauth` of a host (module.openMap, or Storage.map(host, …) for the CLI). */
  tokens: (host: string) => MapStore<StoredToken>;
  /** The map store `tokenauth_ids` of a host: under the host's own name, id → account. */
  index: (host: string) => MapStore<string>;
  /** Does this account exist? Only existing accounts get tokens. */
  accountExists: (bare: string) => Promise<boolean>;
  /** The hosts whose accounts this store serves: the module's own host, every virtual host for the CLI. */
  hosts: () => readonly string[];
  now?: () => number;
}

/** A scope entry: a bare JID or a domain, normalised; else undefined. */
export function normaliseScope(entry: string): string | undefined {
  const parsed = parseJid(entry);
  if (!parsed.ok || parsed.jid.resource !== null) return undefined;
  return parsed.jid.bare;
}

/** The token service over a host's storage; the CLI opens it on Storage, the module on module.openMap. */
export class TokenStore implements TokenService {
  private readonly now: () => number;
  /** Creations of one account one after another, so that parallel requests cannot pass the cap together. */
  private readonly perAccount = keyedLock();

  constructor(private readonly opts: TokenStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  async create(account: string, input: { name: string; to?: readonly string[]; expiresInSeconds?: number }): Promise<{ token: string; info: TokenInfo }> {
    const who = parseJid(account);
    if (!who.ok || who.jid.local === null) throw new HostError('HOST_ERR_TOKEN_INVALID', `${JSON.stringify(account)} is not an account JID (user@host).`);
    const bare = who.jid.bare;
    if (!this.opts.hosts().includes(who.jid.domain)) throw new HostError('HOST_ERR_HOST_UNKNOWN', `${who.jid.domain} is not a virtual host of this server (for these tokens).`);
    if (!(await this.opts.accountExists(bare))) throw new HostError('HOST_ERR_USER_UNKNOWN', `there is no account ${bare}.`);
    const name = input.name.trim();
    if (name === '' || name.length > MAX_TOKEN_NAME || /\p{Cc}/u.test(name)) {
      throw new HostError('HOST_ERR_TOKEN_INVALID', `a token name is 1 to ${MAX_TOKEN_NAME} characters without control characters.`);
    }
    let to: string[] | undefined;
    if (input.to !== undefined) {
      if (input.to.length === 0 || input.to.length > MAX_SCOPE_ENTRIES) throw new HostError('HOST_ERR_TOKEN_INVALID', `"to" lists 1 to ${MAX_SCOPE_ENTRIES} JIDs or domains.`);
      to = [];
      for (const entry of input.to) {
        const scope = typeof entry === 'string' ? normaliseScope(entry) : undefined;
        if (scope === undefined) throw new HostError('HOST_ERR_TOKEN_INVALID', `${JSON.stringify(entry)} is not a bare JID or a domain; a token's scope lists those.`);
        if (!to.includes(scope)) to.push(scope);
      }
    }
    const seconds = input.expiresInSeconds;
    if (seconds !== undefined && !(Number.isInteger(seconds) && seconds >= 1 && seconds <= MAX_TOKEN_SECONDS)) {
      throw new HostError('HOST_ERR_TOKEN_INVALID', `a token expires after 1 to ${MAX_TOKEN_SECONDS} whole seconds.`);
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const created = this.now();
    const info: TokenInfo = {
      id,
      name,
      account: bare,
      ...(to ? { to } : {}),
      created: new Date(created).toISOString(),
      ...(seconds !== undefined ? { expires: new Date(created + seconds * 1000).toISOString() } : {}),
    };
    const host = who.jid.domain;
    await this.perAccount(bare, async () => {
      await this.makeRoom(host, bare);
      // The index first: a token without its index entry could not be used, one with a dangling entry is unknown.
      await this.opts.index(host).set(host, id, bare);
      await this.opts.tokens(host).set(bare, id, { ...info, hash: sha256(secret).toString('hex') });
    });
    return { token: `xmppd_${id}.${secret}`, info };
  }

  /** Expired tokens of the account go; if MAX_TOKENS_PER_ACCOUNT live ones remain, the new one is refused. */
  private async makeRoom(host: string, bare: string): Promise<void> {
    const tokens = this.opts.tokens(host);
    let live = 0;
    for (const [id, token] of await tokens.getAll(bare)) {
      if (token.expires === undefined || Date.parse(token.expires) > this.now()) {
        live++;
        continue;
      }
      await tokens.set(bare, id, undefined);
      await this.opts.index(host).set(host, id, undefined);
    }
    if (live >= MAX_TOKENS_PER_ACCOUNT) {
      throw new HostError('HOST_ERR_TOKEN_LIMIT', `${bare} has ${MAX_TOKENS_PER_ACCOUNT} live tokens, the most an account may hold; revoke one first (xmppd token revoke, or DELETE /tokens/<id>).`);
    }
  }

  async list(account: string): Promise<TokenInfo[]> {
    const who = parseJid(account);
    if (!who.ok || who.jid.local === null || !this.opts.hosts().includes(who.jid.domain)) return [];
    const all = await this.opts.tokens(who.jid.domain).getAll(who.jid.bare);
    return [...all.values()].map(publicInfo).sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  async revoke(account: string, id: string): Promise<boolean> {
    const who = parseJid(account);
    if (!who.ok || who.jid.local === null || !this.opts.hosts().includes(who.jid.domain) || !/^[0-9a-f]{16}$/.test(id)) return false;
    const host = who.jid.domain;
    const tokens = this.opts.tokens(host);
    if ((await tokens.get(who.jid.bare, id)) === undefined) return false;
    await tokens.set(who.jid.bare, id, undefined);
    await this.opts.index(host).set(host, id, undefined);
    return true;
  }

  async verify(token: string): Promise<TokenCheck> {
    const m = TOKEN_RE.exec(token);
    if (!m) return { ok: false, reason: 'malformed' };
    const [, id, secret] = m as unknown as [string, string, string];
    const presented = sha256(secret);
    const stored = await this.lookup(id);
    // Compared even for an unknown id, so that the answer takes as long.
    const expected = stored ? Buffer.from(stored.hash, 'hex') : DECOY_HASH;
    const matches = expected.length === presented.length && timingSafeEqual(expected, presented);
    if (!stored || !matches) return { ok: false, reason: 'unknown' };
    if (stored.expires !== undefined && Date.parse(stored.expires) <= this.now()) return { ok: false, reason: 'expired' };
    return { ok: true, info: publicInfo(stored) };
  }

  allows(info: TokenInfo, recipient: string): boolean {
    if (info.to === undefined) return true;
    const parsed = parseJid(recipient);
    if (!parsed.ok) return false;
    return info.to.includes(parsed.jid.bare) || info.to.includes(parsed.jid.domain);
  }

  /** The stored token with this id, on any host the index knows it on. */
  private async lookup(id: string): Promise<StoredToken | undefined> {
    // A token works at its account's virtual host: the module's store searches only its own.
    for (const host of this.opts.hosts()) {
      const account = await this.opts.index(host).get(host, id);
      if (account === undefined) continue;
      // Undefined when the account was deleted (its tokens went with it) and the index entry stayed.
      return this.opts.tokens(host).get(account, id);
    }
    return undefined;
  }
}

/** Without the hash. */
export function publicInfo(stored: StoredToken): TokenInfo {
  const { hash: _hash, ...info } = stored;
  return info;
}
