// Stream-level XML written by the server: the response header, stream errors and the closing tag
// (RFC 6120 §4.7 stream attributes, §4.9 stream errors).

import { xml, escapeXML, type Element } from '@xmpp/xml';
import { NS_CLIENT, NS_STREAM, NS_STREAMS_ERRORS } from './namespaces.js';

/** Stream error conditions we send (RFC 6120 §4.9.3). */
export type StreamErrorCondition =
  | 'bad-format'
  | 'connection-timeout'
  | 'conflict'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'reset'
  | 'restricted-xml'
  | 'system-shutdown'
  | 'unsupported-encoding'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export const STREAM_CLOSE = '</stream:stream>';

/**
 * The server's stream header. Built as text: it is an open tag that ltx's serializer would self-close.
 * `xmlns` is the default namespace (jabber:client unless given); `declare` adds namespace declarations
 * after xmlns:stream, in order (s2s passes jabber:server and `xmlns:db`).
 */
export function streamHeader(opts: { id?: string | undefined; from?: string | undefined; to?: string | undefined; xmlns?: string; declare?: Record<string, string> }): string {
  const attrs: Array<[string, string | undefined]> = [
    ['xmlns', opts.xmlns ?? NS_CLIENT],
    ['xmlns:stream', NS_STREAM],
    ...Object.entries(opts.declare ?? {}),
    ['id', opts.id],
    ['from', opts.from],
    ['to', opts.to],
    ['version', '1.0'],
    ['xml:lang', 'en'],
  ];
  const text = attrs.filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}='${escapeXML(v!)}'`).join('');
  return `<?xml version='1.0'?><stream:stream${text}>`;
}

export function streamError(condition: StreamErrorCondition, text?: string): Element {
  const el = xml('stream:error', {}, xml(condition, { xmlns: NS_STREAMS_ERRORS }));
  if (text) el.append(xml('text', { xmlns: NS_STREAMS_ERRORS, 'xml:lang': 'en' }, text));
  return el;
}
