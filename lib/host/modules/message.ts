// Message delivery to local accounts (RFC 6121 §8.5) and offline storage in the `offline` archive with XEP-0203
// delay on the next initial presence (XEP-0160). Prosody: core/stanza_router.lua + mod_message.lua + mod_offline.lua.

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
  type Outcome,
  type Stanza,
  type StanzaEvent,
} from '../api.js';
import parse from '@xmpp/xml/lib/parse.js';

const NS_DELAY = 'urn:xmpp:delay';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_HINTS = 'urn:xmpp:hints';

/**
 * Whether an undeliverable message is kept offline: not when it asks not to be (XEP-0334 no-store), nor when
 * it carries only chat states (XEP-0085 §5.5: they are meaningless later).
 */
export function isWorthStoring(stanza: Stanza): boolean {
  if (stanza.getChild('no-store', NS_HINTS) || stanza.getChild('no-permanent-store', NS_HINTS)) return false;
  const payload = stanza.getChildElements().filter((c) => c.attrs.xmlns !== NS_CHATSTATES && c.name !== 'thread');
  return payload.length > 0;
}

/** The type of a message; a missing or unknown type is `normal` (RFC 6121 §5.2.2). */
export function messageType(stanza: Stanza): 'chat' | 'error' | 'groupchat' | 'headline' | 'normal' {
  const type = stanza.attrs.type;
  if (type === 'chat' || type === 'error' || type === 'groupchat' || type === 'headline') return type;
  return 'normal';
}

/**
 * The resources a message to the bare JID goes to (RFC 6121 §8.5.2.1.1): available ones with a non-negative
 * priority; all of them for headlines, else those with the highest priority (Prosody's choice too).
 */
export function selectRecipients(sessions: readonly ClientSession[], type: ReturnType<typeof messageType>): ClientSession[] {
  const eligible = sessions.filter((s) => s.isAvailable && s.priority >= 0);
  if (type === 'headline' || eligible.length === 0) return eligible;
  const top = Math.max(...eligible.map((s) => s.priority));
  return eligible.filter((s) => s.priority === top);
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

export function load(module: ModuleApi): void {
  // An archive, as Prosody's mod_offline keeps it. DIFF: Prosody leaves `with` empty; the sender is kept here.
  const offline: ArchiveStore = module.openArchive('offline');
  /** Accounts whose offline messages are being flushed right now: two resources coming online get them once. */
  const flushing = new Set<string>();

  const deliverToBare = async (stanza: Stanza, bare: string): Promise<Outcome> => {
    const type = messageType(stanza);
    if (!(await module.users.exists(bare))) throw new StanzaError('service-unavailable');
    // §8.5.2.1.1: a groupchat message to a bare JID of an account is an error.
    if (type === 'groupchat') throw new StanzaError('service-unavailable');
    const recipients = selectRecipients(module.sessions.byBare(bare), type);
    if (recipients.length > 0) {
      for (const s of recipients) s.deliver(stanza);
      return 'delivered';
    }
    // §8.5.2.2.1: chat and normal wait offline (XEP-0160); headline and error are dropped.
    if ((type === 'chat' || type === 'normal') && isWorthStoring(stanza)) {
      await offline.append(bare, { with: stanza.attrs.from ?? '', value: serialize(stanza) });
      return 'stored';
    }
    return 'discarded';
  };

  const onBare = async ({ stanza }: StanzaEvent): Promise<Outcome> => {
    const bare = bareOf(stanza.attrs.to ?? '');
    if (!bare) throw new StanzaError('jid-malformed');
    return deliverToBare(stanza, bare);
  };

  const onFull = async ({ stanza }: StanzaEvent): Promise<Outcome> => {
    const to = stanza.attrs.to ?? '';
    const session = module.sessions.byFull(to);
    if (session) {
      session.deliver(stanza);
      return 'delivered';
    }
    const bare = bareOf(to);
    if (!bare || !(await module.users.exists(bare))) throw new StanzaError('service-unavailable');
    // §8.5.3.2.1: no such resource → chat and normal as if sent to the bare JID, the rest silently dropped.
    const type = messageType(stanza);
    if (type === 'chat' || type === 'normal') return deliverToBare(stanza, bare);
    return 'discarded';
  };

  /** XEP-0160: on initial presence, the stored messages go to that resource with a delay, then are deleted. */
  const onResourceAvailable = async ({ session }: { session: ClientSession }): Promise<void> => {
    if (session.host !== module.host || session.priority < 0 || flushing.has(session.bare)) return;
    // A module may keep them back for this session (mam, when it fetched the archive first).
    if ((await module.fireGlobal('message/offline/broadcast', { session })) !== undefined) return;
    flushing.add(session.bare);
    try {
      const { items } = await offline.find(session.bare);
      if (items.length === 0) return;
      for (const item of items) session.deliver(withDelay(parse(item.value), module.host, item.stamp));
      // Only what was delivered: a message stored meanwhile waits for the next login.
      await offline.delete(session.bare, { ids: items.map((i) => i.id) });
      module.log.debug({ jid: session.bare, count: items.length }, 'delivered offline messages');
    } finally {
      flushing.delete(session.bare);
    }
  };

  /**
   * The account's messages left with it (storage deleted them with the account); this catches one stored by a
   * request that checked the account just before it went.
   */
  const onUserDeleted = async ({ jid, host }: { jid: string; host: string }): Promise<void> => {
    if (host === module.host) await offline.delete(jid);
  };

  module.hook('message/bare', onBare);
  module.hook('message/full', onFull);
  module.hookGlobal('resource-available', onResourceAvailable);
  module.hookGlobal('user-deleted', onUserDeleted);
  module.provides('disco_feature', 'msgoffline');
}

export const message: ModuleDefinition = {
  manifest: { id: 'message', description: 'Message delivery to local accounts and offline storage (RFC 6121 §8.5, XEP-0160, XEP-0203).' },
  load,
};
