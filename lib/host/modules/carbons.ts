// Message Carbons (XEP-0280, urn:xmpp:carbons:2): copies of an account's chats to its other carbons-enabled
// resources, wrapped in Stanza Forwarding (XEP-0297). Prosody: plugins/mod_carbons.lua (0.12).

import { cloneStanza, parseJid, xml, type ClientSession, type ModuleApi, type ModuleDefinition, type Stanza, type StanzaEvent } from '../api.js';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_SID = 'urn:xmpp:sid:0';
const NS_CLIENT = 'jabber:client';
const JINGLE_MESSAGE = new Set(['urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1']);

/** Which way a message passes the account: sent by one of its clients (or for it, by a module), or received. */
type Direction = 'sent' | 'received';

function bareOf(jid: string | undefined): string | undefined {
  if (!jid) return undefined;
  const parsed = parseJid(jid);
  return parsed.ok && parsed.jid.local !== null ? parsed.jid.bare : undefined;
}

/**
 * Whether a message is copied (XEP-0280 §6 with Prosody's rules): chat, normal with a body, bounces of messages the
 * account sent to a bare JID, call invitations (XEP-0353) and what the archive stamped for the account; never one
 * marked private (§7) or no-copy (XEP-0334), a MUC private message to the bare JID, or a carbon itself.
 */
export function shouldCopy(stanza: Stanza, direction: Direction, accountBare: string): boolean {
  if (stanza.getChild('private', NS_CARBONS) || stanza.getChild('no-copy', NS_HINTS)) return false;
  // A copy of a copy would tell the other resources nothing new; a forged one must not gain the account's address.
  if (stanza.getChild('sent', NS_CARBONS) || stanza.getChild('received', NS_CARBONS)) return false;
  if (direction === 'received' && stanza.attrs.to === accountBare && stanza.getChild('x', NS_MUC_USER)) return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'chat') return true;
  if (type === 'normal' && stanza.getChild('body')) return true;
  // Chats go to a bare JID; their bounces come back from that bare JID (Prosody's "bounce").
  if (type === 'error' && direction === 'received' && !(stanza.attrs.from ?? '').includes('/')) return true;
  if (stanza.getChildElements().some((c) => JINGLE_MESSAGE.has(c.attrs.xmlns ?? ''))) return true;
  return stanza.getChildren('stanza-id', NS_SID).some((id) => id.attrs.by === accountBare);
}

/** The copy for one resource (XEP-0280 §7.1, §7.2): from the account's bare JID, the original forwarded inside. */
export function carbon(stanza: Stanza, direction: Direction, accountBare: string): Stanza {
  const copy = cloneStanza(stanza);
  copy.attrs.xmlns = NS_CLIENT;
  // A message sent without `to` went to the account itself (RFC 6120 §10.3): say so inside the copy.
  if (direction === 'sent' && !copy.attrs.to) copy.attrs.to = accountBare;
  return xml(
    'message',
    { from: accountBare, type: stanza.attrs.type ?? 'normal' },
    xml(direction, { xmlns: NS_CARBONS }, xml('forwarded', { xmlns: NS_FORWARD }, copy)),
  );
}

/** Remove `<private/>` before delivery: it is for the sender's server (XEP-0280 §7, as Prosody does). */
function stripPrivate(stanza: Stanza): void {
  stanza.children = stanza.children.filter((c) => typeof c === 'string' || c.name !== 'private' || c.attrs.xmlns !== NS_CARBONS);
}

