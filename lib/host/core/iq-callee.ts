// The iq helper behind module.handleIq: the handler returns the payload, one wrapper builds the result or the
// error and sends it to the origin (xmpp.js packages/iq/callee.js; Prosody modules do st.reply by hand).

import type { Logger } from 'pino';
import type { Element } from '@xmpp/xml';
import { StanzaError } from '../util/errors.js';
import { errorReply, reply } from '../util/stanza.js';
import type { IqHandler, Stanza, StanzaEvent } from '../api.js';

/**
 * Wrap an iq handler as an event handler. It claims the iq (returns true) once answered. With an origin that takes
 * no replies (a module's send()), a StanzaError is thrown instead so the router rejects with it.
 */
export function iqCallee(handler: IqHandler, log: Logger): (event: StanzaEvent) => Promise<true> {
  return async (event) => {
    const { stanza, origin } = event;
    let answer: Stanza;
    try {
      const payload: Element | true = await handler(event);
      answer = reply(stanza, payload === true ? undefined : payload);
    } catch (err) {
      const stanzaError = err instanceof StanzaError ? err : crashed(err, stanza, log);
      if (!origin.send) throw stanzaError;
      answer = errorReply(stanza, stanzaError);
    }
    origin.send?.(answer);
    return true;
  };
}

function crashed(err: unknown, stanza: Stanza, log: Logger): StanzaError {
  const child = stanza.children.find((c): c is Element => typeof c !== 'string');
  log.error({ err, iq: child ? `${child.attrs.xmlns ?? ''}:${child.name}` : undefined }, 'an iq handler failed');
  return new StanzaError('internal-server-error');
}
