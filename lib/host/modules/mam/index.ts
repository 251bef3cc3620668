// mam: Message Archive Management (XEP-0313, urn:xmpp:mam:2) per account, XEP-0359 stanza ids, XEP-0059 paging.
// Prosody: plugins/mod_mam/mod_mam.lua. DIFF: enabled by default here (Prosody leaves it off): an alert must reach
// every device of its reader, and a phone that was offline or on a dead link fetches what it missed from here.

import parse from '@xmpp/xml/lib/parse.js';
import {
  StanzaError,
  cloneStanza,
  parseJid,
  serialize,
  xml,
  type ArchiveItem,
  type ClientSession,
  type Element,
  type ModuleApi,
  type ModuleDefinition,
  type Stanza,
  type StanzaEvent,
} from '../../api.js';
import { NS_MAM, NS_MAM_EXTENDED, formatDateTime, parseQuery, queryForm, resultSet } from './query.js';
import { DEFAULT_PREFS, archiveRule, prefsElement, prefsFromElement, storedPrefs, type MamPrefs } from './prefs.js';
import { NS_SID, copyForArchive, hasStanzaIdBy, shouldArchive, withoutStanzaIdBy } from './rules.js';

const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';

/** Items per page when the client gives no `<max/>` (Prosody's default_max_items). */
const DEFAULT_MAX_ITEMS = 20;
/** How often expired items are deleted; the first run comes a minute after start. */
const CLEANUP_INTERVAL_MS = 60 * 60 * 1000;
const FIRST_CLEANUP_MS = 60 * 1000;
/** Accounts whose preferences and last archiving day are kept in memory. */
const CACHE_SIZE = 1000;

export interface MamOptions {
  /** Seconds, or `never`. */
  archive_expires_after: number | 'never';
  max_archive_query_results: number;
}

/** What mam offers other modules (and specs, and an admin's script) through depends('mam'). */
export interface MamService {
  /** Delete the items older than archive_expires_after as of `now` (what the hourly run does); resolves to how many. */
  cleanup(now?: Date): Promise<number>;
  /** Whether this session fetched the archive (then offline messages are not pushed to it). */
  hasQueried(session: ClientSession): boolean;
}

declare module '../../api.js' {
  interface Services {
    mam: MamService;
  }
}

/** A Map that forgets its oldest entry past `limit` (insertion order). */
class SmallCache<V> extends Map<string, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: string, value: V): this {
    this.delete(key);
    super.set(key, value);
    if (this.size > this.limit) this.delete(this.keys().next().value!);
    return this;
  }
}

function bareOf(jid: string | undefined): string | undefined {
  if (!jid) return undefined;
  const parsed = parseJid(jid);
  return parsed.ok ? parsed.jid.bare : undefined;
}

/** The UTC day of a moment, as the cleanup record keys its days. */
const dayOf = (date: Date): string => date.toISOString().slice(0, 10);

const DAY_MS = 24 * 60 * 60 * 1000;
let today = { name: '', from: 0, to: 0 };
/** Today's dayOf, formatted once a day rather than once per message. */
function currentDay(): string {
  const now = Date.now();
  if (now < today.from || now >= today.to) {
    const from = Math.floor(now / DAY_MS) * DAY_MS;
    today = { name: dayOf(new Date(now)), from, to: from + DAY_MS };
  }
  return today.name;
}

