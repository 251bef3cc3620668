// Which messages go to the archive and in what form: Prosody mod_mam.lua should_store() and its
// dont_archive_namespaces (chat states), XEP-0313 §5 (business rules), XEP-0334 hints, XEP-0359 stanza-id.

import { cloneStanza, parseJid, type Element, type Stanza } from '../../api.js';

export const NS_SID = 'urn:xmpp:sid:0';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';

/** Whether a message is worth archiving, and why (for the debug log). Prosody's should_store(), rule by rule. */
export function shouldArchive(stanza: Stanza): { archive: boolean; reason: string } {
  const type = stanza.attrs.type ?? 'normal';
  // Ephemeral by definition.
  if (type === 'headline') return { archive: false, reason: 'headline' };
  if (type === 'error') {
    // A bounce to a client's full JID tells its user a message did not arrive; errors to the bare JID (PEP) do not.
    const to = parseJid(stanza.attrs.to ?? '');
    return { archive: to.ok && to.jid.resource !== null, reason: 'bounce' };
  }
  // Rooms archive their own messages (and rooms come later here).
  if (type === 'groupchat') return { archive: false, reason: 'groupchat' };
  if (stanza.getChild('no-store', NS_HINTS) || stanza.getChild('no-permanent-store', NS_HINTS)) return { archive: false, reason: 'hint' };
  if (stanza.getChild('store', NS_HINTS)) return { archive: true, reason: 'hint' };
  if (stanza.getChild('body')) return { archive: true, reason: 'body' };
  if (stanza.getChild('subject')) return { archive: true, reason: 'subject' };
  if (stanza.getChild('encryption', 'urn:xmpp:eme:0')) return { archive: true, reason: 'encrypted' };
  const hasChildIn = (xmlns: string): boolean => stanza.getChildElements().some((c) => c.attrs.xmlns === xmlns);
  // Important enough to ask for a receipt: the request and the receipt both.
  if (hasChildIn('urn:xmpp:receipts')) return { archive: true, reason: 'receipt' };
  if (hasChildIn('urn:xmpp:chat-markers:0')) return { archive: true, reason: 'marker' };
  if (stanza.getChild('x', 'jabber:x:conference') || stanza.getChild('x', 'http://jabber.org/protocol/muc#user')?.getChild('invite')) {
    return { archive: true, reason: 'invite' };
  }
  if (hasChildIn('urn:xmpp:jingle-message:0') || hasChildIn('urn:xmpp:jingle-message:1')) return { archive: true, reason: 'jingle call' };
  return { archive: false, reason: 'default' };
}

/**
 * What the archive keeps: the message without chat states (Prosody's dont_archive_namespaces default) and without
 * stanza-ids naming the account (only the archive may say what its ids are); undefined when nothing would be left.
 * The stanza itself when there is nothing to leave out (most messages: no copy), so the caller only reads it.
 */
export function copyForArchive(stanza: Stanza, account: string): Stanza | undefined {
  const isKept = (c: Element | string): boolean => typeof c === 'string' || (c.attrs.xmlns !== NS_CHATSTATES && !isStanzaIdBy(c, account));
  if (stanza.children.every(isKept)) return stanza.getChildElements().length === 0 ? undefined : stanza;
  const copy = cloneStanza(stanza);
  copy.children = copy.children.filter(isKept);
  return copy.getChildElements().length === 0 ? undefined : copy;
}

function isStanzaIdBy(el: Element, account: string): boolean {
  if (el.name !== 'stanza-id' || el.attrs.xmlns !== NS_SID) return false;
  const by = parseJid(el.attrs.by ?? '');
  // An unparsable `by` cannot be ours; compare normalised JIDs so case games do not slip through.
  return by.ok && by.jid.full === account;
}

/** Whether the stanza carries a stanza-id that claims to be the account's (XEP-0359 §3.1: the server removes those). */
export function hasStanzaIdBy(stanza: Stanza, account: string): boolean {
  return stanza.getChildElements().some((c) => isStanzaIdBy(c, account));
}

/** A copy without the stanza-ids that claim to be the account's. */
export function withoutStanzaIdBy(stanza: Stanza, account: string): Stanza {
  const copy = cloneStanza(stanza);
  copy.children = copy.children.filter((c) => typeof c === 'string' || !isStanzaIdBy(c, account));
  return copy;
}
