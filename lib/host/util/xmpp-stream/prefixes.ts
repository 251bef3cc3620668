// Namespace prefixes in a client's stanza (Namespaces in XML 1.0 §5 "Namespace Constraint: Prefix Declared").
// ltx does not resolve prefixes, so an unbound one would pass through to other clients, whose
// namespace-aware parsers would drop their own stream over it; Prosody's expat refuses it at the sender.

import type { Element } from '@xmpp/xml';

const PREDECLARED = new Set(['xml', 'xmlns']);

function prefixOf(name: string): string | undefined {
  const colon = name.indexOf(':');
  return colon > 0 ? name.slice(0, colon) : undefined;
}

/**
 * Check every prefixed element and attribute name in `stanza`. Prefixes the client declared on its stream
 * header are copied onto the stanza, so it stays well-formed on its own when routed to someone else.
 * Returns the first unbound prefix, or undefined when all are bound.
 */
export function bindStreamPrefixes(stanza: Element, streamDeclarations: Readonly<Record<string, string>>): string | undefined {
  const needed = new Map<string, string>();
  const unbound = walk(stanza, new Set(PREDECLARED), streamDeclarations, needed);
  if (unbound !== undefined) return unbound;
  for (const [prefix, ns] of needed) stanza.attrs[`xmlns:${prefix}`] = ns;
  return undefined;
}

function walk(el: Element, inScope: ReadonlySet<string>, stream: Readonly<Record<string, string>>, needed: Map<string, string>): string | undefined {
  let scope = inScope;
  for (const attr of Object.keys(el.attrs)) {
    if (!attr.startsWith('xmlns:')) continue;
    if (scope === inScope) scope = new Set(inScope);
    (scope as Set<string>).add(attr.slice(6));
  }
  const names = [el.name, ...Object.keys(el.attrs).filter((a) => a !== 'xmlns' && !a.startsWith('xmlns:'))];
  for (const name of names) {
    const prefix = prefixOf(name);
    if (prefix === undefined || scope.has(prefix)) continue;
    const ns = Object.hasOwn(stream, prefix) ? stream[prefix] : undefined;
    if (ns === undefined) return prefix;
    needed.set(prefix, ns);
  }
  for (const child of el.children) {
    if (typeof child === 'string') continue;
    const unbound = walk(child, scope, stream, needed);
    if (unbound !== undefined) return unbound;
  }
  return undefined;
}

/** The `xmlns:prefix` declarations of a stream header. */
export function prefixDeclarations(header: Element): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [attr, value] of Object.entries(header.attrs)) {
    if (attr.startsWith('xmlns:')) out[attr.slice(6)] = value;
  }
  return out;
}
