// Presence for local accounts (RFC 6121 §4): initial/available presence makes a resource available with its
// priority, unavailable removes it; broadcast to the account's own resources. Prosody: plugins/mod_presence.lua.
// DIFF: no roster-based broadcast to contacts yet (subscriptions, RFC 6121 §3, come later).

import { cloneStanza, parseJid, type ClientSession, type ModuleApi, type ModuleDefinition, type Outcome, type Stanza, type StanzaEvent } from '../api.js';
import { presenceControl } from './presence-state.js';

/** Types of presence that manage subscriptions (RFC 6121 §3); they go to the bare JID even when sent to a full one. */
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

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

/** Deliver a copy of `presence` addressed to `session` (RFC 6121 §4.2.2 broadcasts carry each recipient's JID). */
function deliverTo(session: ClientSession, presence: Stanza): void {
  const copy = cloneStanza(presence);
  copy.attrs.to = session.full;
  session.deliver(copy);
}

export function load(module: ModuleApi): void {
  /** Presence the client sends to its own account (no `to`): its availability (RFC 6121 §4.2, §4.4, §4.5). */
  const onOwnPresence = async ({ stanza, origin }: StanzaEvent): Promise<Outcome> => {
    const session = origin.type === 'c2s' && origin.jid ? module.sessions.byFull(origin.jid) : undefined;
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return 'discarded';
    const isAvailable = type === undefined;
    const control = session && presenceControl(session);
    const wasAvailable = session?.isAvailable ?? false;
    if (control) control.setPresence(isAvailable, isAvailable ? parsePriority(stanza) : 0, isAvailable ? stanza : undefined);

    const bare = bareOf(origin.jid);
    if (!bare) return 'discarded';
    broadcastToOwnResources(bare, stanza, session);
    if (isAvailable && session && !wasAvailable) {
      sendOtherResourcesPresence(bare, session);
      // Offline delivery and others listen for the initial presence (Prosody: "resource-available"-like broadcast).
      await module.fireGlobal('resource-available', { session });
    }
    return 'delivered';
  };

  /** RFC 6121 §4.2.2, §4.4.2, §4.5.2: every available resource of the account learns of the change, the sender too. */
  const broadcastToOwnResources = (bare: string, presence: Stanza, sender: ClientSession | undefined): void => {
    for (const s of module.sessions.byBare(bare)) {
      if (s.isAvailable || s === sender) deliverTo(s, presence);
    }
  };

  /** A resource coming online learns which of the account's other resources are online (as a self-probe would). */
  const sendOtherResourcesPresence = (bare: string, session: ClientSession): void => {
    for (const other of module.sessions.byBare(bare)) {
      if (other === session || !other.isAvailable) continue;
      const last = presenceControl(other)?.lastPresence;
      if (last) deliverTo(session, last);
    }
  };

  /** Presence to another account's bare JID: directed presence or a subscription request (RFC 6121 §4.6, §3.1.3). */
  const onBarePresence = async (event: StanzaEvent): Promise<Outcome | undefined> => {
    const { stanza, origin } = event;
    const to = stanza.attrs.to;
    const sender = bareOf(origin.jid);
    if (!to || (sender !== undefined && bareOf(to) === sender && origin.type === 'c2s')) return onOwnPresence(event);
    const type = stanza.attrs.type;
    // Probes would need the roster's subscription state; errors to an account have no one to go to.
    if (type === 'probe' || type === 'error') return 'discarded';
    if (!(await module.users.exists(bareOf(to) ?? ''))) return 'discarded';
    let isDelivered = false;
    for (const s of module.sessions.byBare(bareOf(to)!)) {
      if (!s.isAvailable || s.priority < 0) continue;
      deliverTo(s, stanza);
      isDelivered = true;
    }
    return isDelivered ? 'delivered' : 'discarded';
  };

  /** Presence to a full JID goes to that resource only; none there → dropped, except subscriptions (§8.5.3.2.2). */
  const onFullPresence = async (event: StanzaEvent): Promise<Outcome | undefined> => {
    const { stanza } = event;
    const session = stanza.attrs.to ? module.sessions.byFull(stanza.attrs.to) : undefined;
    if (session) {
      session.deliver(stanza);
      return 'delivered';
    }
    if (SUBSCRIPTION_TYPES.has(stanza.attrs.type ?? '')) return onBarePresence({ ...event, stanza: withTo(stanza, bareOf(stanza.attrs.to)) });
    return 'discarded';
  };

  module.hook('presence/bare', onBarePresence);
  module.hook('presence/full', onFullPresence);
  // Presence to the server itself carries nothing for us (RFC 6121 §4.6 directed to a host): drop quietly.
  module.hook('presence/host', () => 'discarded');
}

function withTo(stanza: Stanza, to: string | undefined): Stanza {
  if (!to) return stanza;
  const copy = cloneStanza(stanza);
  copy.attrs.to = to;
  return copy;
}

export const presence: ModuleDefinition = {
  manifest: { id: 'presence', description: 'Resource availability and priority from presence (RFC 6121 §4).' },
  load,
};
