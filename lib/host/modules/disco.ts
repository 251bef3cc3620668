// Service Discovery (XEP-0030) on the server and, on their behalf, on local accounts' bare JIDs.
// Features come from every module's provides('disco_feature' | 'account_disco_feature'). Prosody: plugins/mod_disco.lua.
// Also loaded on component hosts: there it answers for the component (its identities and features).

import { StanzaError, parseJid, xml, type Element, type ModuleApi, type ModuleDefinition, type Provides, type StanzaEvent } from '../api.js';

const NS_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ITEMS = 'http://jabber.org/protocol/disco#items';

/** The disco#info payload: identity, then features, sorted and unique (XEP-0115 hashing wants that anyway). */
export function infoQuery(identity: { category: string; type: string; name?: string }, features: readonly string[], node?: string): Element {
  const query = xml('query', { xmlns: NS_INFO, node });
  query.append(xml('identity', identity));
  for (const v of [...new Set([NS_INFO, NS_ITEMS, ...features])].sort()) query.append(xml('feature', { var: v }));
  return query;
}

declare module '../api.js' {
  interface Provides {
    /** A disco#info identity of a component host (Prosody's module:add_identity); the component's module provides it. */
    disco_identity: { category: string; type: string; name?: string };
  }
}

const queryNode = (stanza: Element, ns: string): string | undefined => stanza.getChild('query', ns)?.attrs.node;

/**
 * On a component: its identities (a plain `component/generic` named after its module when it provides none) and the
 * features provided there, no items. A component module that answers disco itself goes first (priority 0).
 */
function loadOnComponent(module: ModuleApi): void {
  const identities = new Set<Provides['disco_identity']>();
  module.handleItems('disco_identity', (identity) => void identities.add(identity), (identity) => void identities.delete(identity));
  const components = (module.setting('components') ?? {}) as Record<string, { module: string }>;
  const fallback = { category: 'component', type: 'generic', name: components[module.host]?.module ?? module.host };
  module.handleIq('get', NS_INFO, 'query', ({ stanza }) => {
    if (queryNode(stanza, NS_INFO)) throw new StanzaError('item-not-found');
    const query = infoQuery(fallback, module.discoFeatures('server'));
    if (identities.size > 0) {
      query.children = query.children.filter((c) => typeof c === 'string' || c.name !== 'identity');
      query.children.unshift(...[...identities].map((identity) => xml('identity', identity)));
    }
    return query;
  }, { priority: -1 });
  module.handleIq('get', NS_ITEMS, 'query', ({ stanza }) => {
    if (queryNode(stanza, NS_ITEMS)) throw new StanzaError('item-not-found');
    return xml('query', { xmlns: NS_ITEMS });
  }, { priority: -1 });
  module.provides('disco_feature', NS_INFO);
  module.provides('disco_feature', NS_ITEMS);
}

export function load(module: ModuleApi): void {
  if (module.isComponent(module.host)) return loadOnComponent(module);

  /** The local account a bare-JID query is for: the server answers for it (XEP-0030 §3.1, RFC 6121 §8.5.2.1.3). */
  const account = async ({ stanza, origin }: StanzaEvent): Promise<void> => {
    const parsed = parseJid(stanza.attrs.to ?? origin.jid ?? '');
    if (!parsed.ok || !(await module.users.exists(parsed.jid.bare))) throw new StanzaError('service-unavailable');
  };

  // We publish no nodes on the server (XEP-0030 §3.2: an unknown node is item-not-found).
  module.handleIq('get', NS_INFO, 'query', ({ stanza }) => {
    if (queryNode(stanza, NS_INFO)) throw new StanzaError('item-not-found');
    return infoQuery({ category: 'server', type: 'im', name: 'xmppd' }, module.discoFeatures('server'));
  });
  // Every component domain of the server, named by its `name` option or else its module (Prosody lists components).
  module.handleIq('get', NS_ITEMS, 'query', ({ stanza }) => {
    if (queryNode(stanza, NS_ITEMS)) throw new StanzaError('item-not-found');
    const components = (module.setting('components') ?? {}) as Record<string, { module: string; options?: Record<string, unknown> }>;
    const items = Object.entries(components).map(([jid, c]) => xml('item', { jid, name: typeof c.options?.name === 'string' ? c.options.name : c.module }));
    return xml('query', { xmlns: NS_ITEMS }, ...items);
  });
  module.handleIq('get', NS_INFO, 'query', async (event) => {
    await account(event);
    if (queryNode(event.stanza, NS_INFO)) throw new StanzaError('item-not-found');
    return infoQuery({ category: 'account', type: 'registered' }, module.discoFeatures('account'));
  }, { to: ['bare', 'self'] });
  module.handleIq('get', NS_ITEMS, 'query', async (event) => {
    await account(event);
    return xml('query', { xmlns: NS_ITEMS, node: queryNode(event.stanza, NS_ITEMS) });
  }, { to: ['bare', 'self'] });
  module.provides('disco_feature', NS_INFO);
  module.provides('disco_feature', NS_ITEMS);
}

export const disco: ModuleDefinition = {
  manifest: { id: 'disco', description: 'Service Discovery (XEP-0030) for the server, accounts and components.', loadOnComponents: true },
  load,
};
