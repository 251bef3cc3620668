// Roster get/set with versioning (RFC 6121 §2, §2.6), stored item by item in the map store `roster`, with limits,
// and the subscription states presence subscriptions change (RFC 6121 §3, offered to presence as the roster service).
// Prosody: plugins/mod_roster.lua + core/rostermanager.lua (which keeps a roster as a map too: one row per contact,
// the version under its own key, pending requests beside them). DIFF: Prosody has no roster limits, these are ours.

import { randomBytes } from 'node:crypto';
import { keyedLock } from '../util/keyed-lock.js';
import {
  StanzaError,
  parseJid,
  xml,
  type ClientSession,
  type ContactResult,
  type ContactState,
  type ContactUpdate,
  type Element,
  type KeyValueStore,
  type MapStore,
  type ModuleApi,
  type ModuleDefinition,
  type OptionSpec,
  type PendingRequest,
  type RosterChange,
  type RosterItem,
  type StanzaEvent,
} from '../api.js';

const NS_ROSTER = 'jabber:iq:roster';

/**
 * Kept under its own key beside the items, and written in the same transaction as each change, so a change never
 * reads the other items: the version, and the count and size the limits are checked against.
 */
export interface RosterMeta {
  /** Bumped on every change (RFC 6121 §2.6). */
  version: number;
  /**
   * Random, chosen when the roster is first written: a roster that was deleted with its account and begun again
   * counts its versions anew, and a client that cached the old one must not take version 3 of the new for its own.
   */
  epoch: string;
  items: number;
  /** UTF-8 bytes of the stored items (their JSON), what max_bytes bounds. */
  bytes: number;
  /** Subscription requests waiting (pending in), and their bytes: bounded by max_items and max_bytes as the items are. */
  pending?: number;
  pendingBytes?: number;
}

/** The roster as a get answers it. */
export interface Roster {
  ver: string;
  items: RosterItem[];
}

/** What earlier versions stored: one JSON document per account in the key-value store `roster`. */
export interface LegacyRoster {
  version: number;
  items: Record<string, RosterItem>;
}

type Entry = RosterItem | RosterMeta | PendingRequest;
/** The key of the meta entry: never a JID, which is never empty. */
const META = '';
/** Keys of pending requests: a JID never starts with '/' (its domain comes first and is never empty). */
const PENDING = '/pending/';
const pendingKey = (jid: string): string => `${PENDING}${jid}`;

export interface RosterLimits {
  maxItems: number;
  maxGroupsPerItem: number;
  maxNameLength: number;
  maxGroupLength: number;
  maxBytes: number;
}

/**
 * Defaults: a person's contacts fit with room to spare (jabberd2's sm.xml suggests a roster maxitems of the same
 * order), while one account cannot turn its roster into a store of megabytes that every login sends back whole.
 * 1023 characters is RFC 7622's bound of a JID part, the usual measure of a name in XMPP.
 */
export const rosterOptions = {
  max_items: { type: 'integer', default: 1000, min: 1, max: 1_000_000, description: 'Contacts one account may have on its roster; one more is refused with policy-violation.' },
  max_groups_per_item: { type: 'integer', default: 64, min: 0, max: 10_000, description: 'Groups one roster item may be in; more is refused with not-acceptable (RFC 6121 §2.3.3).' },
  max_name_length: { type: 'integer', default: 1023, min: 1, max: 65_535, description: "Characters in a roster item's name; longer is refused with not-acceptable." },
  max_group_length: { type: 'integer', default: 1023, min: 1, max: 65_535, description: 'Characters in a group name; longer is refused with not-acceptable.' },
  max_bytes: { type: 'integer', default: 1_048_576, min: 1024, max: 1_073_741_824, description: "Bytes of one account's whole roster as stored (its items' JSON); a change that grows it past this is refused with policy-violation." },
} satisfies Record<string, OptionSpec>;

export const DEFAULT_LIMITS: RosterLimits = {
  maxItems: rosterOptions.max_items.default,
  maxGroupsPerItem: rosterOptions.max_groups_per_item.default,
  maxNameLength: rosterOptions.max_name_length.default,
  maxGroupLength: rosterOptions.max_group_length.default,
  maxBytes: rosterOptions.max_bytes.default,
};

