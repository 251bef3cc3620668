// Roster get/set with versioning (RFC 6121 §2, §2.6), stored per account in the keyval store `roster`.
// Prosody: plugins/mod_roster.lua + core/rostermanager.lua. DIFF: subscription states are kept but not yet
// changed by presence subscriptions (RFC 6121 §3), which come later.

import { randomBytes } from 'node:crypto';
import {
  StanzaError,
  parseJid,
  xml,
  type ClientSession,
  type Element,
  type ModuleApi,
  type ModuleDefinition,
  type StanzaEvent,
} from '../api.js';

const NS_ROSTER = 'jabber:iq:roster';
/** Bounds so a roster stays a roster (RFC 6121 §2.3.3 lets the server refuse with not-acceptable). */
const MAX_NAME_LENGTH = 1023;
const MAX_GROUPS = 64;
const MAX_ITEMS = 10_000;

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  jid: string;
  name?: string;
  subscription: Subscription;
  ask?: 'subscribe';
  groups: string[];
}

export interface Roster {
  /** Roster version (RFC 6121 §2.6): bumped on every change, sent as the `ver` string. */
  version: number;
  items: Record<string, RosterItem>;
}

export const emptyRoster = (): Roster => ({ version: 0, items: {} });

export function itemElement(item: RosterItem | { jid: string; subscription: 'remove' }): Element {
  const attrs: Record<string, string | undefined> = { jid: item.jid, subscription: item.subscription };
  if ('name' in item && item.name) attrs.name = item.name;
  if ('ask' in item && item.ask) attrs.ask = item.ask;
  const el = xml('item', attrs);
  if ('groups' in item) for (const g of item.groups) el.append(xml('group', {}, g));
  return el;
}

export function rosterQuery(roster: Roster): Element {
  const query = xml('query', { xmlns: NS_ROSTER, ver: String(roster.version) });
  for (const item of Object.values(roster.items)) query.append(itemElement(item));
  return query;
}

/** Own-property lookup: `constructor` or `tostring` is a valid domain JID, so plain indexing is not safe. */
function ownItem(items: Record<string, RosterItem>, jid: string): RosterItem | undefined {
  return Object.hasOwn(items, jid) ? items[jid] : undefined;
}

function withItem(items: Record<string, RosterItem>, jid: string, item: RosterItem | undefined): Record<string, RosterItem> {
  const entries = Object.entries(items).filter(([k]) => k !== jid);
  if (item) entries.push([jid, item]);
  return Object.fromEntries(entries);
}

/** The payload of a roster get's result (RFC 6121 §2.1.3): the roster, or none when the client's `ver` is current (§2.6.3). */
export function rosterResult(roster: Roster, clientVer: string | undefined): Element | true {
  return clientVer !== undefined && clientVer === String(roster.version) ? true : rosterQuery(roster);
}

export type RosterChange = { item: RosterItem } | { removed: string };

/**
 * Apply a roster set (RFC 6121 §2.3, §2.5) to a copy of the roster. Throws StanzaError for what §2.3.3 refuses.
 * `owner` is the account's bare JID: it cannot put itself on its roster (as in Prosody).
 */
