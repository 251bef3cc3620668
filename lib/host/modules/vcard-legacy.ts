// vcard-temp (XEP-0054): an account sets its vCard, anyone may read it at the account's bare JID.
// Prosody: plugins/mod_vcard_legacy.lua. DIFF: Prosody keeps vCards in PEP (vCard4, avatar nodes) and converts;
// without PEP here the vCard is stored as sent in the store `vcard` (Prosody's mod_vcard did the same).

import { StanzaError, parseJid, serialize, xml, type Element, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../api.js';
import { deserialize, preserialize, type StoredXml } from '../util/preserialize.js';

const NS_VCARD = 'vcard-temp';

export interface VcardLegacyOptions {
  size_limit: number;
}

function bareOf(jid: string | undefined): string | undefined {
  const parsed = jid ? parseJid(jid) : undefined;
  return parsed?.ok && parsed.jid.local !== null ? parsed.jid.bare : undefined;
}

export function load(module: ModuleApi<VcardLegacyOptions>): void {
  const store = module.openStore<StoredXml>('vcard');
  const sizeLimit = module.options.size_limit;

  const onGet = async ({ stanza, origin }: StanzaEvent): Promise<Element> => {
    const account = bareOf(stanza.attrs.to) ?? bareOf(origin.jid);
    // XEP-0054 §3.3: no such user is service-unavailable, as disco says for it.
    if (!account || !(await module.users.exists(account))) throw new StanzaError('service-unavailable');
    const stored = await store.get(account);
    // No vCard yet: an empty one (XEP-0054 §3.1 allows it; Prosody's mod_vcard_legacy does so).
    return stored ? deserialize(stored) : xml('vCard', { xmlns: NS_VCARD });
  };

  const onSet = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const account = bareOf(origin.jid);
    if (!account) throw new StanzaError('forbidden');
    const vcard = stanza.getChild('vCard', NS_VCARD)!;
    const size = Buffer.byteLength(serialize(vcard));
    if (size > sizeLimit) throw new StanzaError('not-acceptable', `A vCard may take at most ${sizeLimit} bytes; this one has ${size} (use a smaller photo).`);
    await store.set(account, preserialize(vcard));
    return true;
  };

  module.handleIq('get', NS_VCARD, 'vCard', onGet, { to: ['self', 'bare'] });
  module.handleIq('set', NS_VCARD, 'vCard', onSet, { to: ['self'] });
  module.handleIq('set', NS_VCARD, 'vCard', () => {
    throw new StanzaError('forbidden', 'Only the account itself sets its vCard.');
  }, { to: ['bare'] });
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host === module.host) await store.set(jid, undefined);
  });
  module.provides('disco_feature', NS_VCARD);
  module.provides('account_disco_feature', NS_VCARD);
}

export const vcardLegacy: ModuleDefinition = {
  manifest: {
    id: 'vcard_legacy',
    description: 'vcard-temp (XEP-0054): profiles and avatars of older clients, on the account\'s bare JID.',
    options: {
      size_limit: { type: 'integer', default: 262144, min: 1024, max: 104857600, description: 'Largest vCard an account may store, in bytes (photos included).' },
    },
  },
  load,
};
