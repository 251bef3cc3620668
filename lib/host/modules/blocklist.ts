// Blocking Command (XEP-0191): an account keeps a list of JIDs it blocks. Stanzas from them are not delivered
// (errors only where §3.5 asks for them), stanzas to them are refused with not-acceptable and <blocked/>.
// Prosody: plugins/mod_blocklist.lua. Stored in the store `blocklist`: the account's list of JIDs.

import { randomBytes } from 'node:crypto';
import {
  StanzaError,
  errorReply,
  parseJid,
  xml,
  type ClientSession,
  type Element,
  type Jid,
  type ModuleApi,
  type ModuleDefinition,
  type StanzaEvent,
} from '../api.js';
import { keyedLock } from '../util/keyed-lock.js';

const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
/** Lists held in memory for the router's checks; the least recently loaded go first beyond this. */
const CACHE_SIZE = 10_000;

export interface BlocklistOptions {
  max_items: number;
}

/** XEP-0191 §3.5 matches JIDs as XEP-0016 §2.1 does: full JID, bare JID, domain/resource, domain. */
export function isBlockedBy(list: ReadonlySet<string>, jid: Jid): boolean {
  if (list.size === 0) return false;
  return list.has(jid.full) || list.has(jid.bare) || list.has(jid.domain) || (jid.resource !== null && list.has(`${jid.domain}/${jid.resource}`));
}

/**
 * The JIDs of a block or unblock request, normalised and without repeats. Throws StanzaError: more than `max`
 * items (checked before any is parsed), an item without a valid `jid` (jid-malformed).
 */
export function requestJids(el: Element, max: number): string[] {
  const items = el.getChildren('item');
  if (items.length > max) throw new StanzaError('not-acceptable', `A blocklist holds at most ${max} JIDs; this request has ${items.length}.`);
  const jids = new Set<string>();
  for (const item of items) {
    const parsed = parseJid(item.attrs.jid ?? '');
    if (!parsed.ok) throw new StanzaError('jid-malformed', `Not a JID: ${JSON.stringify(String(item.attrs.jid ?? '').slice(0, 100))} (${parsed.error}).`);
    jids.add(parsed.jid.full);
  }
  return [...jids];
}

function bareOf(jid: string | undefined): string | undefined {
  const parsed = jid ? parseJid(jid) : undefined;
  return parsed?.ok && parsed.jid.local !== null ? parsed.jid.bare : undefined;
}