export function itemElement(item: RosterItem | { jid: string; subscription: 'remove' }): Element {
  const attrs: Record<string, string | undefined> = { jid: item.jid, subscription: item.subscription };
  if ('name' in item && item.name) attrs.name = item.name;
  if ('ask' in item && item.ask) attrs.ask = item.ask;
  if ('approved' in item && item.approved) attrs.approved = 'true';
  const el = xml('item', attrs);
  if ('groups' in item) for (const g of item.groups) el.append(xml('group', {}, g));
  return el;
}

export function rosterQuery(roster: Roster): Element {
  const query = xml('query', { xmlns: NS_ROSTER, ver: roster.ver });
  for (const item of roster.items) query.append(itemElement(item));
  return query;
}

/** The payload of a roster get's result (RFC 6121 §2.1.3): the roster, or none when the client's `ver` is current (§2.6.3). */
export function rosterResult(roster: Roster, clientVer: string | undefined): Element | true {
  return clientVer !== undefined && clientVer === roster.ver ? true : rosterQuery(roster);
}

/** The `ver` of a roster: "0" for one never written (or deleted), else epoch and version. */
export function verOf(meta: RosterMeta | undefined): string {
  return meta ? `${meta.epoch}-${meta.version}` : '0';
}

export type RosterRequest = { jid: string; remove: true } | { jid: string; remove?: false; name?: string; groups: string[] };

const characters = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * Read and check a roster set (RFC 6121 §2.3, §2.5). Throws StanzaError for what §2.3.3 refuses and for what the
 * limits refuse, each saying what to change. `owner` (the account's bare JID) cannot put itself on its roster.
 */
export function parseRosterSet(query: Element, owner: string, limits: RosterLimits = DEFAULT_LIMITS): RosterRequest {
  const items = query.getChildren('item');
  if (items.length !== 1) throw new StanzaError('bad-request', 'A roster set carries exactly one item.');
  const el = items[0]!;
  const parsed = parseJid(el.attrs.jid ?? '');
  if (!parsed.ok) throw new StanzaError('bad-request', 'The item needs a valid jid.');
  const jid = parsed.jid.full;
  if (parsed.jid.bare === owner && parsed.jid.resource === null) throw new StanzaError('not-allowed', 'Your own JID cannot be on your roster.');
  if (el.attrs.subscription === 'remove') return { jid, remove: true };

  const groupEls = el.getChildren('group');
  if (groupEls.length > limits.maxGroupsPerItem) {
    throw new StanzaError('not-acceptable', `The item is in ${groupEls.length} groups; at most ${limits.maxGroupsPerItem} are allowed per item (roster max_groups_per_item): leave some out.`);
  }
  const groups = groupEls.map((g) => g.getText());
  if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'A group name is empty; name the group or leave it out.');
  const longGroup = groups.find((g) => characters(g) > limits.maxGroupLength);
  if (longGroup !== undefined) {
    throw new StanzaError('not-acceptable', `A group name has ${characters(longGroup)} characters; at most ${limits.maxGroupLength} are allowed (roster max_group_length): shorten it.`);
  }
  if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'A group is listed twice.');
  const name = el.attrs.name;
  if (name !== undefined && characters(name) > limits.maxNameLength) {
    throw new StanzaError('not-acceptable', `The name has ${characters(name)} characters; at most ${limits.maxNameLength} are allowed (roster max_name_length): shorten it.`);
  }
  return { jid, groups, ...(name ? { name } : {}) };
}

/** The item stored for a set: §2.1.2.5, `subscription` (other than remove) and `ask` from the client are ignored; the server owns them. */
export function mergeItem(request: { jid: string; name?: string; groups: string[] }, previous: RosterItem | undefined): RosterItem {
  return {
    jid: request.jid,
    subscription: previous?.subscription ?? 'none',
    groups: request.groups,
    ...(request.name ? { name: request.name } : {}),
    ...(previous?.ask ? { ask: previous.ask } : {}),
    ...(previous?.approved ? { approved: true as const } : {}),
  };
}

export const itemBytes = (item: RosterItem): number => Buffer.byteLength(JSON.stringify(item));

const isMeta = (entry: Entry | undefined): entry is RosterMeta => entry !== undefined && 'version' in entry;
const isItem = (entry: Entry | undefined): entry is RosterItem => entry !== undefined && 'jid' in entry;
const isPending = (entry: Entry | undefined): entry is PendingRequest => entry !== undefined && 'stanza' in entry && 'from' in entry;
const pendingBytesOf = (request: PendingRequest): number => Buffer.byteLength(JSON.stringify(request));

