// Stream management (XEP-0198 v3, urn:xmpp:sm:3) for client streams: acknowledgements, hibernation and resumption.
// Prosody: plugins/mod_smacks.lua (0.12, in its default config). What the client never acknowledged is handed on
// when its session ends: it is never dropped.

import { randomBytes } from 'node:crypto';
import { cloneStanza, serialize, xml, type ArchiveStore, type ClientSession, type Element, type ModuleApi, type ModuleDefinition, type Stanza } from '../api.js';
import { NS_SM, WRAP, newlyAcked, parseH, wireH as wire } from '../util/sm-count.js';

export { NS_SM, newlyAcked, parseH };
const NS_CLIENT = 'jabber:client';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_MAM = 'urn:xmpp:mam:2';
const STANZA_KINDS = new Set(['message', 'presence', 'iq']);
/** Resumption tokens of ended sessions remembered, to answer a late <resume/> with the last h (Prosody keeps some too). */
const OLD_SESSIONS_KEPT = 10_000;

export interface SmacksOptions {
  hibernation_time: number;
  max_queue_size: number;
  max_unacked_stanzas: number;
  max_ack_delay: number;
}

/** A stanza (not a nonza) of the client namespace: what h counts. */
export function isCountedStanza(el: Element): boolean {
  const ns = el.attrs.xmlns;
  return (ns === undefined || ns === NS_CLIENT) && STANZA_KINDS.has(el.name);
}

/** A message worth keeping for the account's next session: chat or normal with a payload, no hint against it (XEP-0334). */
export function isWorthKeeping(stanza: Stanza): boolean {
  if (stanza.name !== 'message' || !isCountedStanza(stanza)) return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  if (stanza.getChild('no-store', NS_HINTS) || stanza.getChild('no-permanent-store', NS_HINTS)) return false;
  // Carbons copy what another resource got; archive results are fetched again by whoever asked.
  if (stanza.getChild('received', NS_CARBONS) || stanza.getChild('sent', NS_CARBONS) || stanza.getChild('result', NS_MAM)) return false;
  return stanza.getChildElements().some((c) => c.attrs.xmlns !== NS_CHATSTATES && c.name !== 'thread' && c.name !== 'delay');
}

const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

interface Queued {
  stanza: Stanza;
  at: Date;
}

interface Waiter {
  target: number;
  resolve: (isAcked: boolean) => void;
}

/** One session's stream management (Prosody keeps these fields on the session). */
class SmState {
  token: string | undefined;
  /** Stanzas handled from the client (inbound h), a running total. */
  handled = 0;
  /** Stanzas the client acknowledged, a running total; `acked + queue.length` is what we sent. */
  acked = 0;
  readonly queue: Queued[] = [];
  readonly waiters: Waiter[] = [];
  isAwaitingAck = false;
  /** The total an <r/> last asked about: no second <r/> until more was sent (Prosody's last_requested_h). */
  lastRequested = -1;
  requestTimer: NodeJS.Immediate | undefined;
  ackTimer: NodeJS.Timeout | undefined;
  hibernationTimer: NodeJS.Timeout | undefined;
  isEnded = false;

  constructor(readonly session: ClientSession) {}

  get sent(): number {
    return this.acked + this.queue.length;
  }

  clearTimers(): void {
    if (this.requestTimer) clearImmediate(this.requestTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.hibernationTimer) clearTimeout(this.hibernationTimer);
    this.requestTimer = this.ackTimer = this.hibernationTimer = undefined;
  }

  whenAcked(): Promise<boolean> {
    const target = this.sent;
    if (this.acked >= target) return Promise.resolve(true);
    if (this.isEnded) return Promise.resolve(false);
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }

  /** Settle the waiters the acknowledgements reached; at the end, the rest learn their stanzas were not. */
  settle(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.target <= this.acked) this.waiters.shift()!.resolve(true);
    if (this.isEnded) for (const w of this.waiters.splice(0)) w.resolve(false);
  }
}

