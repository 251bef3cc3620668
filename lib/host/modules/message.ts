// Message delivery to local accounts (RFC 6121 §8.5) and offline storage in the `offline` archive with XEP-0203
// delay on the next initial presence (XEP-0160). Prosody: core/stanza_router.lua + mod_message.lua + mod_offline.lua.
// A message is delivered once a session wrote it, else stored, else discarded: the Outcome says which, truly.

import {
  cloneStanza,
  parseJid,
  serialize,
  StanzaError,
  xml,
  type ClientSession,
  type ArchiveStore,
  type ModuleApi,
  type ModuleDefinition,
  type Origin,
  type Outcome,
  type Stanza,
  type StanzaEvent,
} from '../api.js';
import parse from '@xmpp/xml/lib/parse.js';

const NS_DELAY = 'urn:xmpp:delay';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_HINTS = 'urn:xmpp:hints';

/** An answer waits this long for the recipient's socket to take a message, then stores it instead. */
export const WRITE_WAIT_MS = 2_000;
/** The offline flush writes this many messages (or bytes) at a time, and waits for them to be written. */
export const FLUSH_BATCH_ITEMS = 100;
export const FLUSH_BATCH_BYTES = 256 * 1024;
/** A flush waits this long for a batch; a client that stopped reading keeps the rest stored for its next login. */
export const FLUSH_WAIT_MS = 30_000;
/** Accounts whose offline item count is remembered (Prosody's storage_archive_item_limit_cache_size). */
const COUNT_CACHE_SIZE = 1000;

export interface MessageOptions {
  storage_archive_item_limit: number;
}

/**
 * Whether an undeliverable message is kept offline: not when it asks not to be (XEP-0334 no-store), nor when
 * it carries only chat states (XEP-0085 §5.5: they are meaningless later).
 */
export function isWorthStoring(stanza: Stanza): boolean {
  if (stanza.getChild('no-store', NS_HINTS) || stanza.getChild('no-permanent-store', NS_HINTS)) return false;
  const payload = stanza.getChildElements().filter((c) => c.attrs.xmlns !== NS_CHATSTATES && c.name !== 'thread');
  return payload.length > 0;
}

/**
 * A bounce: an error message carrying its <error/>. DIFF: Prosody's mod_offline stores chat and normal only; a bounce
 * is stored too, because a message posted to another server (post_msg.md §9) may fail there after the 201, and its
 * bounce must reach the sender account when no resource is online.
 */
export function isKeptBounce(stanza: Stanza): boolean {
  return stanza.attrs.type === 'error' && stanza.getChild('error') !== undefined;
}

/** What waits offline for an account: chat and normal worth storing (RFC 6121 §8.5.2.2.1), and bounces. */
function isKeptOffline(stanza: Stanza): boolean {
  if (isKeptBounce(stanza)) return true;
  const type = messageType(stanza);
  return (type === 'chat' || type === 'normal') && isWorthStoring(stanza);
}

/** The type of a message; a missing or unknown type is `normal` (RFC 6121 §5.2.2). */
export function messageType(stanza: Stanza): 'chat' | 'error' | 'groupchat' | 'headline' | 'normal' {
  const type = stanza.attrs.type;
  if (type === 'chat' || type === 'error' || type === 'groupchat' || type === 'headline') return type;
  return 'normal';
}

/**
 * The resources a message to the bare JID may go to (RFC 6121 §8.5.2.1.1), in the order to try them: available
 * ones with a non-negative priority; all of them at once for headlines, else by priority, highest first (Prosody
 * sends to every resource of the highest priority). A group that does not take the message yields to the next.
 */
export function recipientGroups(sessions: readonly ClientSession[], type: ReturnType<typeof messageType>): ClientSession[][] {
  const eligible = sessions.filter((s) => s.isAvailable && s.priority >= 0);
  if (eligible.length === 0) return [];
  if (type === 'headline') return [eligible];
  const priorities = [...new Set(eligible.map((s) => s.priority))].sort((a, b) => b - a);
  return priorities.map((p) => eligible.filter((s) => s.priority === p));
}