export function load(module: ModuleApi): void {
  /** Resources that enabled carbons; the flag goes with the session. */
  const enabled = new WeakSet<ClientSession>();

  const sessionOf = (event: StanzaEvent): ClientSession | undefined =>
    event.origin.type === 'c2s' && event.origin.jid ? module.sessions.byFull(event.origin.jid) : undefined;

  // §4, §5: enable and disable are iq sets to the account itself, one per resource.
  const toggle = (isOn: boolean) => (event: StanzaEvent): true => {
    const session = sessionOf(event);
    if (session) {
      if (isOn) enabled.add(session);
      else enabled.delete(session);
      module.log.debug({ jid: session.full, isOn }, 'carbons toggled');
    }
    return true;
  };
  module.handleIq('set', NS_CARBONS, 'enable', toggle(true), { to: ['self'] });
  module.handleIq('set', NS_CARBONS, 'disable', toggle(false), { to: ['self'] });

  const copyTo = (sessions: readonly ClientSession[], stanza: Stanza, direction: Direction, bare: string): void => {
    let wrapped: Stanza | undefined;
    for (const session of sessions) {
      wrapped ??= carbon(stanza, direction, bare);
      const copy = cloneStanza(wrapped);
      copy.attrs.to = session.full;
      session.deliver(copy);
    }
  };

  /**
   * A message leaving one of the account's clients, or sent for the account by a module (post_msg: origin `local`,
   * no client of its own): `<sent/>` copies to every other carbons-enabled resource.
   */
  const onOutgoing = (event: StanzaEvent): undefined => {
    const { stanza, origin } = event;
    // The router fires pre-message only for a local account's stanzas, on that account's host.
    const bare = bareOf(origin.jid);
    if (!bare) return undefined;
    const sender = sessionOf(event);
    const targets = module.sessions.byBare(bare).filter((s) => s !== sender && enabled.has(s));
    if (targets.length === 0 || !shouldCopy(stanza, 'sent', bare)) return undefined;
    copyTo(targets, stanza, 'sent', bare);
    return undefined;
  };

  /**
   * A message about to reach a local account: `<received/>` copies to its carbons-enabled resources other than the
   * one it is addressed to, and, for a bare JID, other than those normal routing already gives it to.
   */
  const onIncoming = (event: StanzaEvent): undefined => {
    const { stanza } = event;
    const bare = bareOf(stanza.attrs.to);
    if (!bare) return undefined;
    const sessions = module.sessions.byBare(bare);
    if (sessions.length === 0) return undefined;
    if (!shouldCopy(stanza, 'received', bare)) {
      if (stanza.getChild('private', NS_CARBONS)) stripPrivate(stanza);
      return undefined;
    }
    const target = stanza.attrs.to === bare ? undefined : module.sessions.byFull(stanza.attrs.to ?? '');
    const routed = target ? new Set([target]) : topResources(sessions);
    const targets = sessions.filter((s) => !routed.has(s) && enabled.has(s));
    if (targets.length > 0) copyTo(targets, stanza, 'received', bare);
    return undefined;
  };

  // After whatever may refuse a message (Prosody's -0.5), not claiming it.
  for (const toType of ['host', 'bare', 'full']) module.hook(`pre-message/${toType}`, onOutgoing, -0.5);
  // Before the message module delivers (it claims at priority 0), as Prosody's -0.5 runs before mod_message's -1.
  for (const toType of ['bare', 'full']) module.hook(`message/${toType}`, onIncoming, 0.5);
  module.provides('disco_feature', NS_CARBONS);
}

/**
 * The resources a chat or normal message to the bare JID reaches by routing (RFC 6121 §8.5.2.1.1): available, with
 * the highest non-negative priority. They have the message itself; a copy would be a duplicate.
 */
function topResources(sessions: readonly ClientSession[]): Set<ClientSession> {
  const eligible = sessions.filter((s) => s.isAvailable && s.priority >= 0);
  if (eligible.length === 0) return new Set();
  const top = Math.max(...eligible.map((s) => s.priority));
  return new Set(eligible.filter((s) => s.priority === top));
}

export const carbons: ModuleDefinition = {
  manifest: { id: 'carbons', description: 'Message Carbons (XEP-0280): copies of chats to every carbons-enabled resource of the account.' },
  load,
};