/**
 * Rosters on a map store: a change reads its item and the meta entry and writes both in one transaction, whatever
 * the roster's size. Changes of one account run one at a time. A roster still stored the earlier way (one document)
 * moves to the map the first time its account's roster is read or changed.
 */
export class RosterStore {
  /** One change at a time per account, so two sets do not overwrite each other's meta. */
  /** One change at a time per account: a change reads its item and the meta entry, then writes both. */
  private readonly withLock = keyedLock();

  constructor(
    private readonly map: MapStore<Entry>,
    private readonly legacy: KeyValueStore<LegacyRoster> | undefined,
    private readonly limits: RosterLimits = DEFAULT_LIMITS,
  ) {}

  async read(user: string): Promise<Roster> {
    return this.withLock(user, async () => {
      const meta = await this.meta(user);
      if (!meta) return { ver: verOf(undefined), items: [] };
      const items = [...(await this.map.getAll(user)).values()].filter(isItem);
      return { ver: verOf(meta), items };
    });
  }

  /**
   * Apply a roster set; resolves to the new `ver` and what changed, for the pushes, and for a removal the item and
   * pending request that were there (RFC 6121 §2.5.2: the contact is told). Throws StanzaError.
   */
  async apply(user: string, query: Element): Promise<{ ver: string; change: RosterChange; removed?: ContactState }> {
    const request = parseRosterSet(query, user, this.limits);
    return this.withLock(user, async () => {
      const meta = (await this.meta(user)) ?? { version: 0, epoch: randomBytes(6).toString('base64url'), items: 0, bytes: 0 };
      const stored = await this.map.get(user, request.jid);
      const previous = isItem(stored) ? stored : undefined;
      const previousBytes = previous ? itemBytes(previous) : 0;
      if (request.remove) {
        if (!previous) throw new StanzaError('item-not-found');
        const next: RosterMeta = { ...meta, version: meta.version + 1, items: meta.items - 1, bytes: meta.bytes - previousBytes };
        const entries = new Map<string, Entry | undefined>([[request.jid, undefined], [META, next]]);
        // A pending request goes with the item (§2.5.2); looked for only when the account has any.
        const stale = meta.pending ? await this.map.get(user, pendingKey(request.jid)) : undefined;
        const pending = isPending(stale) ? stale : undefined;
        if (pending) {
          next.pending = (meta.pending ?? 1) - 1;
          next.pendingBytes = (meta.pendingBytes ?? 0) - pendingBytesOf(pending);
          entries.set(pendingKey(request.jid), undefined);
        }
        await this.map.setKeys(user, entries);
        return { ver: verOf(next), change: { removed: request.jid }, removed: { item: previous, pending } };
      }
      if (!previous && meta.items >= this.limits.maxItems) {
        throw new StanzaError('policy-violation', `Your roster is full: it has ${meta.items} items, the most allowed (roster max_items); remove a contact first.`);
      }
      const item = mergeItem(request, previous);
      const bytes = meta.bytes - previousBytes + itemBytes(item);
      // A change that does not grow the roster is always allowed, so a roster over the limit can be trimmed.
      if (bytes > this.limits.maxBytes && bytes > meta.bytes) {
        throw new StanzaError('policy-violation', `Your roster would take ${bytes} bytes, more than the ${this.limits.maxBytes} allowed (roster max_bytes); shorten names and groups or remove contacts.`);
      }
      const next: RosterMeta = { ...meta, version: meta.version + 1, items: meta.items + (previous ? 0 : 1), bytes };
      await this.map.setKeys(user, new Map<string, Entry | undefined>([[request.jid, item], [META, next]]));
      return { ver: verOf(next), change: { item } };
    });
  }

  /** One contact's item and pending request. */
  async contact(user: string, jid: string): Promise<ContactState> {
    return this.withLock(user, async () => {
      const meta = await this.meta(user);
      if (!meta) return { item: undefined, pending: undefined };
      const [item, pending] = await Promise.all([this.map.get(user, jid), meta.pending ? this.map.get(user, pendingKey(jid)) : undefined]);
      return { item: isItem(item) ? item : undefined, pending: isPending(pending) ? pending : undefined };
    });
  }

  /** The subscription requests waiting for the account's answer, oldest key first. */
  async pendingRequests(user: string): Promise<PendingRequest[]> {
    return this.withLock(user, async () => {
      const meta = await this.meta(user);
      if (!meta?.pending) return [];
      return [...(await this.map.getAll(user)).values()].filter(isPending);
    });
  }