/** The first group of recipientGroups(): where a message goes while every session takes what it is given. */
export function selectRecipients(sessions: readonly ClientSession[], type: ReturnType<typeof messageType>): ClientSession[] {
  return recipientGroups(sessions, type)[0] ?? [];
}

function bareOf(jid: string): string | undefined {
  const parsed = parseJid(jid);
  return parsed.ok && parsed.jid.local !== null ? parsed.jid.bare : undefined;
}

/** XEP-0203: when and by whom the message was delayed; `from` is the server's domain. */
export function withDelay(stanza: Stanza, domain: string, stamp: Date): Stanza {
  const copy = cloneStanza(stanza);
  copy.append(xml('delay', { xmlns: NS_DELAY, from: domain, stamp: stamp.toISOString().replace(/\.\d{3}Z$/, 'Z') }, 'Offline storage'));
  return copy;
}

/** True once any of the sessions wrote everything it took, false once none did (each closed first). */
export function anyWritten(sessions: readonly ClientSession[]): Promise<boolean> {
  return new Promise((resolve) => {
    let left = sessions.length;
    for (const s of sessions) {
      s.whenWritten().then(
        (isWritten) => (isWritten ? resolve(true) : --left === 0 && resolve(false)),
        () => --left === 0 && resolve(false),
      );
    }
  });
}

/** The promise's value, or 'timeout' after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Offline items per account against the quota, counted once from storage and then kept up to date here, so a
 * store does not count the archive each time (Prosody's mod_storage_sql keeps such a cache too). Reserving is
 * synchronous after the first count: parallel requests cannot all pass the last free place.
 */
export class OfflineQuota {
  private readonly counts = new Map<string, number>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(
    private readonly limit: number,
    private readonly countOf: (user: string) => Promise<number>,
  ) {}

  /** Take a place for one more item; false when the account is at its limit. */
  async reserve(user: string): Promise<boolean> {
    await this.load(user);
    let count = this.counts.get(user) ?? 0;
    if (count >= this.limit) {
      // Remembered counts can only be high if items left another way (a flush on another node): count again.
      const actual = await this.countOf(user);
      count = Math.max(actual, 0);
      if (count >= this.limit) return false;
    }
    this.set(user, count + 1);
    return true;
  }

  /** Items left (delivered, deleted) or a reserved place went unused. */
  release(user: string, n = 1): void {
    const count = this.counts.get(user);
    if (count !== undefined) this.counts.set(user, Math.max(0, count - n));
  }

  forget(user: string): void {
    this.counts.delete(user);
  }

  private async load(user: string): Promise<void> {
    if (this.counts.has(user)) return;
    let pending = this.loading.get(user);
    if (!pending) {
      pending = this.countOf(user)
        .then((n) => {
          if (!this.counts.has(user)) this.set(user, n);
        })
        .finally(() => this.loading.delete(user));
      this.loading.set(user, pending);
    }
    await pending;
  }

  private set(user: string, n: number): void {
    // Re-inserted at the end: the Map's order makes the first key the least recently changed.
    this.counts.delete(user);
    this.counts.set(user, n);
    if (this.counts.size > COUNT_CACHE_SIZE) this.counts.delete(this.counts.keys().next().value!);
  }
}

