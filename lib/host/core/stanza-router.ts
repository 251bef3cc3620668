// Local stanza routing as events, after Prosody's core/stanza_router.lua: a stanza becomes
// `pre-<kind>/<to_type>` on the sender's host (for stanzas of local accounts), then `<kind>/<to_type>`
// on the recipient's host; iq get/set also fire `iq-<type>/<to_type>/<xmlns>:<name>` first. A stanza for a domain
// not served here fires `route/remote` on the global bus (what s2s hooks), else it bounces remote-server-not-found.

import type { Logger } from 'pino';
import { StanzaError } from '../util/errors.js';
import { errorReply } from '../util/stanza.js';
import type { Element } from '@xmpp/xml';
import { errorOwner, type EventBus } from './events.js';
import { parseJid } from '../util/jid.js';
import type { Origin, Stanza, StanzaEvent } from '../api.js';

export type ToType = 'host' | 'bare' | 'full' | 'self';

export interface RouterDeps {
  /**
   * The event bus of a domain served here (a virtual host or a component), or undefined for one this server does not
   * serve: the one place that decides what is local.
   */
  bus(domain: string): EventBus<StanzaEvent> | undefined;
  /** Host-wide events: `route/remote` fires here. */
  globalBus: EventBus<unknown>;
  log: Logger;
}

const KINDS = new Set(['message', 'presence', 'iq']);

export class StanzaRouter {
  constructor(private readonly deps: RouterDeps) {}

  /**
   * Route a stanza. Resolves to the value of the handler that claimed it (an Outcome for messages).
   * A StanzaError is bounced to `origin.send` when there is one, else the promise rejects with it.
   */
  async route(stanza: Stanza, origin: Origin): Promise<unknown> {
    try {
      return await this.dispatch(stanza, origin);
    } catch (err) {
      const stanzaError = err instanceof StanzaError ? err : this.internal(err, stanza);
      if (!origin.send) throw stanzaError;
      if (canBounce(stanza)) origin.send(errorReply(stanza, stanzaError));
      return undefined;
    }
  }

  private async dispatch(stanza: Stanza, origin: Origin): Promise<unknown> {
    if (!KINDS.has(stanza.name)) throw new StanzaError('bad-request', `<${stanza.name}/> is not a stanza.`);
    const { toType, domain } = this.address(stanza, origin);
    const event: StanzaEvent = { stanza, origin, host: domain };

    if ((origin.type === 'c2s' || origin.type === 'local') && origin.jid) {
      const pre = this.deps.bus(origin.host);
      const name = `pre-${stanza.name}/${toType}`;
      if (pre?.has(name)) {
        const claimed = await pre.fire(name, { ...event, host: origin.host });
        if (claimed !== undefined) return claimed;
      }
    }

    const bus = this.deps.bus(domain);
    if (!bus) return this.routeRemote(event);

    for (const name of eventNames(stanza, toType)) {
      const claimed = await bus.fire(name, event);
      if (claimed !== undefined) return claimed;
    }
    if (stanza.name === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) {
      throw new StanzaError('service-unavailable');
    }
    return undefined;
  }

  /** Offer a stanza for another server to whoever routes remotely (s2s); nobody → remote-server-not-found. */
  private async routeRemote(event: StanzaEvent): Promise<unknown> {
    const claimed = await this.deps.globalBus.fire('route/remote', event);
    if (claimed !== undefined) return claimed;
    throw new StanzaError('remote-server-not-found', `${event.host} is not served here and server-to-server routing is not enabled.`);
  }

  /** Work out the to_type and the recipient's domain; a missing `to` means the sender's own account (RFC 6120 §10.3). */
  private address(stanza: Stanza, origin: Origin): { toType: ToType; domain: string } {
    const to = stanza.attrs.to;
    const senderBare = (): string | undefined => {
      const sender = origin.jid ? parseJid(origin.jid) : undefined;
      return sender?.ok ? sender.jid.bare : undefined;
    };
    if (!to) {
      if (!senderBare()) return { toType: 'host', domain: origin.host };
      return { toType: stanza.name === 'iq' ? 'self' : 'bare', domain: origin.host };
    }
    const parsed = parseJid(to);
    if (!parsed.ok) throw new StanzaError('jid-malformed', parsed.error);
    const { jid } = parsed;
    stanza.attrs.to = jid.full;
    if (jid.resource !== null) return { toType: jid.local === null ? 'host' : 'full', domain: jid.domain };
    if (jid.local === null) return { toType: 'host', domain: jid.domain };
    if (stanza.name === 'iq' && jid.bare === senderBare()) return { toType: 'self', domain: jid.domain };
    return { toType: 'bare', domain: jid.domain };
  }

  private internal(err: unknown, stanza: Stanza): StanzaError {
    this.deps.log.error({ err, module: errorOwner(err), stanza: stanza.name }, 'a handler failed while routing a stanza');
    return new StanzaError('internal-server-error');
  }
}

/** The events a stanza fires on the recipient's host, most specific first. */
export function eventNames(stanza: Stanza, toType: ToType): string[] {
  if (stanza.name !== 'iq') return [`${stanza.name}/${toType}`];
  const type = stanza.attrs.type;
  const child = stanza.children.find((c): c is Element => typeof c !== 'string');
  if ((type === 'get' || type === 'set') && child) {
    const payload = `${child.attrs.xmlns ?? ''}:${child.name}`;
    return [`iq-${type}/${toType}/${payload}`, `iq/${toType}/${payload}`, `iq/${toType}`];
  }
  return [`iq-${type ?? 'get'}/${toType}`, `iq/${toType}`];
}

/** Never answer an error with an error, nor an iq result (RFC 6120 §8.3.1). */
function canBounce(stanza: Stanza): boolean {
  const type = stanza.attrs.type;
  if (type === 'error') return false;
  if (stanza.name === 'iq' && type === 'result') return false;
  return true;
}
