// Presence for local accounts (RFC 6121 §3, §4): availability and priority, broadcast to the account's resources and
// to contacts subscribed to it, probes at initial presence, directed presence, and presence subscriptions (requests,
// approvals, cancellations, pre-approval) on the roster's states. Prosody: plugins/mod_presence.lua.

import parse from '@xmpp/xml/lib/parse.js';
import {
  StanzaError,
  cloneStanza,
  errorReply,
  parseJid,
  xml,
  type ClientSession,
  type ContactState,
  type ContactUpdate,
  type ModuleApi,
  type ModuleDefinition,
  type Origin,
  type Outcome,
  type RosterItem,
  type Stanza,
  type StanzaEvent,
  type Subscription,
} from '../api.js';

/** Types of presence that manage subscriptions (RFC 6121 §3); they go to the bare JID even when sent to a full one. */
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);
/** RFC 6121 §3.4: the server offers pre-approval after authentication. */
const NS_PRE_APPROVAL = 'urn:xmpp:features:pre-approval';
/** JIDs one session may have sent directed presence to and will tell it left; more are not remembered. */
const MAX_DIRECTED = 1000;

/** RFC 6121 §4.7.2.3: an integer from -128 to +127; anything else (or nothing) is 0. */
export function parsePriority(presence: Stanza): number {
  const text = presence.getChildText('priority')?.trim();
  if (!text || !/^[+-]?\d{1,3}$/.test(text)) return 0;
  const n = Number(text);
  return n >= -128 && n <= 127 ? n : 0;
}

function bareOf(jid: string | undefined): string | undefined {
  if (!jid) return undefined;
  const parsed = parseJid(jid);
  return parsed.ok ? parsed.jid.bare : undefined;
}

/** Whether a session took a stanza: deliver() says false when it did not (closing, or not reading). */
const isTaken = (result: unknown): boolean => result !== false;

/** Deliver a copy of `presence` addressed to `session` (RFC 6121 §4.2.2 broadcasts carry each recipient's JID). */
function deliverTo(session: ClientSession, presence: Stanza): boolean {
  const copy = cloneStanza(presence);
  copy.attrs.to = session.full;
  return isTaken(session.deliver(copy));
}

const isSubscribedTo = (item: RosterItem | undefined): boolean => item?.subscription === 'to' || item?.subscription === 'both';
const isSubscribedFrom = (item: RosterItem | undefined): boolean => item?.subscription === 'from' || item?.subscription === 'both';

/** The account's item with a subscription direction added or taken away (RFC 6121 Appendix A). */
function withSubscription(item: RosterItem, direction: 'to' | 'from', isOn: boolean): Subscription {
  const to = direction === 'to' ? isOn : isSubscribedTo(item);
  const from = direction === 'from' ? isOn : isSubscribedFrom(item);
  return to && from ? 'both' : to ? 'to' : from ? 'from' : 'none';
}

function without<K extends 'ask' | 'approved'>(item: RosterItem, key: K): RosterItem {
  const copy = { ...item };
  delete copy[key];
  return copy;
}

const newItem = (jid: string): RosterItem => ({ jid, subscription: 'none', groups: [] });