export function applyRosterSet(roster: Roster, query: Element, owner: string): { roster: Roster; change: RosterChange } {
  const items = query.getChildren('item');
  if (items.length !== 1) throw new StanzaError('bad-request', 'A roster set carries exactly one item.');
  const el = items[0]!;
  const parsed = parseJid(el.attrs.jid ?? '');
  if (!parsed.ok) throw new StanzaError('bad-request', 'The item needs a valid jid.');
  const jid = parsed.jid.full;
  if (parsed.jid.bare === owner && parsed.jid.resource === null) throw new StanzaError('not-allowed', 'Your own JID cannot be on your roster.');
  const version = roster.version + 1;

  if (el.attrs.subscription === 'remove') {
    if (!ownItem(roster.items, jid)) throw new StanzaError('item-not-found');
    return { roster: { version, items: withItem(roster.items, jid, undefined) }, change: { removed: jid } };
  }
  const groups = el.getChildren('group').map((g) => g.getText());
  if (groups.some((g) => g === '' || g.length > MAX_NAME_LENGTH)) throw new StanzaError('not-acceptable', 'Group names are 1 to 1023 characters.');
  if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'A group is listed twice.');
  if (groups.length > MAX_GROUPS) throw new StanzaError('not-acceptable', `At most ${MAX_GROUPS} groups per item.`);
  const name = el.attrs.name;
  if (name !== undefined && name.length > MAX_NAME_LENGTH) throw new StanzaError('not-acceptable', 'The name is too long.');
  const previous = ownItem(roster.items, jid);
  if (!previous && Object.keys(roster.items).length >= MAX_ITEMS) throw new StanzaError('resource-constraint', 'The roster is full.');
  // §2.1.2.5: `subscription` (other than remove) and `ask` from the client are ignored; the server owns them.
  const item: RosterItem = { jid, subscription: previous?.subscription ?? 'none', groups, ...(name ? { name } : {}), ...(previous?.ask ? { ask: previous.ask } : {}) };
  return { roster: { version, items: withItem(roster.items, jid, item) }, change: { item } };
}

export function load(module: ModuleApi): void {
  const store = module.openStore<Roster>('roster');
  /** Resources that asked for the roster: they get pushes (RFC 6121 §2.1.6 "interested resources"). */
  const interested = new WeakSet<ClientSession>();
  /** One change at a time per account, so two sets do not overwrite each other. */
  const locks = new Map<string, Promise<unknown>>();

  const withLock = <T>(user: string, fn: () => Promise<T>): Promise<T> => {
    const previous = locks.get(user) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(user, tail);
    void tail.then(() => {
      if (locks.get(user) === tail) locks.delete(user);
    });
    return run;
  };

  const ownerOf = (origin: StanzaEvent['origin']): string => {
    const parsed = origin.jid ? parseJid(origin.jid) : undefined;
    if (!parsed?.ok || parsed.jid.local === null) throw new StanzaError('forbidden');
    return parsed.jid.bare;
  };

  const read = async (user: string): Promise<Roster> => (await store.get(user)) ?? emptyRoster();

  const onGet = async ({ stanza, origin }: StanzaEvent): Promise<Element | true> => {
    const user = ownerOf(origin);
    const roster = await read(user);
    const session = origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    if (session) interested.add(session);
    return rosterResult(roster, stanza.getChild('query', NS_ROSTER)?.attrs.ver);
  };

  const onSet = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const user = ownerOf(origin);
    const query = stanza.getChild('query', NS_ROSTER)!;
    const { roster, change } = await withLock(user, async () => {
      const applied = applyRosterSet(await read(user), query, user);
      await store.set(user, applied.roster);
      return applied;
    });
    // Result first, then the pushes, as Prosody's mod_roster: the wrapper sends the result in this tick's promise
    // jobs, and next-tick callbacks run only once those are done.
    process.nextTick(() => push(user, roster.version, change));
    return true;
  };

  /** §2.1.6: a roster push to every interested resource of the account, with the new version. */
  const push = (user: string, version: number, change: RosterChange): void => {
    const item = 'removed' in change ? itemElement({ jid: change.removed, subscription: 'remove' }) : itemElement(change.item);
    for (const session of module.sessions.byBare(user)) {
      if (!interested.has(session)) continue;
      const id = `push-${randomBytes(6).toString('base64url')}`;
      session.deliver(xml('iq', { type: 'set', id, to: session.full }, xml('query', { xmlns: NS_ROSTER, ver: String(version) }, item)));
    }
  };

  // The roster went with the account (storage deletes it in the same step); this catches a set that was under way.
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host === module.host) await withLock(jid, () => store.set(jid, undefined));
  });
  module.handleIq('get', NS_ROSTER, 'query', onGet, { to: ['self'] });
  module.handleIq('set', NS_ROSTER, 'query', onSet, { to: ['self'] });
}

export const roster: ModuleDefinition = {
  manifest: { id: 'roster', description: 'Roster storage with versioning (RFC 6121 §2).' },
  load,
};