export function load(module: ModuleApi<MamOptions>): void {
  const archive = module.openArchive('archive');
  // Prosody's store names: archive_prefs for preferences, archive_cleanup for which accounts archived on which day.
  const prefsStore = module.openStore<MamPrefs>('archive_prefs');
  const cleanupStore = module.openStore<Record<string, string[]>>('archive_cleanup');
  // The roster module keeps one entry per contact, keyed by its JID (Prosody's roster map).
  const rosterStore = module.openMap<{ jid?: unknown }>('roster');
  const expiresAfter = module.options.archive_expires_after;
  const maxResults = module.options.max_archive_query_results;

  const prefsCache = new SmallCache<MamPrefs>(CACHE_SIZE);
  /** Account → the last day it was noted in the cleanup record (Prosody's last_date cache). */
  const noted = new SmallCache<string>(CACHE_SIZE);
  /** Sessions that fetched the archive (Prosody's session.mam_requested). */
  const queried = new WeakSet<ClientSession>();
  /** Read-modify-writes of the cleanup record, one after another. */
  let cleanupChain: Promise<unknown> = Promise.resolve();
  const serially = <T>(task: () => Promise<T>): Promise<T> => {
    const run = cleanupChain.then(task, task);
    cleanupChain = run.catch(() => undefined);
    return run;
  };

  const prefsOf = async (account: string): Promise<MamPrefs> => {
    const cached = prefsCache.get(account);
    if (cached) return cached;
    const prefs = storedPrefs((await prefsStore.get(account)) ?? DEFAULT_PREFS);
    prefsCache.set(account, prefs);
    return prefs;
  };

  const isInRoster = async (account: string, jid: string): Promise<boolean> => {
    const entry = await rosterStore.get(account, jid);
    return typeof entry === 'object' && entry !== null && entry.jid === jid;
  };

  /** The accounts that archived today go into the record the expiry reads (only the first message of a day writes). */
  const noteForCleanup = (account: string): void => {
    if (expiresAfter === 'never') return;
    const day = currentDay();
    if (noted.get(account) === day) return;
    noted.set(account, day);
    serially(async () => {
      const record = (await cleanupStore.get(module.host)) ?? {};
      const accounts = record[day] ?? [];
      if (accounts.includes(account)) return;
      await cleanupStore.set(module.host, { ...record, [day]: [...accounts, account] });
    }).catch((err: unknown) => {
      noted.delete(account);
      module.log.error({ err }, 'could not note an account for archive expiry');
    });
  };

  /**
   * Archive a message for `account` (a local account) whose other party is `other`; resolves to the item's id once
   * it is on disk, or undefined when the rules or the account's preferences keep it out.
   */
  const archiveFor = async (account: string, other: string, stanza: Stanza, mustExist: boolean): Promise<string | undefined> => {
    const { archive: worth, reason } = shouldArchive(stanza);
    if (!worth) {
      module.log.debug({ reason }, 'not archiving a message');
      return undefined;
    }
    const copy = copyForArchive(stanza, account);
    if (!copy) return undefined;
    if (mustExist && !(await module.users.exists(account))) return undefined;
    // Cached preferences and a rule that needs no roster decide at once (nearly every message): no promise to wait on.
    const rule = archiveRule(prefsCache.get(account) ?? (await prefsOf(account)), other);
    if (!(rule === 'roster' ? await isInRoster(account, other) : rule)) {
      module.log.debug({ reason: 'prefs' }, 'not archiving a message');
      return undefined;
    }
    const id = await archive.append(account, { with: other, value: serialize(copy) });
    noteForCleanup(account);
    return id;
  };

  /** Sender's copies being written, by the stanza routed on: the recipient's handler awaits them with its own. */
  const sentCopies = new WeakMap<Stanza, Promise<unknown>>();

  /**
   * A message a local account sends (its client, or post_msg for it): archived as sent. For a recipient on one of
   * this server's hosts the write is awaited in onIncoming, so both copies share one commit (one fsync); for any
   * other it is awaited here. Either way routing resolves only once it is on disk.
   */
  const onOutgoing = async ({ stanza, origin }: StanzaEvent): Promise<undefined> => {
    const account = bareOf(origin.jid);
    if (!account) return undefined;
    // XEP-0359 §3.1: a stanza-id in the account's name is only the archive's to give; never let one leave.
    if (hasStanzaIdBy(stanza, account)) stanza.children = withoutStanzaIdBy(stanza, account).children;
    const to = parseJid(stanza.attrs.to ?? account);
    const other = to.ok ? to.jid.bare : account;
    const writing = archiveFor(account, other, stanza, false);
    if (!to.ok || to.jid.local === null || !module.isLocalHost(to.jid.domain)) {
      await writing;
      return undefined;
    }
    // Unhandled until onIncoming awaits it; a failure there fails the routing as an awaited one would.
    writing.catch(() => undefined);
    sentCopies.set(stanza, writing);
    return undefined;
  };

  /**
   * A message to a local account: archived for it before delivery goes on (awaited, so a 201 or a delivered
   * stanza means it is on disk); what is delivered or stored offline carries the archive's stanza-id.
   */
  const onIncoming = async (event: StanzaEvent): Promise<undefined> => {
    const sent = sentCopies.get(event.stanza);
    if (sent) {
      sentCopies.delete(event.stanza);
      await onIncomingCopy(event);
      await sent;
      return undefined;
    }
    return onIncomingCopy(event);
  };

  const onIncomingCopy = async (event: StanzaEvent): Promise<undefined> => {
    const to = parseJid(event.stanza.attrs.to ?? event.origin.jid ?? '');
    if (!to.ok || to.jid.local === null) return undefined;
    const account = to.jid.bare;
    if (hasStanzaIdBy(event.stanza, account)) event.stanza = withoutStanzaIdBy(event.stanza, account);
    const other = bareOf(event.stanza.attrs.from) ?? '';
    const id = await archiveFor(account, other, event.stanza, true);
    if (id !== undefined) {
      const marked = cloneStanza(event.stanza);
      marked.append(xml('stanza-id', { xmlns: NS_SID, by: account, id }));
      event.stanza = marked;
    }
    return undefined;
  };

  /** One archived item as a query result (XEP-0313 §4.2), or undefined when its stored text cannot be read. */
  const resultMessage = (item: ArchiveItem, to: string | undefined, from: string | undefined, queryid: string | undefined): Stanza | undefined => {
    let inner: Element;
    try {
      inner = parse(item.value);
    } catch (err) {
      module.log.error({ err, id: item.id }, 'an archived message cannot be read');
      return undefined;
    }
    inner.attrs.xmlns = 'jabber:client';
    return xml(
      'message',
      { to, from },
      xml('result', { xmlns: NS_MAM, queryid, id: item.id }, xml('forwarded', { xmlns: NS_FORWARD }, xml('delay', { xmlns: NS_DELAY, stamp: formatDateTime(item.stamp) }), inner)),
    );
  };

  /** XEP-0313 §4: the results go to the asking resource as messages, then the iq result ends them with `<fin/>`. */
  const onQuery = async ({ stanza, origin }: StanzaEvent): Promise<Element> => {
    const account = bareOf(origin.jid);
    if (!account) throw new StanzaError('forbidden');
    const session = origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    if (session) queried.add(session);
    const query = stanza.getChild('query', NS_MAM)!;
    const q = parseQuery(query);
    const max = Math.min(q.max ?? DEFAULT_MAX_ITEMS, maxResults);
    // XEP-0059 §2.5: <before/> pages backwards from the end (or from an id).
    const isReverse = q.before !== undefined;
    const filter = { start: q.start, end: q.end, with: q.with, ids: q.ids };
    const page = await archive.find(account, {
      ...filter,
      before: typeof q.before === 'string' ? q.before : q.beforeId,
      after: q.after ?? q.afterId,
      limit: max,
      reverse: isReverse,
    });
    const count = await archive.count(account, filter);
    // Items come in query order; results are sent oldest first unless flip-page asks for the other order.
    const found = page.items;
    const ordered = isReverse !== q.flipPage ? [...found].reverse() : found;
    const queryid = typeof query.attrs.queryid === 'string' ? query.attrs.queryid : undefined;
    for (const item of ordered) {
      const result = resultMessage(item, stanza.attrs.from, stanza.attrs.to, queryid);
      if (result) origin.send?.(result);
    }
    // RSM's first and last name the page in chronological order.
    const ends = [found[0]?.id, found.at(-1)?.id];
    const [first, last] = isReverse ? ends.reverse() : ends;
    module.log.debug({ count: found.length, complete: page.complete }, 'archive query answered');
    return xml('fin', { xmlns: NS_MAM, complete: String(page.complete) }, resultSet({ first, last, count }));
  };

  /** XEP-0313 §5.1 (urn:xmpp:mam:2#extended): the archive's first and last items. */
  const onMetadata = async ({ origin }: StanzaEvent): Promise<Element> => {
    const account = bareOf(origin.jid);
    if (!account) throw new StanzaError('forbidden');
    const metadata = xml('metadata', { xmlns: NS_MAM });
    const [first] = (await archive.find(account, { limit: 1 })).items;
    const [last] = (await archive.find(account, { limit: 1, reverse: true })).items;
    if (first) metadata.append(xml('start', { id: first.id, timestamp: formatDateTime(first.stamp) }));
    if (last) metadata.append(xml('end', { id: last.id, timestamp: formatDateTime(last.stamp) }));
    return metadata;
  };

  const onPrefs = async ({ stanza, origin }: StanzaEvent): Promise<Element> => {
    const account = bareOf(origin.jid);
    if (!account) throw new StanzaError('forbidden');
    if (stanza.attrs.type === 'set') {
      const prefs = prefsFromElement(stanza.getChild('prefs', NS_MAM)!);
      await prefsStore.set(account, prefs);
      prefsCache.set(account, prefs);
    }
    return prefsElement(await prefsOf(account));
  };

  let isCleaning = false;
  const cleanup = async (now = new Date()): Promise<number> => {
    if (expiresAfter === 'never' || isCleaning) return 0;
    isCleaning = true;
    try {
      const cutoff = new Date(now.getTime() - expiresAfter * 1000);
      const cutDay = dayOf(cutoff);
      // Every account that archived on a day at or before the cutoff's; days before it are done once cleaned.
      const accounts = await serially(async () => {
        const record = (await cleanupStore.get(module.host)) ?? {};
        const due = new Set<string>();
        const kept: Record<string, string[]> = {};
        for (const [day, names] of Object.entries(record)) {
          if (day <= cutDay) for (const name of names) due.add(name);
          if (day >= cutDay) kept[day] = names;
        }
        if (Object.keys(kept).length !== Object.keys(record).length) await cleanupStore.set(module.host, kept);
        return due;
      });
      let deleted = 0;
      for (const account of accounts) deleted += await archive.delete(account, { end: cutoff });
      if (deleted > 0) module.log.info({ deleted, accounts: accounts.size }, 'deleted expired archived messages');
      return deleted;
    } finally {
      isCleaning = false;
    }
  };
  const runCleanup = (): void => {
    cleanup().catch((err: unknown) => module.log.error({ err }, 'archive expiry failed'));
  };
  if (expiresAfter !== 'never') {
    const first = setTimeout(runCleanup, FIRST_CLEANUP_MS);
    const every = setInterval(runCleanup, CLEANUP_INTERVAL_MS);
    // Expiry never keeps the process alive.
    first.unref();
    every.unref();
    module.onUnload(() => {
      clearTimeout(first);
      clearInterval(every);
    });
  }

  // Before message (priority 0) delivers, so delivery carries the stanza-id and waits for the disk.
  module.hook('pre-message/bare', onOutgoing, 1);
  module.hook('pre-message/full', onOutgoing, 1);
  module.hook('message/bare', onIncoming, 1);
  module.hook('message/full', onIncoming, 1);
  module.handleIq('set', NS_MAM, 'query', onQuery, { to: ['self'] });
  module.handleIq('get', NS_MAM, 'query', () => queryForm(), { to: ['self'] });
  module.handleIq('get', NS_MAM, 'metadata', onMetadata, { to: ['self'] });
  module.handleIq('get', NS_MAM, 'prefs', onPrefs, { to: ['self'] });
  module.handleIq('set', NS_MAM, 'prefs', onPrefs, { to: ['self'] });
  // XEP-0313 §4: an archive is its account's alone; another account or a remote user asking is forbidden.
  // COMPAT: Prosody hooks only iq/self and answers service-unavailable.
  const notYours = (): never => {
    throw new StanzaError('forbidden', 'A message archive can be read only by its own account.');
  };
  for (const [type, name] of [['set', 'query'], ['get', 'query'], ['get', 'metadata'], ['get', 'prefs'], ['set', 'prefs']] as const) {
    module.handleIq(type, NS_MAM, name, notYours, { to: ['bare'] });
  }

  // Prosody's mod_mam: a session that fetched the archive gets no offline push (it has those messages already).
  module.hookGlobal('message/offline/broadcast', ({ session }) => (session.host === module.host && queried.has(session) ? true : undefined));
  /** Storage deleted the account's archive with it; this catches an item a request under way wrote since. */
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host !== module.host) return;
    prefsCache.delete(jid);
    noted.delete(jid);
    await archive.delete(jid);
  });
  // Another process deleted or recreated accounts: cached preferences may belong to an account that is gone.
  module.hookGlobal('users-changed-elsewhere', () => {
    prefsCache.clear();
  });

  module.provides('account_disco_feature', NS_MAM);
  module.provides('account_disco_feature', NS_MAM_EXTENDED);
  module.provides('account_disco_feature', NS_SID);
  module.setService<'mam'>({ cleanup, hasQueried: (session) => queried.has(session) });
}

export const manifest = {
  id: 'mam',
  description: 'Message Archive Management (XEP-0313): a per-account archive with paging, filters, preferences and expiry; XEP-0359 stanza ids.',
  options: {
    archive_expires_after: {
      type: 'integer',
      format: 'duration',
      enum: ['never'],
      default: 604800,
      min: 60,
      description: 'How long archived messages are kept (Prosody\'s default 1w = 604800 s); `never` keeps them for good. Expired ones are deleted every hour.',
    },
    max_archive_query_results: {
      type: 'integer',
      default: 50,
      min: 1,
      max: 1000,
      description: 'Most messages one archive query returns per page, whatever page size (RSM max) the client asks; without one a page has 20.',
    },
  },
} satisfies ModuleDefinition['manifest'];

/** Typed options in load(); the manifest declares the same keys (spec/host/modules/mam.spec.ts checks them). */
export const mam: ModuleDefinition = {
  manifest,
  load: (module) => load(module as unknown as ModuleApi<MamOptions>),
};

