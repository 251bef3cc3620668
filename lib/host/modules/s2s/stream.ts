// What both directions of a server-to-server stream share (RFC 6120 §4.7 with the jabber:server namespace,
// XEP-0220 dialback elements): the header, the namespaces, stanza checks.

import { escapeXML, type Element } from '@xmpp/xml';
import { NS_STREAM } from '../../util/xmpp-stream/namespaces.js';
import { streamHeader } from '../../util/xmpp-stream/stream-errors.js';

export const NS_SERVER = 'jabber:server';
export const NS_DIALBACK = 'jabber:server:dialback';
export const NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback';

export const STANZA_KINDS = new Set(['message', 'presence', 'iq']);

/** A jabber:server stream header declaring the dialback prefix (XEP-0220 §2.1.1). */
export function s2sHeader(opts: { id?: string; from?: string; to?: string }): string {
  return streamHeader({ ...opts, xmlns: NS_SERVER, declare: { 'xmlns:db': NS_DIALBACK } });
}

/** A dialback element (`db:result`, `db:verify`) as text: the db prefix is declared on our stream header. */
export function dialbackElement(name: 'result' | 'verify', attrs: Record<string, string | undefined>, key?: string, inner?: string): string {
  const text = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${escapeXML(v!)}'`)
    .join('');
  const body = key !== undefined ? escapeXML(key) : (inner ?? '');
  return body ? `<db:${name}${text}>${body}</db:${name}>` : `<db:${name}${text}/>`;
}

/** Is the header a stream:stream in the jabber:server namespace? */
export function isServerStreamHeader(header: Element): boolean {
  const [prefix, local] = header.name.includes(':') ? header.name.split(':', 2) : ['', header.name];
  const streamNs = prefix ? header.attrs[`xmlns:${prefix}`] : header.attrs.xmlns;
  return local === 'stream' && streamNs === NS_STREAM && header.attrs.xmlns === NS_SERVER;
}

/** The text of an element's children (a dialback key). */
export function textOf(el: Element): string {
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}

/** The domain of a JID string, or undefined when it is not one. */
export function domainOf(jid: string | undefined, parse: (s: string) => { ok: true; jid: { domain: string } } | { ok: false }): string | undefined {
  if (!jid) return undefined;
  const parsed = parse(jid);
  return parsed.ok ? parsed.jid.domain : undefined;
}