export function load(module: ModuleApi<BlocklistOptions>): void {
  const store = module.openStore<string[]>('blocklist');
  // Contacts and their subscription states, through the roster module: its store is item by item.
  const roster = module.depends('roster');
  const maxItems = module.options.max_items;
  const cache = new Map<string, Set<string>>();
  /** Resources that asked for the list: they get the pushes (§3.3, §3.4). */
  const interested = new WeakSet<ClientSession>();

  const withLock = keyedLock();

  const listOf = async (user: string): Promise<Set<string>> => {
    const cached = cache.get(user);
    if (cached) return cached;
    const list = new Set(await store.get(user));
    // A stanza to any name may load one: bounded, the oldest goes first.
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(user, list);
    return list;
  };

  const save = async (user: string, list: Set<string>): Promise<void> => {
    await store.set(user, list.size > 0 ? [...list] : undefined);
    cache.set(user, list);
  };

  const ownerOf = (origin: StanzaEvent['origin']): string => {
    const owner = bareOf(origin.jid);
    if (!owner) throw new StanzaError('forbidden');
    return owner;
  };

  /** §3.3, §3.4: every resource that asked for the list learns of the change, the one that made it too. */
  const push = (user: string, payload: Element): void => {
    for (const session of module.sessions.byBare(user)) {
      if (!interested.has(session)) continue;
      const id = `push-${randomBytes(6).toString('base64url')}`;
      session.deliver(xml('iq', { type: 'set', id, to: session.full }, payload));
    }
  };

  /** XEP-0191 §3.3.1: contacts allowed to see the account's presence see it go offline once blocked. */
  const sendUnavailableTo = async (user: string, blocked: ReadonlySet<string>): Promise<void> => {
    const items = await roster.items(user);
    const sessions = module.sessions.byBare(user).filter((s) => s.isAvailable);
    if (sessions.length === 0) return;
    for (const item of items) {
      const contact = item?.jid ? parseJid(item.jid) : undefined;
      if (!contact?.ok || (item!.subscription !== 'from' && item!.subscription !== 'both') || !isBlockedBy(blocked, contact.jid)) continue;
      for (const session of sessions) {
        // From the host, so the account's own outgoing check (which now refuses the contact) does not stop it.
        await module.route(xml('presence', { type: 'unavailable', from: session.full, to: contact.jid.full }), { type: 'host', host: module.host });
      }
    }
  };

  const onGet = async ({ origin }: StanzaEvent): Promise<Element> => {
    const user = ownerOf(origin);
    const session = origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    if (session) interested.add(session);
    const list = await listOf(user);
    return xml('blocklist', { xmlns: NS_BLOCKING }, ...[...list].map((jid) => xml('item', { jid })));
  };

  const onBlock = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const user = ownerOf(origin);
    const jids = requestJids(stanza.getChild('block', NS_BLOCKING)!, maxItems);
    if (jids.length === 0) throw new StanzaError('bad-request', 'A block request names at least one JID (XEP-0191 §3.3).');
    if (jids.some((jid) => bareOf(jid) === user)) throw new StanzaError('not-acceptable', 'An account cannot block itself.');
    const added = await withLock(user, async () => {
      const list = new Set(await listOf(user));
      const fresh = jids.filter((jid) => !list.has(jid));
      if (list.size + fresh.length > maxItems) {
        throw new StanzaError('not-acceptable', `A blocklist holds at most ${maxItems} JIDs; it has ${list.size} and this request adds ${fresh.length}.`);
      }
      for (const jid of fresh) list.add(jid);
      await save(user, list);
      return new Set(fresh);
    });
    process.nextTick(() => {
      push(user, xml('block', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid }))));
      sendUnavailableTo(user, added).catch((err: unknown) => module.log.error({ err }, 'telling blocked contacts the account went offline failed'));
    });
    return true;
  };

  const onUnblock = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const user = ownerOf(origin);
    const jids = requestJids(stanza.getChild('unblock', NS_BLOCKING)!, maxItems);
    await withLock(user, async () => {
      // §3.4: no item unblocks every JID.
      const list = jids.length === 0 ? new Set<string>() : new Set(await listOf(user));
      for (const jid of jids) list.delete(jid);
      await save(user, list);
    });
    // DIFF: Prosody also sends the account's current presence to unblocked contacts; here they see it at its next change.
    process.nextTick(() => push(user, xml('unblock', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })))));
    return true;
  };

  /** Stanzas to a local account from a JID it blocks (§3.5): errors for messages and iq requests, silence otherwise. */
  const onIncoming = async ({ stanza, origin }: StanzaEvent): Promise<'discarded' | undefined> => {
    if (origin.type === 'host') return undefined;
    const recipient = bareOf(stanza.attrs.to);
    const from = parseJid(stanza.attrs.from ?? origin.jid ?? '');
    if (!recipient || !from.ok || from.jid.bare === recipient) return undefined;
    if (!isBlockedBy(await listOf(recipient), from.jid)) return undefined;
    const type = stanza.attrs.type;
    if (stanza.name === 'message' && (type === undefined || type === 'normal' || type === 'chat')) throw new StanzaError('service-unavailable');
    if (stanza.name === 'iq' && (type === 'get' || type === 'set')) throw new StanzaError('service-unavailable');
    return 'discarded';
  };

  /** Stanzas from the account to a JID it blocks (§3.6): refused with <blocked/>; presence and replies dropped quietly. */
  const onOutgoing = async ({ stanza, origin }: StanzaEvent): Promise<'discarded' | undefined> => {
    const owner = bareOf(origin.jid);
    const to = stanza.attrs.to ? parseJid(stanza.attrs.to) : undefined;
    if (!owner || !to?.ok || !isBlockedBy(await listOf(owner), to.jid)) return undefined;
    const type = stanza.attrs.type;
    // COMPAT: Prosody drops presence to a blocked JID without an error, as it does errors and iq results.
    if (stanza.name === 'presence' || type === 'error' || (stanza.name === 'iq' && type === 'result')) return 'discarded';
    const err = new StanzaError('not-acceptable', `You have blocked ${to.jid.full}; unblock it to write to it.`);
    if (!origin.send) throw err;
    const answer = errorReply(stanza, err);
    answer.getChild('error')!.c('blocked', { xmlns: NS_BLOCKING_ERRORS });
    origin.send(answer);
    return 'discarded';
  };

  module.handleIq('get', NS_BLOCKING, 'blocklist', onGet, { to: ['self'] });
  module.handleIq('set', NS_BLOCKING, 'block', onBlock, { to: ['self'] });
  module.handleIq('set', NS_BLOCKING, 'unblock', onUnblock, { to: ['self'] });
  // Before the message, presence and iq modules deliver or store anything (Prosody's priorities: 100).
  for (const kind of ['message', 'presence', 'iq']) {
    for (const to of ['bare', 'full']) module.hook(`${kind}/${to}`, onIncoming, 100);
    for (const to of ['bare', 'full', 'host']) module.hook(`pre-${kind}/${to}`, onOutgoing, 100);
  }
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host !== module.host) return;
    await withLock(jid, () => store.set(jid, undefined));
    cache.delete(jid);
  });
  // Another process deleted accounts: their lists are gone from storage, so forget what memory holds.
  module.hookGlobal('users-changed-elsewhere', () => void cache.clear());
  module.provides('disco_feature', NS_BLOCKING);
}

export const blocklist: ModuleDefinition = {
  manifest: {
    id: 'blocklist',
    description: 'Blocking Command (XEP-0191): an account blocks JIDs from writing to it and to them.',
    depends: ['roster'],
    options: {
      max_items: { type: 'integer', default: 1000, min: 1, max: 100000, description: 'JIDs one account\'s blocklist may hold; a block beyond it is refused with not-acceptable.' },
    },
  },
  load,
};