export function load(module: ModuleApi<SmacksOptions>): void {
  const opts = module.options;
  const states = new WeakMap<ClientSession, SmState>();
  const live = new Set<SmState>();
  const resumable = new Map<string, SmState>();
  /** Ended sessions' tokens: the account and the last h, for <failed h/> (XEP-0198 §5). */
  const old = new Map<string, { bare: string; h: number }>();
  /** Which sessions a message object left through: handing on skips those, and knows when another device got it. */
  const leftThrough = new WeakMap<Stanza, ClientSession[]>();
  /** Clones being resent at resumption: the queue already holds them. */
  const resending = new WeakSet<Stanza>();
  let offline: ArchiveStore | undefined;

  const send = (session: ClientSession, name: string, attrs: Record<string, string | undefined> = {}, ...children: Element[]): void => {
    session.deliver(xml(name, { xmlns: NS_SM, ...attrs }, ...children));
  };
  const failed = (session: ClientSession, condition: string, h?: number): true => {
    send(session, 'failed', { h: h === undefined ? undefined : wire(h) }, xml(condition, { xmlns: NS_STANZAS }));
    return true;
  };

  const requestAck = (state: SmState): void => {
    state.requestTimer = undefined;
    if (state.isEnded || state.session.isHibernating || state.isAwaitingAck || state.sent === state.lastRequested) return;
    if (state.queue.length <= opts.max_unacked_stanzas) return;
    state.isAwaitingAck = true;
    state.lastRequested = state.sent;
    send(state.session, 'r');
    // DIFF: Prosody only fires smacks-ack-delayed; here a link silent that long is taken for dead, so the session
    // hibernates (and can be resumed) instead of holding the stanzas on a connection nothing crosses.
    state.ackTimer ??= setTimeout(() => {
      state.ackTimer = undefined;
      if (!state.isAwaitingAck || state.isEnded) return;
      module.log.info({ jid: state.session.full, unacked: state.queue.length }, 'smacks: no acknowledgement in time; dropping the connection');
      state.session.dropConnection?.();
    }, opts.max_ack_delay * 1000);
    state.ackTimer.unref();
  };
  /** After the turn, so a burst of stanzas is asked about once. */
  const scheduleRequest = (state: SmState): void => {
    state.requestTimer ??= setImmediate(() => requestAck(state));
  };

  /** <a h/>: drop what it acknowledges; more than was sent is a stream error (§4). */
  const onAck = (state: SmState, h: number): boolean => {
    const count = newlyAcked(state.acked, h);
    if (count > state.queue.length) {
      const sent = state.sent % WRAP;
      state.session.close(
        'undefined-condition',
        `You acknowledged ${h} stanzas, but I only sent you ${sent} so far.`,
        xml('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': String(sent) }),
      );
      return false;
    }
    state.queue.splice(0, count);
    state.acked += count;
    state.isAwaitingAck = false;
    if (state.ackTimer) clearTimeout(state.ackTimer);
    state.ackTimer = undefined;
    state.settle();
    if (state.queue.length > 0) scheduleRequest(state);
    return true;
  };

  /** Resent after resumption: a copy stamped with when it was first sent (XEP-0203), as Prosody's queue keeps them. */
  const delayed = (entry: Queued, from: string): Stanza => {
    const copy = cloneStanza(entry.stanza);
    if (copy.name !== 'iq' && !copy.getChild('delay', NS_DELAY)) copy.append(xml('delay', { xmlns: NS_DELAY, from, stamp: stamp(entry.at) }));
    return copy;
  };

  /**
   * The session ended unresumed. Its waiters learn what was not acknowledged (message delivery keeps those it routed
   * only here in offline storage); each unacknowledged message also goes to the account's other available resources
   * that did not get it, and one another device did get is stored offline too, so the next session has it.
   * COMPAT: Prosody 0.12 stores such messages only when no other resource is online, and loses them otherwise.
   */
  const handOn = (state: SmState): void => {
    const session = state.session;
    const unacked = state.queue.splice(0);
    state.isEnded = true;
    state.settle();
    if (unacked.length === 0) return;
    const bare = session.bare;
    const others = module.sessions.byBare(bare).filter((s) => s !== session && s.isAvailable && s.priority >= 0);
    const toStore: Queued[] = [];
    for (const entry of unacked) {
      if (!isWorthKeeping(entry.stanza)) continue;
      const through = leftThrough.get(entry.stanza) ?? [];
      if (through.some((s) => s !== session)) toStore.push(entry);
      for (const other of others) if (!through.includes(other)) other.deliver(delayed(entry, bare));
    }
    module.log.info({ jid: session.full, unacked: unacked.length, redelivered: others.length, stored: toStore.length }, 'smacks: session ended with unacknowledged stanzas');
    if (toStore.length === 0) return;
    offline ??= module.openArchive('offline');
    const archive = offline;
    void (async () => {
      for (const entry of toStore) await archive.append(bare, { with: entry.stanza.attrs.from ?? '', value: serialize(entry.stanza) });
    })().catch((err: unknown) => module.log.error({ err, jid: bare }, 'smacks: could not store unacknowledged messages'));
  };

  const end = (state: SmState): void => {
    if (state.isEnded) return;
    state.clearTimers();
    live.delete(state);
    if (state.token) {
      resumable.delete(state.token);
      old.set(state.token, { bare: state.session.bare, h: state.handled });
      if (old.size > OLD_SESSIONS_KEPT) old.delete(old.keys().next().value!);
    }
    handOn(state);
  };

  const manage = (state: SmState): void => {
    state.session.manage!({
      whenAcked: () => state.whenAcked(),
      connectionLost: () => {
        if (!state.token || state.isEnded) return false;
        state.isAwaitingAck = false;
        if (state.ackTimer) clearTimeout(state.ackTimer);
        state.ackTimer = undefined;
        state.hibernationTimer = setTimeout(() => {
          module.log.info({ jid: state.session.full }, 'smacks: hibernated too long; ending the session');
          state.session.close();
        }, opts.hibernation_time * 1000);
        state.hibernationTimer.unref();
        module.log.debug({ jid: state.session.full, unacked: state.queue.length }, 'smacks: hibernating');
        return true;
      },
      ended: () => end(state),
    });
  };

  // §3: offered once the client authenticated, on transports that can take part.
  module.hookGlobal('stream-features', ({ session, features }) => {
    if (session.host === module.host && session.bare && session.manage) features.append(xml('sm', { xmlns: NS_SM }));
  });

  // §3: <enable/>, after resource binding.
  module.hookGlobal(`stanza/${NS_SM}:enable`, ({ session, stanza }) => {
    if (session.host !== module.host) return undefined;
    if (states.has(session) || !session.full) return failed(session, 'unexpected-request');
    if (!session.manage) return failed(session, 'service-unavailable');
    const state = new SmState(session);
    states.set(session, state);
    live.add(state);
    manage(state);
    const wantsResume = stanza.attrs.resume === 'true' || stanza.attrs.resume === '1';
    if (wantsResume) {
      state.token = randomBytes(18).toString('base64url');
      resumable.set(state.token, state);
    }
    send(session, 'enabled', wantsResume ? { id: state.token, resume: 'true', max: String(Math.ceil(opts.hibernation_time)) } : {});
    return true;
  });

  // §4: the client asks how much we handled.
  module.hookGlobal(`stanza/${NS_SM}:r`, ({ session }) => {
    const state = session.host === module.host ? states.get(session) : undefined;
    if (!state) return undefined;
    send(session, 'a', { h: wire(state.handled) });
    scheduleRequest(state);
    return true;
  });

  module.hookGlobal(`stanza/${NS_SM}:a`, ({ session, stanza }) => {
    const state = session.host === module.host ? states.get(session) : undefined;
    if (!state) return undefined;
    const h = parseH(stanza.attrs.h);
    if (h === undefined) {
      session.close('invalid-xml', "Missing or invalid 'h' attribute.");
      return true;
    }
    onAck(state, h);
    return true;
  });

  // §5: <resume/> on a new stream of the same account, after authentication and before binding.
  module.hookGlobal(`stanza/${NS_SM}:resume`, ({ session, stanza }) => {
    if (session.host !== module.host) return undefined;
    if (session.full || states.has(session)) return failed(session, 'unexpected-request');
    const previd = stanza.attrs.previd ?? '';
    const h = parseH(stanza.attrs.h);
    if (h === undefined) return failed(session, 'bad-request');
    const state = resumable.get(previd);
    if (!state || state.session.bare !== session.bare) {
      const gone = old.get(previd);
      return failed(session, 'item-not-found', gone?.bare === session.bare ? gone.h : undefined);
    }
    if (newlyAcked(state.acked, h) > state.queue.length) {
      send(session, 'failed', { h: wire(state.handled) }, xml('undefined-condition', { xmlns: NS_STANZAS }), xml('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': wire(state.sent) }));
      return true;
    }
    const target = state.session;
    if (!target.resume?.(session)) return failed(session, 'item-not-found');
    if (state.hibernationTimer) clearTimeout(state.hibernationTimer);
    state.hibernationTimer = undefined;
    state.isAwaitingAck = false;
    state.lastRequested = -1;
    onAck(state, h);
    send(target, 'resumed', { h: wire(state.handled), previd });
    // Once each, in order; the queue keeps them until acknowledged.
    for (const entry of state.queue) {
      const copy = delayed(entry, target.bare);
      resending.add(copy);
      target.deliver(copy);
    }
    module.log.info({ jid: target.full, resent: state.queue.length }, 'smacks: session resumed');
    scheduleRequest(state);
    return true;
  });

  // Inbound h: stanzas handled (§4), never nonzas.
  module.filter(
    'stanzas/in',
    (el, session) => {
      const state = states.get(session);
      if (state && isCountedStanza(el)) state.handled++;
      return el;
    },
    -1000,
  );

  // Outbound: last of the filters (csi_simple's holding runs before), so a stanza is counted when it really leaves.
  module.filter(
    'stanzas/out',
    (stanza, session) => {
      if (!isCountedStanza(stanza)) return stanza;
      if (stanza.name === 'message') {
        const through = leftThrough.get(stanza);
        if (through) through.push(session);
        else leftThrough.set(stanza, [session]);
      }
      const state = states.get(session);
      if (!state || state.isEnded || resending.delete(stanza)) return stanza;
      state.queue.push({ stanza, at: new Date() });
      if (state.queue.length > opts.max_queue_size) {
        // DIFF: Prosody's queue overwrites its oldest entry and the session can no longer be resumed; here the stream
        // ends and everything queued is handed on, so nothing is lost.
        module.log.warn({ jid: session.full, max: opts.max_queue_size }, 'smacks: too many unacknowledged stanzas; ending the stream');
        queueMicrotask(() => session.close('policy-violation', 'Too many unacknowledged stanzas.'));
        return undefined;
      }
      if (session.isHibernating) return undefined;
      scheduleRequest(state);
      return stanza;
    },
    -1000,
  );

  // Unloaded: hibernating sessions end (their stanzas are handed on); the others go back to plain delivery.
  module.onUnload(() => {
    for (const state of [...live]) {
      if (state.session.isHibernating) state.session.close();
      else {
        state.session.manage?.(undefined);
        end(state);
      }
    }
  });
}