  /**
   * Change one contact's item and pending request in one transaction (a subscription step, RFC 6121 §3). `decide`
   * sees the current state and returns what to write, or undefined for nothing. A new item past the limits throws
   * StanzaError policy-violation (as a roster set would); a new pending request past them throws resource-constraint.
   */
  async update(user: string, jid: string, decide: (state: ContactState) => ContactUpdate | undefined): Promise<ContactResult> {
    return this.withLock(user, async () => {
      const meta = (await this.meta(user)) ?? { version: 0, epoch: randomBytes(6).toString('base64url'), items: 0, bytes: 0 };
      const [storedItem, storedPending] = await Promise.all([this.map.get(user, jid), meta.pending ? this.map.get(user, pendingKey(jid)) : undefined]);
      const before: ContactState = { item: isItem(storedItem) ? storedItem : undefined, pending: isPending(storedPending) ? storedPending : undefined };
      const update = decide(before);
      if (!update || (update.item === undefined && update.pending === undefined)) return { before, after: before };
      const next: RosterMeta = { ...meta };
      const entries = new Map<string, Entry | undefined>();
      const after: ContactState = { ...before };
      let change: RosterChange | undefined;
      if (update.item !== undefined && !(update.item && before.item && JSON.stringify(update.item) === JSON.stringify(before.item))) {
        const oldBytes = before.item ? itemBytes(before.item) : 0;
        if (update.item === null) {
          if (before.item) {
            next.items -= 1;
            next.bytes -= oldBytes;
            change = { removed: jid };
          }
        } else {
          if (!before.item && meta.items >= this.limits.maxItems) {
            throw new StanzaError('policy-violation', `The roster is full: it has ${meta.items} items, the most allowed (roster max_items); remove a contact first.`);
          }
          const bytes = meta.bytes - oldBytes + itemBytes(update.item);
          if (bytes > this.limits.maxBytes && bytes > meta.bytes) {
            throw new StanzaError('policy-violation', `The roster would take ${bytes} bytes, more than the ${this.limits.maxBytes} allowed (roster max_bytes).`);
          }
          next.items += before.item ? 0 : 1;
          next.bytes = bytes;
          change = { item: update.item };
        }
        if (change) {
          next.version += 1;
          entries.set(jid, update.item ?? undefined);
        }
        after.item = update.item ?? undefined;
      }
      if (update.pending !== undefined) {
        const oldBytes = before.pending ? pendingBytesOf(before.pending) : 0;
        const count = meta.pending ?? 0;
        const bytes = meta.pendingBytes ?? 0;
        if (update.pending === null) {
          if (before.pending) {
            next.pending = count - 1;
            next.pendingBytes = bytes - oldBytes;
            entries.set(pendingKey(jid), undefined);
          }
        } else {
          const newBytes = bytes - oldBytes + pendingBytesOf(update.pending);
          if ((!before.pending && count >= this.limits.maxItems) || newBytes > this.limits.maxBytes) {
            throw new StanzaError('resource-constraint', 'Too many subscription requests are waiting for this account (roster max_items, max_bytes).');
          }
          next.pending = count + (before.pending ? 0 : 1);
          next.pendingBytes = newBytes;
          entries.set(pendingKey(jid), update.pending);
        }
        after.pending = update.pending ?? undefined;
      }
      if (entries.size === 0) return { before, after: before };
      entries.set(META, next);
      await this.map.setKeys(user, entries);
      return { before, after, ...(change ? { pushed: { ver: verOf(next), change } } : {}) };
    });
  }

  /** Forget the account's roster (both ways it may be stored). */
  async delete(user: string): Promise<void> {
    await this.withLock(user, async () => {
      await this.map.clear(user);
      await this.legacy?.set(user, undefined);
    });
  }

  /** The meta entry; a roster of the earlier kind moves to the map first (map written, then the document deleted). */
  private async meta(user: string): Promise<RosterMeta | undefined> {
    const meta = await this.map.get(user, META);
    if (isMeta(meta)) return meta;
    const old = await this.legacy?.get(user);
    if (!old) return undefined;
    const items = Object.values(old.items ?? {}).filter(isItem);
    const migrated: RosterMeta = {
      version: old.version ?? 0,
      epoch: randomBytes(6).toString('base64url'),
      items: items.length,
      bytes: items.reduce((sum, i) => sum + itemBytes(i), 0),
    };
    const entries = new Map<string, Entry | undefined>(items.map((i) => [i.jid, i]));
    entries.set(META, migrated);
    // If the process stops between the two, the map (which has its meta entry) wins and the document is left over
    // until the account goes.
    await this.map.setKeys(user, entries);
    await this.legacy!.set(user, undefined);
    return migrated;
  }
}

