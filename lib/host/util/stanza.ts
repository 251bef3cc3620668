// Stanza helpers shared by the router and modules: deep copy, results and error replies (RFC 6120 §8.2.3, §8.3).
// Prosody's util/stanza.lua st.reply / st.error_reply.

import { xml, type Element } from '@xmpp/xml';
import type { StanzaError } from './errors.js';

type Stanza = Element;

/** A deep copy of an element (ltx 3 has no clone method). */
export function cloneStanza<T extends Element>(el: T): T {
  const copy = new (el.constructor as new (name: string, attrs: Record<string, string>) => T)(el.name, el.attrs);
  for (const child of el.children) copy.append(typeof child === 'string' ? child : cloneStanza(child));
  return copy;
}

/**
 * The reply to a stanza, addressed back to its sender: for an iq a `result` (RFC 6120 §8.2.3) carrying `payload`
 * if given; other stanzas keep their type.
 */
export function reply(stanza: Stanza, payload?: Element): Stanza {
  const type = stanza.name === 'iq' ? 'result' : stanza.attrs.type;
  const answer = xml(stanza.name, { type, id: stanza.attrs.id, to: stanza.attrs.from, from: stanza.attrs.to });
  if (payload) answer.append(payload);
  return answer;
}

/** Build the error reply to a stanza (RFC 6120 §8.3): addresses swapped, type error, original payload kept. */
export function errorReply(stanza: Stanza, err: StanzaError): Stanza {
  const reply = xml(stanza.name, { ...stanza.attrs, from: stanza.attrs.to, to: stanza.attrs.from, type: 'error' });
  // Keep the payload of messages and presences (§8.3.1 MAY); an iq error carries its query child.
  for (const child of stanza.children) reply.append(typeof child === 'string' ? child : cloneStanza(child));
  const error = reply.c('error', { type: err.type });
  error.c(err.condition, { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' });
  if (err.text) error.c('text', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }).t(err.text);
  return reply;
}

