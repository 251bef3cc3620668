// An element as plain JSON for a store and back: Prosody's util/stanza.lua st.preserialize / st.deserialize.
// Pure, so modules that share a store's format (private XML, bookmarks, vcard-temp) convert alike.

import { xml, type Element } from '@xmpp/xml';

/** An element as JSON: name, string attributes, children (text or elements). */
export type StoredXml = { name: string; attrs: Record<string, string>; children: Array<StoredXml | string> };

export function preserialize(el: Element): StoredXml {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs)) if (typeof v === 'string') attrs[k] = v;
  return { name: el.name, attrs, children: el.children.map((c) => (typeof c === 'string' ? c : preserialize(c))) };
}

export function deserialize(stored: StoredXml): Element {
  return xml(stored.name, stored.attrs, ...stored.children.map((c) => (typeof c === 'string' ? c : deserialize(c))));
}