export function load(module: ModuleApi): void {
  const roster = module.depends('roster');
  const hostOrigin: Origin = { type: 'host', host: module.host };
  /** Stanzas this module routes on a session's behalf: its own pre-presence hooks let them through. */
  const passing = new WeakSet<Stanza>();
  /** Where each session sent directed presence (RFC 6121 §4.6): told when it goes unavailable. */
  const directed = new WeakMap<ClientSession, Set<string>>();
  /** Available sessions by full JID: the final unavailable of a closed stream arrives after it left the registry. */
  const available = new Map<string, ClientSession>();

  /** Route as the server (answers, the contact's side of a subscription): no pre-events; failures only logged. */
  const routeAsServer = async (stanza: Stanza): Promise<void> => {
    try {
      await module.route(stanza, hostOrigin);
    } catch (err) {
      module.log.debug({ err, type: stanza.attrs.type, to: stanza.attrs.to }, 'presence not routed');
    }
  };

  /** Route on the account's behalf: blocklist and others see it in pre-presence; errors go back to the client. */
  const routeAsAccount = async (stanza: Stanza, origin: Origin): Promise<void> => {
    passing.add(stanza);
    await module.route(stanza, origin);
  };

  const availableSessions = (bare: string): ClientSession[] => module.sessions.byBare(bare).filter((s) => s.isAvailable);

  // --- the account's own presence (RFC 6121 §4.2, §4.4, §4.5) -------------------------------------------

  const onOwnPresence = async ({ stanza, origin }: StanzaEvent): Promise<Outcome> => {
    const full = origin.jid;
    const bare = bareOf(full);
    const type = stanza.attrs.type;
    if (!full || !bare || (type !== undefined && type !== 'unavailable')) return 'discarded';
    const live = module.sessions.byFull(full);
    // A closed stream's final unavailable (session.ts) comes once it left the registry, maybe after a new stream
    // bound the same resource: the session remembered as available is the one going.
    const remembered = available.get(full);
    const isFinal = type === 'unavailable' && remembered !== undefined && remembered !== live;
    const session = isFinal ? remembered : live;
    const isAvailable = type === undefined;
    const wasAvailable = isFinal || (session?.isAvailable ?? false);
    if (!isFinal && live) live.setPresence?.(isAvailable, isAvailable ? parsePriority(stanza) : 0, isAvailable ? stanza : undefined);
    if (session && isAvailable) available.set(full, session);
    else if (available.get(full) === session) available.delete(full);

    broadcastToOwnResources(bare, stanza, isFinal ? undefined : live);
    if (isAvailable) {
      await broadcastToContacts(bare, stanza, origin);
      if (live && !wasAvailable) await onInitialPresence(bare, live, origin);
      return 'delivered';
    }
    if (wasAvailable) {
      const told = await broadcastToContacts(bare, stanza, origin);
      // §4.6.3: whoever got directed presence learns the resource left.
      for (const jid of (session && directed.get(session)) ?? []) {
        if (told.has(bareOf(jid) ?? jid)) continue;
        const copy = cloneStanza(stanza);
        copy.attrs.to = jid;
        await routeAsAccount(copy, origin).catch(() => undefined);
      }
    }
    if (session) directed.delete(session);
    return 'delivered';
  };

  /** RFC 6121 §4.2.2, §4.4.2, §4.5.2: every available resource of the account learns of the change, the sender too. */
  const broadcastToOwnResources = (bare: string, presence: Stanza, sender: ClientSession | undefined): void => {
    for (const s of module.sessions.byBare(bare)) {
      if (s.isAvailable || s === sender) deliverTo(s, presence);
    }
  };

  /** §4.2.2, §4.4.2, §4.5.2: contacts with a subscription from the account get its presence; resolves to who was told. */
  const broadcastToContacts = async (bare: string, presence: Stanza, origin: Origin): Promise<Set<string>> => {
    const told = new Set<string>();
    for (const item of await roster.items(bare)) {
      if (!isSubscribedFrom(item)) continue;
      const copy = cloneStanza(presence);
      copy.attrs.from = origin.jid ?? bare;
      copy.attrs.to = item.jid;
      told.add(item.jid);
      await routeAsAccount(copy, origin).catch((err: unknown) => module.log.debug({ err }, 'presence broadcast not routed'));
    }
    return told;
  };

  /**
   * Initial presence (§4.2): probes to the contacts the account is subscribed to (§4.3.1), the presence of its other
   * resources, subscription requests still waiting for an answer (kept whole), its own unanswered requests again
   * (Prosody resends them, for a contact whose server missed one), then offline messages and the like.
   */
  const onInitialPresence = async (bare: string, session: ClientSession, origin: Origin): Promise<void> => {
    const items = await roster.items(bare);
    for (const item of items) {
      if (isSubscribedTo(item)) await routeAsAccount(xml('presence', { type: 'probe', from: session.full, to: item.jid }), origin).catch(() => undefined);
    }
    for (const other of module.sessions.byBare(bare)) {
      if (other === session || !other.isAvailable) continue;
      const last = other.lastPresence;
      if (last) deliverTo(session, last);
    }
    for (const request of await roster.pendingRequests(bare)) {
      const stanza = parseStored(request.stanza);
      if (!stanza) continue;
      stanza.attrs.from = request.from;
      deliverTo(session, stanza);
    }
    for (const item of items) {
      if (item.ask) await routeAsAccount(xml('presence', { type: 'subscribe', from: bare, to: item.jid }), origin).catch(() => undefined);
    }
    // Offline delivery and others listen for the initial presence (Prosody: "resource-available"-like broadcast).
    await module.fireGlobal('resource-available', { session });
  };

  const parseStored = (text: string): Stanza | undefined => {
    try {
      return parse(text) as Stanza;
    } catch (err) {
      module.log.warn({ err }, 'a stored subscription request could not be read');
      return undefined;
    }
  };

  // --- outbound: what the account's clients send (pre-presence) -------------------------------------------

  const onOutbound = async (event: StanzaEvent): Promise<Outcome | undefined> => {
    const { stanza, origin } = event;
    if (passing.has(stanza)) return undefined;
    const from = bareOf(origin.jid);
    if (!from) return undefined;
    const type = stanza.attrs.type;
    const toBare = bareOf(stanza.attrs.to);
    if (!stanza.attrs.to || (toBare === from && (type === undefined || type === 'unavailable'))) return onOwnPresence(event);
    if (!toBare) return undefined;
    if (type === undefined || type === 'unavailable') {
      rememberDirected(origin, stanza.attrs.to, type === undefined);
      return undefined;
    }
    if (!SUBSCRIPTION_TYPES.has(type)) return undefined;
    // No subscription to oneself (Prosody ignores it too).
    if (toBare === from) return 'discarded';
    try {
      return await outboundSubscription(stanza, origin, from, toBare, type);
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      // The roster is full: the request is refused, with the limit named, and not sent on.
      origin.send?.(errorReply(stanza, err));
      return 'discarded';
    }
  };

  const rememberDirected = (origin: Origin, to: string, isAvailable: boolean): void => {
    const session = origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    if (!session) return;
    let set = directed.get(session);
    if (!isAvailable) {
      set?.delete(to);
      return;
    }
    if (!set) directed.set(session, (set = new Set()));
    if (set.size < MAX_DIRECTED) set.add(to);
  };

  /** RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2: the account's side of a subscription step, then routed on. */
  const outboundSubscription = async (stanza: Stanza, origin: Origin, from: string, toBare: string, type: string): Promise<Outcome> => {
    // §3.1.2: the request leaves from the bare JID, to the bare JID.
    stanza.attrs.from = from;
    stanza.attrs.to = toBare;
    switch (type) {
      case 'subscribe': {
        await roster.update(from, toBare, ({ item }) =>
          item && (item.ask || isSubscribedTo(item)) ? undefined : { item: { ...(item ?? newItem(toBare)), ask: 'subscribe' } },
        );
        await routeAsAccount(stanza, origin);
        return 'delivered';
      }
      case 'unsubscribe': {
        await roster.update(from, toBare, ({ item }) =>
          item && (item.ask || isSubscribedTo(item)) ? { item: { ...without(item, 'ask'), subscription: withSubscription(item, 'to', false) } } : undefined,
        );
        await routeAsAccount(stanza, origin);
        return 'delivered';
      }
      case 'subscribed': {
        const { before } = await roster.update(from, toBare, ({ item, pending }): ContactUpdate | undefined => {
          if (isSubscribedFrom(item)) return undefined;
          // §3.4.2: no request waiting: a pre-approval, kept on the item and not sent.
          if (!pending) return item?.approved ? undefined : { item: { ...(item ?? newItem(toBare)), approved: true } };
          const base = without(item ?? newItem(toBare), 'approved');
          return { item: { ...base, subscription: withSubscription(base, 'from', true) }, pending: null };
        });
        if (isSubscribedFrom(before.item) || !before.pending) return 'delivered';
        await routeAsAccount(stanza, origin);
        // §3.1.5: the contact now sees the account's presence.
        await sendAvailablePresence(from, toBare);
        return 'delivered';
      }
      case 'unsubscribed': {
        const { before } = await roster.update(from, toBare, ({ item, pending }): ContactUpdate | undefined => {
          const update: ContactUpdate = {};
          if (pending) update.pending = null;
          if (item && (isSubscribedFrom(item) || item.approved)) update.item = { ...without(item, 'approved'), subscription: withSubscription(item, 'from', false) };
          return update;
        });
        await routeAsAccount(stanza, origin);
        // §3.2.2: the contact sees the account go offline.
        if (isSubscribedFrom(before.item)) await sendAvailablePresence(from, toBare, 'unavailable');
        return 'delivered';
      }
    }
    return 'discarded';
  };

  /** Each available resource's last presence (or unavailable) to `to`; resolves to how many resources there were. */
  const sendAvailablePresence = async (bare: string, to: string, type?: 'unavailable'): Promise<number> => {
    const sessions = availableSessions(bare);
    for (const s of sessions) {
      const last = s.lastPresence;
      const copy = type || !last ? xml('presence', { type }) : cloneStanza(last);
      copy.attrs.from = s.full;
      copy.attrs.to = to;
      await routeAsServer(copy);
    }
    return sessions.length;
  };

  // --- inbound: presence for an account of this host (presence/bare, presence/full) ------------------------

  const onInbound = async (event: StanzaEvent): Promise<Outcome | undefined> => {
    const { stanza, origin } = event;
    const to = stanza.attrs.to;
    const toBare = bareOf(to);
    if (!to || !toBare) return 'discarded';
    const fromBare = bareOf(stanza.attrs.from);
    // Presence a client sends to its own bare JID is its own presence (when it came without the pre-event).
    if (fromBare === toBare && origin.type === 'c2s' && (stanza.attrs.type === undefined || stanza.attrs.type === 'unavailable')) return onOwnPresence(event);
    const type = stanza.attrs.type;
    if (type === undefined || type === 'unavailable' || type === 'error') return deliverPresence(stanza, to, toBare);
    if (!fromBare || fromBare === toBare) return 'discarded';
    if (type !== 'probe' && !SUBSCRIPTION_TYPES.has(type)) return 'discarded';
    if (!(await module.users.exists(toBare))) {
      // RFC 6121 §8.5.1 / §4.3.2: no such account; the asker learns it is not subscribed.
      if (type === 'subscribe' || type === 'probe') await routeAsServer(xml('presence', { type: 'unsubscribed', from: toBare, to: fromBare }));
      return 'discarded';
    }
    return inboundSubscription(stanza, toBare, fromBare, type);
  };

  /** Available and unavailable presence (and errors) for an account: to every available resource, or the one addressed. */
  const deliverPresence = (stanza: Stanza, to: string, toBare: string): Outcome => {
    if (to !== toBare) {
      const session = module.sessions.byFull(to);
      return session && isTaken(session.deliver(stanza)) ? 'delivered' : 'discarded';
    }
    if (stanza.attrs.type === 'error') return 'discarded';
    let isDelivered = false;
    for (const s of availableSessions(toBare)) if (deliverTo(s, stanza)) isDelivered = true;
    return isDelivered ? 'delivered' : 'discarded';
  };

  /** Deliver a subscription stanza to the account's interested resources (§3.1.6, §3.2.3, §3.3.3). */
  const toInterested = (bare: string, stanza: Stanza): void => {
    for (const s of module.sessions.byBare(bare)) if (roster.isInterested(s)) deliverTo(s, stanza);
  };

  /** RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3, §4.3.2: the contact's side, for `user` of this host. */
  const inboundSubscription = async (stanza: Stanza, user: string, contact: string, type: string): Promise<Outcome> => {
    const prober = stanza.attrs.from!;
    stanza.attrs.from = contact;
    stanza.attrs.to = user;
    switch (type) {
      case 'probe': {
        const { item } = await roster.contact(user, contact);
        if (!isSubscribedFrom(item)) {
          await routeAsServer(xml('presence', { type: 'unsubscribed', from: user, to: contact }));
          return 'delivered';
        }
        // Answered to the resource that probed; none available: unavailable from the bare JID.
        if ((await sendAvailablePresence(user, prober)) === 0) await routeAsServer(xml('presence', { type: 'unavailable', from: user, to: prober }));
        return 'delivered';
      }
      case 'subscribe':
        return inboundRequest(stanza, user, contact);
      case 'subscribed': {
        const { pushed } = await roster.update(user, contact, ({ item }) =>
          item?.ask ? { item: { ...without(item, 'ask'), subscription: withSubscription(item, 'to', true) } } : undefined,
        );
        if (pushed) toInterested(user, stanza);
        return 'delivered';
      }
      case 'unsubscribed': {
        const { pushed } = await roster.update(user, contact, ({ item }) =>
          item && (item.ask || isSubscribedTo(item)) ? { item: { ...without(item, 'ask'), subscription: withSubscription(item, 'to', false) } } : undefined,
        );
        if (pushed) toInterested(user, stanza);
        return 'delivered';
      }
      case 'unsubscribe': {
        const { before } = await roster.update(user, contact, ({ item, pending }): ContactUpdate | undefined => {
          const update: ContactUpdate = {};
          if (pending) update.pending = null;
          if (isSubscribedFrom(item)) update.item = { ...item!, subscription: withSubscription(item!, 'from', false) };
          return update;
        });
        if (isSubscribedFrom(before.item)) {
          toInterested(user, stanza);
          // §3.3.3: the contact that stopped its subscription sees the account go offline.
          await sendAvailablePresence(user, contact, 'unavailable');
        }
        return 'delivered';
      }
    }
    return 'discarded';
  };

  /** §3.1.3: a subscription request for `user`: answered at once when already approved, else kept and delivered. */
  const inboundRequest = async (stanza: Stanza, user: string, contact: string): Promise<Outcome> => {
    let result: { before: ContactState; after: ContactState };
    try {
      result = await roster.update(user, contact, ({ item, pending }): ContactUpdate | undefined => {
        if (isSubscribedFrom(item)) return undefined;
        if (item?.approved) return { item: { ...without(item, 'approved'), subscription: withSubscription(item, 'from', true) } };
        // A request already waiting is not delivered again (Prosody); the first one is kept.
        return pending ? undefined : { pending: { from: contact, stanza: stanza.toString() } };
      });
    } catch (err) {
      // Too many requests waiting: this one is dropped, not answered (RFC 6121 §3.1.3 lets the server keep none).
      if (!(err instanceof StanzaError)) throw err;
      module.log.info({ user }, 'subscription request dropped: too many waiting');
      return 'discarded';
    }
    const { before, after } = result;
    if (isSubscribedFrom(before.item) || (before.item?.approved && isSubscribedFrom(after.item))) {
      // Already subscribed, or pre-approved (§3.4.2): approved at once, and the contact gets the presence.
      await routeAsServer(xml('presence', { type: 'subscribed', from: user, to: contact }));
      await sendAvailablePresence(user, contact);
      return 'delivered';
    }
    if (before.pending || !after.pending) return 'discarded';
    let isDelivered = false;
    for (const s of availableSessions(user)) if (deliverTo(s, stanza)) isDelivered = true;
    return isDelivered ? 'delivered' : 'stored';
  };

  /** Presence to a full JID: that resource, and subscription stanzas to the account (§8.5.3.2.2). */
  const onFull = (event: StanzaEvent): Promise<Outcome | undefined> => onInbound(event);

  module.hook('pre-presence/bare', onOutbound);
  module.hook('pre-presence/full', onOutbound);
  module.hook('presence/bare', onInbound);
  module.hook('presence/full', onFull);
  // Presence to the server itself carries nothing for us (RFC 6121 §4.6 directed to a host): drop quietly.
  module.hook('presence/host', () => 'discarded');

  // §3.4: pre-approval is offered once the stream is authenticated.
  module.hookGlobal('stream-features', ({ session, features }) => {
    if (session.host === module.host && session.bare) features.append(xml('sub', { xmlns: NS_PRE_APPROVAL }));
  });
}

export const presence: ModuleDefinition = {
  manifest: {
    id: 'presence',
    description: 'Presence (RFC 6121 §4) and presence subscriptions (§3, with pre-approval): broadcasts, probes, directed presence.',
    depends: ['roster'],
  },
  load,
};