export function limitsOf(options: Readonly<Record<string, unknown>>): RosterLimits {
  const n = (key: keyof typeof rosterOptions): number => (typeof options[key] === 'number' ? (options[key] as number) : rosterOptions[key].default);
  return {
    maxItems: n('max_items'),
    maxGroupsPerItem: n('max_groups_per_item'),
    maxNameLength: n('max_name_length'),
    maxGroupLength: n('max_group_length'),
    maxBytes: n('max_bytes'),
  };
}

export function load(module: ModuleApi): void {
  const store = new RosterStore(module.openMap<Entry>('roster'), module.openStore<LegacyRoster>('roster'), limitsOf(module.options));
  /** Resources that asked for the roster: they get pushes (RFC 6121 §2.1.6 "interested resources"). */
  const interested = new WeakSet<ClientSession>();

  const ownerOf = (origin: StanzaEvent['origin']): string => {
    const parsed = origin.jid ? parseJid(origin.jid) : undefined;
    if (!parsed?.ok || parsed.jid.local === null) throw new StanzaError('forbidden');
    return parsed.jid.bare;
  };

  const onGet = async ({ stanza, origin }: StanzaEvent): Promise<Element | true> => {
    const user = ownerOf(origin);
    const roster = await store.read(user);
    const session = origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    if (session) interested.add(session);
    return rosterResult(roster, stanza.getChild('query', NS_ROSTER)?.attrs.ver);
  };

  const onSet = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const user = ownerOf(origin);
    const { ver, change, removed } = await store.apply(user, stanza.getChild('query', NS_ROSTER)!);
    // Result first, then the pushes, as Prosody's mod_roster: the wrapper sends the result in this tick's promise
    // jobs, and next-tick callbacks run only once those are done.
    process.nextTick(() => {
      push(user, ver, change);
      if (removed) tellRemovedContact(user, removed);
    });
    return true;
  };

  /**
   * RFC 6121 §2.5.2: removing a contact cancels the subscriptions both ways. Sent as the server on the account's
   * behalf (its bare JID), so no outbound step runs again: the item is already gone.
   */
  const tellRemovedContact = (user: string, { item, pending }: ContactState): void => {
    if (!item) return;
    const send = (type: string): void => {
      module.route(xml('presence', { type, from: user, to: item.jid }), { type: 'host', host: module.host }).catch((err: unknown) => module.log.debug({ err, type }, 'telling a removed contact failed'));
    };
    if (item.subscription === 'to' || item.subscription === 'both' || item.ask) send('unsubscribe');
    if (item.subscription === 'from' || item.subscription === 'both' || pending) send('unsubscribed');
  };

  /** §2.1.6: a roster push to every interested resource of the account, with the new version. */
  const push = (user: string, ver: string, change: RosterChange): void => {
    const item = 'removed' in change ? itemElement({ jid: change.removed, subscription: 'remove' }) : itemElement(change.item);
    for (const session of module.sessions.byBare(user)) {
      if (!interested.has(session)) continue;
      const id = `push-${randomBytes(6).toString('base64url')}`;
      session.deliver(xml('iq', { type: 'set', id, to: session.full }, xml('query', { xmlns: NS_ROSTER, ver }, item)));
    }
  };

  module.setService<'roster'>({
    items: async (user) => (await store.read(user)).items,
    contact: (user, jid) => store.contact(user, jid),
    pendingRequests: (user) => store.pendingRequests(user),
    update: async (user, jid, decide) => {
      const result = await store.update(user, jid, decide);
      if (result.pushed) push(user, result.pushed.ver, result.pushed.change);
      return result;
    },
    isInterested: (session) => interested.has(session),
  });

  // The roster went with the account (storage deletes it in the same step); this catches a set that was under way.
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host === module.host) await store.delete(jid);
  });
  module.handleIq('get', NS_ROSTER, 'query', onGet, { to: ['self'] });
  module.handleIq('set', NS_ROSTER, 'query', onSet, { to: ['self'] });
}

export const roster: ModuleDefinition = {
  manifest: { id: 'roster', description: 'Roster storage with versioning (RFC 6121 §2), item by item, with per-account limits, and the subscription states of RFC 6121 §3.', options: rosterOptions },
  load,
};
