// Entity Capabilities (XEP-0115): the verification string of a disco#info answer (§5.1, checked as §5.4 says) and
// the `<c/>` of a presence. Prosody: util/caps.lua calculate_hash, mod_pep's get_caps_hash_from_presence.

import { createHash } from 'node:crypto';
import type { Element } from '../../api.js';

export const NS_CAPS = 'http://jabber.org/protocol/caps';

/** XEP-0115 §5.1 names hashes as the IANA registry does; these are the ones node:crypto computes. */
const HASHES: Record<string, string> = { 'sha-1': 'sha1', 'sha-224': 'sha224', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512' };

/** What a presence's `<c/>` announces: the disco node to ask, and the cache key when its hash can be verified. */
export interface CapsClaim {
  /** `node#ver`, the disco#info node to query (§6.2). */
  queryNode: string;
  /** `hash ver` for a hash we can verify; undefined for legacy caps (no hash) or an unknown one: never cached. */
  key: string | undefined;
  hash: string | undefined;
  ver: string;
}

/** The caps of a presence, or undefined for none (or malformed ones: a node and ver are required). */
export function capsOf(presence: Element): CapsClaim | undefined {
  const c = presence.getChild('c', NS_CAPS);
  const { node, ver, hash } = c?.attrs ?? {};
  if (!node || !ver || node.length > 1024 || ver.length > 256) return undefined;
  const isKnown = hash !== undefined && Object.hasOwn(HASHES, hash);
  return { queryNode: `${node}#${ver}`, key: isKnown ? `${hash} ${ver}` : undefined, hash: isKnown ? hash : undefined, ver };
}

const elements = (el: Element, name: string): Element[] => el.children.filter((c): c is Element => typeof c !== 'string' && c.name === name);

/** Code-point order, as §5.1 asks ("i;octet" collation), not the locale's. */
const byOctet = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The verification string of a disco#info `<query/>` with the named hash (§5.1), or undefined when the answer breaks
 * a §5.4 rule (duplicate identity or feature, a form whose FORM_TYPE is not hidden or repeats): such an answer is never cached.
 */
export function verificationString(query: Element, hash: string): string | undefined {
  const algorithm = HASHES[hash];
  if (!algorithm) return undefined;
  const identities = elements(query, 'identity').map((i) => `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`);
  const features = elements(query, 'feature').map((f) => f.attrs.var ?? '');
  if (new Set(identities).size !== identities.length || new Set(features).size !== features.length) return undefined;
  let s = '';
  for (const i of identities.sort(byOctet)) s += `${i}<`;
  for (const f of features.sort(byOctet)) s += `${f}<`;
  const forms: Array<{ type: string; text: string }> = [];
  for (const x of query.getChildren('x', 'jabber:x:data')) {
    const fields = elements(x, 'field');
    const formType = fields.filter((f) => f.attrs.var === 'FORM_TYPE');
    if (formType.length === 0) continue;
    if (formType.length > 1 || formType[0]!.attrs.type !== 'hidden') return undefined;
    const type = formType[0]!.getChildText('value') ?? '';
    let text = `${type}<`;
    const others = fields.filter((f) => f.attrs.var !== 'FORM_TYPE').sort((a, b) => byOctet(a.attrs.var ?? '', b.attrs.var ?? ''));
    for (const field of others) {
      text += `${field.attrs.var ?? ''}<`;
      for (const v of elements(field, 'value').map((e) => e.text()).sort(byOctet)) text += `${v}<`;
    }
    forms.push({ type, text });
  }
  if (new Set(forms.map((f) => f.type)).size !== forms.length) return undefined;
  for (const form of forms.sort((a, b) => byOctet(a.type, b.type))) s += form.text;
  return createHash(algorithm).update(s, 'utf8').digest('base64');
}

/** The nodes a disco#info answer asks notifications for: each `<feature var='node+notify'/>` (XEP-0163 §4.3.1). */
export function notifyNodes(query: Element): Set<string> {
  const nodes = new Set<string>();
  for (const f of elements(query, 'feature')) {
    const v = f.attrs.var;
    if (v?.endsWith('+notify') && v.length > 7) nodes.add(v.slice(0, -7));
  }
  return nodes;
}