export function load(module: ModuleApi<MessageOptions>): void {
  // An archive, as Prosody's mod_offline keeps it. DIFF: Prosody leaves `with` empty; the sender is kept here.
  const offline: ArchiveStore = module.openArchive('offline');
  const limit = module.options.storage_archive_item_limit;
  const quota = new OfflineQuota(limit, (user) => offline.count(user));
  /** Accounts whose offline messages are being flushed right now: two resources coming online get them once. */
  const flushing = new Set<string>();

  /** Keep a chat or normal message for later; over the quota it is refused, never dropped quietly. */
  const store = async (bare: string, stanza: Stanza): Promise<string> => {
    if (!(await quota.reserve(bare))) {
      module.log.info({ jid: bare, limit }, 'offline storage full: message refused');
      throw new StanzaError('resource-constraint', `The offline storage of ${bare} is full (${limit} messages); it empties when the recipient comes online.`);
    }
    try {
      return await offline.append(bare, { with: stanza.attrs.from ?? '', value: serialize(stanza) });
    } catch (err) {
      quota.release(bare);
      throw err;
    }
  };

  /** §8.5.2.2.1: chat and normal wait offline (XEP-0160), and bounces (isKeptBounce); headline and what is not worth keeping go. */
  const storeOrDiscard = async (stanza: Stanza, bare: string): Promise<Outcome> => {
    if (!isKeptOffline(stanza)) return 'discarded';
    await store(bare, stanza);
    return 'stored';
  };

  /**
   * The sessions that took a message: it is delivered once one of them wrote it. Whoever waits for an answer (post_msg,
   * another module) gets it within WRITE_WAIT_MS; a client's own stream does not wait (its next stanzas would), and
   * what its recipients never wrote is stored when their connection goes. A message stored after the wait that is
   * written after all is taken back from storage, so the next login does not get it twice.
   */
  const confirm = async (took: ClientSession[], stanza: Stanza, bare: string, origin: Origin): Promise<Outcome> => {
    const written = anyWritten(took);
    if (origin.type === 'c2s') {
      written
        .then((isWritten) => (isWritten ? undefined : storeOrDiscard(stanza, bare)))
        .catch((err: unknown) => module.log.warn({ err, jid: bare }, 'a message its recipient did not take could not be stored'));
      return 'delivered';
    }
    const result = await within(written, WRITE_WAIT_MS);
    if (result === true) return 'delivered';
    if (!isKeptOffline(stanza)) return 'discarded';
    const id = await store(bare, stanza);
    if (result === 'timeout') {
      written
        .then(async (isWritten) => {
          if (isWritten && (await offline.delete(bare, { ids: [id] })) > 0) quota.release(bare);
        })
        .catch((err: unknown) => module.log.warn({ err, jid: bare }, 'could not take back a stored copy of a written message'));
    }
    return 'stored';
  };

  const deliverToBare = async (stanza: Stanza, bare: string, origin: Origin, refused?: ClientSession): Promise<Outcome> => {
    const type = messageType(stanza);
    if (!(await module.users.exists(bare))) throw new StanzaError('service-unavailable');
    // §8.5.2.1.1: a groupchat message to a bare JID of an account is an error.
    if (type === 'groupchat') throw new StanzaError('service-unavailable');
    const sessions = module.sessions.byBare(bare).filter((s) => s !== refused);
    for (const group of recipientGroups(sessions, type)) {
      const took = group.filter((s) => s.deliver(stanza));
      if (took.length > 0) return confirm(took, stanza, bare, origin);
    }
    return storeOrDiscard(stanza, bare);
  };

  const onBare = async ({ stanza, origin }: StanzaEvent): Promise<Outcome> => {
    const bare = bareOf(stanza.attrs.to ?? '');
    if (!bare) throw new StanzaError('jid-malformed');
    return deliverToBare(stanza, bare, origin);
  };

  const onFull = async ({ stanza, origin }: StanzaEvent): Promise<Outcome> => {
    const to = stanza.attrs.to ?? '';
    const session = module.sessions.byFull(to);
    const bare = bareOf(to);
    if (session?.deliver(stanza) && bare) return confirm([session], stanza, bare, origin);
    if (!bare || !(await module.users.exists(bare))) throw new StanzaError('service-unavailable');
    // §8.5.3.2.1: no such resource (or it does not take it) → chat and normal as if sent to the bare JID, the rest dropped.
    const type = messageType(stanza);
    if (type === 'chat' || type === 'normal') return deliverToBare(stanza, bare, origin, session);
    return 'discarded';
  };

  /**
   * XEP-0160: on initial presence, the stored messages go to that resource with a delay, in batches that wait until
   * the socket took them; each batch is deleted only then. What a vanished or stalled client did not get stays
   * stored for the next session.
   */
  const onResourceAvailable = async ({ session }: { session: ClientSession }): Promise<void> => {
    if (session.host !== module.host || session.priority < 0 || flushing.has(session.bare)) return;
    // A module may keep them back for this session (mam, when it fetched the archive first).
    if ((await module.fireGlobal('message/offline/broadcast', { session })) !== undefined) return;
    if (flushing.has(session.bare)) return;
    flushing.add(session.bare);
    // Not awaited: the session's own stanzas (its presence event is still being routed) must not wait for the flush.
    flush(session)
      .catch((err: unknown) => module.log.error({ err, jid: session.bare }, 'offline delivery failed; the rest stays stored'))
      .finally(() => flushing.delete(session.bare));
  };

  const flush = async (first: ClientSession): Promise<void> => {
    const bare = first.bare;
    let session: ClientSession | undefined = first;
    const tried = new Set<ClientSession>();
    let count = 0;
    while (session) {
      const { items } = await offline.find(bare, { limit: FLUSH_BATCH_ITEMS });
      if (items.length === 0) break;
      const sent: string[] = [];
      const unreadable: string[] = [];
      let bytes = 0;
      for (const item of items) {
        if (bytes >= FLUSH_BATCH_BYTES) break;
        let stanza: Stanza;
        try {
          stanza = withDelay(parse(item.value), module.host, item.stamp);
        } catch (err) {
          module.log.error({ err, jid: bare, id: item.id }, 'an offline message is unreadable; deleting it');
          unreadable.push(item.id);
          continue;
        }
        if (!session.deliver(stanza)) break;
        sent.push(item.id);
        bytes += item.value.length;
      }
      if (unreadable.length > 0) quota.release(bare, await offline.delete(bare, { ids: unreadable }));
      const result = sent.length > 0 ? await within(session.whenWritten(), FLUSH_WAIT_MS) : false;
      if (result === true) {
        quota.release(bare, await offline.delete(bare, { ids: sent }));
        count += sent.length;
        continue;
      }
      if (result === 'timeout') {
        // Still open but not reading: what it was given may reach it later, and comes again at its next login.
        module.log.info({ jid: first.full, count }, 'offline delivery stalled; the rest stays stored');
        break;
      }
      if (sent.length === 0 && unreadable.length > 0) continue;
      // The session went (or refused): another available resource of the account takes over, else all waits.
      tried.add(session);
      session = module.sessions.byBare(bare).find((s) => !tried.has(s) && s.isAvailable && s.priority >= 0);
    }
    if (count > 0) module.log.debug({ jid: bare, count }, 'delivered offline messages');
  };

  /**
   * The account's messages left with it (storage deleted them with the account); this catches one stored by a
   * request that checked the account just before it went.
   */
  const onUserDeleted = async ({ jid, host }: { jid: string; host: string }): Promise<void> => {
    if (host !== module.host) return;
    quota.forget(jid);
    await offline.delete(jid);
  };

  module.hook('message/bare', onBare);
  module.hook('message/full', onFull);
  module.hookGlobal('resource-available', onResourceAvailable);
  module.hookGlobal('user-deleted', onUserDeleted);
  module.provides('disco_feature', 'msgoffline');
}

export const message: ModuleDefinition = {
  manifest: {
    id: 'message',
    description: 'Message delivery to local accounts and offline storage (RFC 6121 §8.5, XEP-0160, XEP-0203).',
    options: {
      // COMPAT: Prosody's storage option of the same name bounds every archive (10000 in its internal storage);
      // here it bounds the offline archive and is set in the message section.
      storage_archive_item_limit: {
        type: 'integer',
        default: 10000,
        min: 1,
        description: 'Most messages kept offline per account; past it a message for an offline account is refused (resource-constraint, HTTP 507), not dropped.',
      },
    },
  },
  load: load as ModuleDefinition['load'],
};