export const smacks: ModuleDefinition = {
  manifest: {
    id: 'smacks',
    description: 'Stream management (XEP-0198): acknowledgements, hibernation and resumption; unacknowledged messages are never dropped.',
    options: {
      hibernation_time: {
        type: 'number',
        format: 'duration',
        default: 600,
        min: 0,
        max: 86400 * 7,
        description: 'How long a session whose connection was lost waits for the client to resume it (Prosody: smacks_hibernation_time).',
      },
      max_queue_size: {
        type: 'integer',
        default: 500,
        min: 1,
        max: 100000,
        description: 'Most unacknowledged stanzas kept per session; past it the stream ends (policy-violation) and they are handed on (Prosody: smacks_max_queue_size).',
      },
      max_unacked_stanzas: {
        type: 'integer',
        default: 0,
        min: 0,
        max: 100000,
        description: 'The server asks for an acknowledgement once more than this many stanzas are unacknowledged (Prosody: smacks_max_unacked_stanzas).',
      },
      max_ack_delay: {
        type: 'number',
        format: 'duration',
        default: 30,
        min: 0.1,
        max: 3600,
        description: 'An acknowledgement request unanswered this long marks the connection dead: the session hibernates (Prosody: smacks_max_ack_delay, which only raises an event).',
      },
    },
  },
  load: load as ModuleDefinition['load'],
};
