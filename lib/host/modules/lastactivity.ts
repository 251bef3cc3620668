// Last Activity of accounts (XEP-0012 §4): how long ago an account went offline and with which status, told to
// the account itself and to contacts allowed to see its presence (subscription from or both). Prosody:
// plugins/mod_lastactivity.lua. DIFF: kept in the store `lastactivity` (Prosody keeps it in memory), so it survives restarts.

import { StanzaError, parseJid, xml, type Element, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../api.js';

const NS_LAST = 'jabber:iq:last';

export interface LastActivity {
  /** When the account last sent unavailable presence, ms since the epoch. */
  stamp: number;
  status?: string;
}

function bareOf(jid: string | undefined): string | undefined {
  const parsed = jid ? parseJid(jid) : undefined;
  return parsed?.ok && parsed.jid.local !== null ? parsed.jid.bare : undefined;
}

/** The `<query/>` payload: seconds since `last` (0 while online or never seen) and its status text. */
export function lastQuery(last: LastActivity | undefined, now: number, isOnline: boolean): Element {
  if (isOnline || !last) return xml('query', { xmlns: NS_LAST, seconds: '0' });
  return xml('query', { xmlns: NS_LAST, seconds: String(Math.max(0, Math.floor((now - last.stamp) / 1000))) }, last.status ?? '');
}

export function load(module: ModuleApi): void {
  const store = module.openStore<LastActivity>('lastactivity');
  // The subscription states (RFC 6121 §2.1.2.5), through the roster module: its store is item by item.
  const roster = module.depends('roster');

  /** XEP-0012 §4: only someone who may see the account's presence learns when it was last seen (Prosody's is_contact_subscribed). */
  const mayAsk = async (account: string, asker: string | undefined): Promise<boolean> => {
    if (!asker) return false;
    if (asker === account) return true;
    const { item } = await roster.contact(account, asker);
    return item?.subscription === 'from' || item?.subscription === 'both';
  };

  const onQuery = async ({ stanza, origin }: StanzaEvent): Promise<Element> => {
    const account = bareOf(stanza.attrs.to) ?? bareOf(origin.jid);
    const asker = bareOf(stanza.attrs.from) ?? bareOf(origin.jid);
    // Also for an account that does not exist: the answer must not tell which accounts do.
    if (!account || !(await mayAsk(account, asker))) throw new StanzaError('forbidden', 'Only contacts subscribed to this account\'s presence may see its last activity.');
    const isOnline = module.sessions.byBare(account).some((s) => s.isAvailable);
    return lastQuery(await store.get(account), Date.now(), isOnline);
  };

  /** The account's own unavailable presence (no `to`): a client signing off, or its stream closing. */
  const onOwnPresence = async ({ stanza, origin }: StanzaEvent): Promise<undefined> => {
    if (stanza.attrs.type !== 'unavailable') return undefined;
    const account = bareOf(origin.jid);
    if (!account || (stanza.attrs.to && bareOf(stanza.attrs.to) !== account)) return undefined;
    const status = stanza.getChildText('status') ?? undefined;
    await store.set(account, status ? { stamp: Date.now(), status } : { stamp: Date.now() });
    return undefined;
  };

  module.hook('pre-presence/bare', onOwnPresence, 10);
  module.handleIq('get', NS_LAST, 'query', onQuery, { to: ['bare', 'self'] });
  // Storage deleted the record with the account; this catches a sign-off that was being written then.
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host === module.host) await store.set(jid, undefined);
  });
  module.provides('account_disco_feature', NS_LAST);
}

export const lastactivity: ModuleDefinition = {
  manifest: { id: 'lastactivity', description: 'Last Activity of accounts (XEP-0012): when an account went offline, for its contacts.', depends: ['roster'] },
  load,
};
