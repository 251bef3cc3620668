// Service Discovery (XEP-0030) on the server and, on their behalf, on local accounts' bare JIDs.
// Features come from every module's provides('disco_feature' | 'account_disco_feature'). Prosody: plugins/mod_disco.lua.

import { StanzaError, parseJid, xml, type Element, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../api.js';

const NS_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ITEMS = 'http://jabber.org/protocol/disco#items';

/** The disco#info payload: identity, then features, sorted and unique (XEP-0115 hashing wants that anyway). */
export function infoQuery(identity: { category: string; type: string; name?: string }, features: readonly string[], node?: string): Element {
  const query = xml('query', { xmlns: NS_INFO, node });
  query.append(xml('identity', identity));
  for (const v of [...new Set([NS_INFO, NS_ITEMS, ...features])].sort()) query.append(xml('feature', { var: v }));
  return query;
}

function reply(stanza: Element, payload: Element): Element {
  return xml('iq', { type: 'result', id: stanza.attrs.id, to: stanza.attrs.from, from: stanza.attrs.to }, payload);
}

export function load(module: ModuleApi): void {
  const queryNode = (stanza: Element, ns: string): string | undefined => stanza.getChild('query', ns)?.attrs.node;

  const serverInfo = ({ stanza, origin }: StanzaEvent): boolean => {
    // We publish no nodes (XEP-0030 §3.2: an unknown node is item-not-found).
    if (queryNode(stanza, NS_INFO)) throw new StanzaError('item-not-found');
    origin.send?.(reply(stanza, infoQuery({ category: 'server', type: 'im', name: 'xmppd' }, module.discoFeatures('server'))));
    return true;
  };

  const serverItems = ({ stanza, origin }: StanzaEvent): boolean => {
    if (queryNode(stanza, NS_ITEMS)) throw new StanzaError('item-not-found');
    origin.send?.(reply(stanza, xml('query', { xmlns: NS_ITEMS })));
    return true;
  };

  /** An account's bare JID: the server answers for it (XEP-0030 §3.1, RFC 6121 §8.5.2.1.3). */
  const accountInfo = async ({ stanza, origin }: StanzaEvent): Promise<boolean> => {
    const target = stanza.attrs.to ?? origin.jid ?? '';
    const parsed = parseJid(target);
    if (!parsed.ok || !(await module.users.exists(parsed.jid.bare))) throw new StanzaError('service-unavailable');
    if (queryNode(stanza, NS_INFO)) throw new StanzaError('item-not-found');
    origin.send?.(reply(stanza, infoQuery({ category: 'account', type: 'registered' }, module.discoFeatures('account'))));
    return true;
  };

  const accountItems = async ({ stanza, origin }: StanzaEvent): Promise<boolean> => {
    const target = stanza.attrs.to ?? origin.jid ?? '';
    const parsed = parseJid(target);
    if (!parsed.ok || !(await module.users.exists(parsed.jid.bare))) throw new StanzaError('service-unavailable');
    origin.send?.(reply(stanza, xml('query', { xmlns: NS_ITEMS, node: queryNode(stanza, NS_ITEMS) })));
    return true;
  };

  module.hook(`iq-get/host/${NS_INFO}:query`, serverInfo);
  module.hook(`iq-get/host/${NS_ITEMS}:query`, serverItems);
  module.hook(`iq-get/bare/${NS_INFO}:query`, accountInfo);
  module.hook(`iq-get/self/${NS_INFO}:query`, accountInfo);
  module.hook(`iq-get/bare/${NS_ITEMS}:query`, accountItems);
  module.hook(`iq-get/self/${NS_ITEMS}:query`, accountItems);
  module.provides('disco_feature', NS_INFO);
  module.provides('disco_feature', NS_ITEMS);
}

export const disco: ModuleDefinition = {
  manifest: { id: 'disco', description: 'Service Discovery (XEP-0030) for the server and accounts.' },
  load,
};
