// Client State Indication (XEP-0352, urn:xmpp:csi:0): while a client says it is inactive, stanzas it need not see
// at once (presence updates, chat states, receipts) are held, in order, until something important comes or the
// client acts. Prosody: plugins/mod_csi.lua (the feature and <active/>/<inactive/>) + plugins/mod_csi_simple.lua.

import { cloneStanza, xml, type ClientSession, type Element, type ModuleApi, type ModuleDefinition, type Stanza } from '../api.js';

export const NS_CSI = 'urn:xmpp:csi:0';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const JINGLE_MESSAGE = new Set(['urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1']);

export interface CsiSimpleOptions {
  csi_queue_size: number;
}

/**
 * Whether a stanza must reach an inactive client now (Prosody's is_important): anything not a stanza, iq, errors,
 * subscription requests, carbons of sent messages, and messages (also inside a received carbon) with a body, a
 * subject, an encrypted payload, an invitation or a call. Presence updates, headlines and the rest (chat states,
 * receipts, markers) can wait.
 */
export function isImportant(stanza: Stanza): boolean {
  const ns = stanza.attrs.xmlns;
  // Stream management, stream errors and other nonzas.
  if (ns !== undefined && ns !== 'jabber:client') return true;
  const type = stanza.attrs.type;
  if (stanza.name === 'presence') return !(type === undefined || type === 'unavailable' || type === 'error');
  if (stanza.name !== 'message') return true;
  if (type === 'headline') return false;
  if (type === 'error') return true;
  if (stanza.getChild('sent', NS_CARBONS)) return true;
  const forwarded = stanza.getChild('received', NS_CARBONS)?.getChild('forwarded', NS_FORWARD)?.getChild('message');
  const message = forwarded ?? stanza;
  if (message.getChild('body') || message.getChild('subject')) return true;
  if (message.getChild('encryption', 'urn:xmpp:eme:0')) return true;
  if (message.getChild('x', 'jabber:x:conference') || message.getChild('x', NS_MUC_USER)?.getChild('invite')) return true;
  return message.getChildElements().some((c) => JINGLE_MESSAGE.has(c.attrs.xmlns ?? ''));
}

/** What a held stanza looks like when it finally leaves: stamped with when it was held (XEP-0203), as Prosody does. */
function stamped(stanza: Stanza, from: string, now: Date): Stanza {
  if (stanza.name === 'iq') return stanza;
  const copy = cloneStanza(stanza);
  copy.append(xml('delay', { xmlns: NS_DELAY, from, stamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z') }));
  return copy;
}

interface CsiState {
  isInactive: boolean;
  held: Stanza[];
}

export function load(module: ModuleApi<CsiSimpleOptions>): void {
  const queueSize = module.options.csi_queue_size;
  const states = new WeakMap<ClientSession, CsiState>();
  /** Held stanzas on their way out: the filter lets them pass the second time. */
  const releasing = new WeakSet<Stanza>();

  const flush = (session: ClientSession, state: CsiState, why: string): void => {
    if (state.held.length === 0) return;
    const held = state.held;
    state.held = [];
    module.log.debug({ jid: session.full, count: held.length, why }, 'csi: flushing held stanzas');
    for (const stanza of held) {
      releasing.add(stanza);
      session.deliver(stanza);
    }
  };

  // XEP-0352 §5: offered once the client authenticated.
  module.hookGlobal('stream-features', ({ session, features }) => {
    if (session.host === module.host && session.bare) features.append(xml('csi', { xmlns: NS_CSI }));
  });

  // §4: the client's state. Nothing is answered; a repeated or early one changes nothing harmful.
  const onState = (isInactive: boolean) => ({ session }: { session: ClientSession; stanza: Element }): true | undefined => {
    if (session.host !== module.host) return undefined;
    let state = states.get(session);
    if (!state) states.set(session, (state = { isInactive, held: [] }));
    state.isInactive = isInactive;
    if (!isInactive) flush(session, state, 'client active');
    return true;
  };
  module.hookGlobal(`stanza/${NS_CSI}:inactive`, onState(true));
  module.hookGlobal(`stanza/${NS_CSI}:active`, onState(false));

  // Outgoing: hold what can wait; something important takes everything held with it, in order. High priority, so
  // that filters after this one (stream management's counting) see a held stanza only when it really leaves.
  module.filter('stanzas/out', (stanza, session) => {
    if (releasing.delete(stanza)) return stanza;
    const state = states.get(session);
    if (!state?.isInactive) return stanza;
    if (isImportant(stanza)) {
      flush(session, state, 'important');
      return stanza;
    }
    if (state.held.length >= queueSize) {
      flush(session, state, 'queue full');
      return stanza;
    }
    state.held.push(stamped(stanza, session.bare, new Date()));
    return undefined;
  }, 1000);

  // Anything the client sends shows it is awake: what was held goes first (Prosody flushes on bytes in).
  module.filter('stanzas/in', (element, session) => {
    const state = states.get(session);
    if (state?.isInactive) flush(session, state, 'client activity');
    return element;
  }, 1000);

  // Unloaded: nothing holds stanzas any more, so what is held leaves now.
  module.onUnload(() => {
    for (const session of module.sessions.all()) {
      const state = states.get(session);
      if (state) flush(session, state, 'unload');
    }
  });
}

export const csiSimple: ModuleDefinition = {
  manifest: {
    id: 'csi_simple',
    description: 'Client State Indication (XEP-0352): holds presence updates and chat states for inactive clients.',
    options: {
      // Prosody's own name: csi_queue_size does not start with csi_simple_, so it keeps its prefix.
      csi_queue_size: {
        type: 'integer',
        default: 256,
        min: 1,
        max: 100000,
        description: 'Stanzas held for an inactive client before they are all sent anyway.',
      },
    },
  },
  load: load as (module: ModuleApi) => void,
};
