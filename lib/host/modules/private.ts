// Private XML Storage (XEP-0049): an account keeps XML fragments on its server, one per namespace, that only
// it can read. Prosody: plugins/mod_private.lua. Stored in the store `private` as one document per account.

import { StanzaError, parseJid, serialize, xml, type Element, type ModuleApi, type ModuleDefinition, type PrivateDocument, type StanzaEvent } from '../api.js';
import { deserialize, preserialize } from '../util/preserialize.js';
import { keyedLock } from '../util/keyed-lock.js';

const NS_PRIVATE = 'jabber:iq:private';
/** XEP-0049 §3: the protocol's own namespaces are not storage (nor is a child that inherits jabber:iq:private). */
const RESERVED = new Set(['jabber:client', 'jabber:server', 'jabber:component:accept', NS_PRIVATE]);

export interface PrivateOptions {
  size_limit: number;
}

/** The one fragment of a private get/set (XEP-0049 §2), or the error that refuses it. */
export function fragmentOf(query: Element): { key: string; fragment: Element } {
  const children = query.children.filter((c): c is Element => typeof c !== 'string');
  // COMPAT: Prosody answers bad-format, a stream error condition; the stanza error for it is bad-request.
  if (children.length !== 1) throw new StanzaError('bad-request', 'A private storage query carries exactly one element.');
  const fragment = children[0]!;
  const ns = fragment.attrs.xmlns;
  if (!ns || RESERVED.has(ns)) throw new StanzaError('not-acceptable', `Private storage keeps data in its own namespace, not in ${ns ?? NS_PRIVATE}.`);
  return { key: `${fragment.name}:${ns}`, fragment };
}

const hasContent = (el: Element): boolean => el.children.length > 0;

export function load(module: ModuleApi<PrivateOptions>): void {
  const store = module.openStore<PrivateDocument>('private');
  const sizeLimit = module.options.size_limit;

  /** One change at a time per account, so two sets of different namespaces do not overwrite each other. */
  const withLock = keyedLock();

  const ownerOf = (origin: StanzaEvent['origin']): string => {
    const parsed = origin.jid ? parseJid(origin.jid) : undefined;
    if (!parsed?.ok || parsed.jid.local === null) throw new StanzaError('forbidden');
    return parsed.jid.bare;
  };

  const onGet = async ({ stanza, origin }: StanzaEvent): Promise<Element> => {
    const user = ownerOf(origin);
    const { key, fragment } = fragmentOf(stanza.getChild('query', NS_PRIVATE)!);
    const doc = (await store.get(user)) ?? {};
    const stored = Object.hasOwn(doc, key) ? doc[key] : undefined;
    // Nothing stored: the empty element back, as XEP-0049 §2.3 and Prosody.
    return xml('query', { xmlns: NS_PRIVATE }, stored ? deserialize(stored.xml) : xml(fragment.name, { xmlns: fragment.attrs.xmlns }));
  };

  const onSet = async ({ stanza, origin }: StanzaEvent): Promise<true> => {
    const user = ownerOf(origin);
    const { key, fragment } = fragmentOf(stanza.getChild('query', NS_PRIVATE)!);
    const size = Buffer.byteLength(serialize(fragment));
    if (size > sizeLimit) throw new StanzaError('not-acceptable', `Private storage takes at most ${sizeLimit} bytes per account; this element has ${size}.`);
    await withLock(user, async () => {
      const doc = { ...((await store.get(user)) ?? {}) };
      delete doc[key];
      // An empty element deletes the namespace's data (Prosody: `#tag == 0`).
      if (hasContent(fragment)) {
        const total = Object.values(doc).reduce((n, v) => n + v.size, 0) + size;
        if (total > sizeLimit) throw new StanzaError('not-acceptable', `Private storage takes at most ${sizeLimit} bytes per account; this would make ${total}.`);
        doc[key] = { size, xml: preserialize(fragment) };
      }
      await store.set(user, Object.keys(doc).length > 0 ? doc : undefined);
    });
    return true;
  };

  /** XEP-0049 §3: one account never reads or writes another's private data. */
  const other = (): never => {
    throw new StanzaError('forbidden', 'Private storage belongs to its account alone.');
  };

  module.handleIq('get', NS_PRIVATE, 'query', onGet, { to: ['self'] });
  module.handleIq('set', NS_PRIVATE, 'query', onSet, { to: ['self'] });
  module.handleIq('get', NS_PRIVATE, 'query', other, { to: ['bare'] });
  module.handleIq('set', NS_PRIVATE, 'query', other, { to: ['bare'] });
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host === module.host) await withLock(jid, () => store.set(jid, undefined));
  });
  module.provides('disco_feature', NS_PRIVATE);
}

export const privateStorage: ModuleDefinition = {
  manifest: {
    id: 'private',
    description: 'Private XML Storage (XEP-0049): per-account XML by namespace (bookmarks of older clients).',
    options: {
      size_limit: { type: 'integer', default: 1048576, min: 1024, max: 104857600, description: 'Bytes of private XML one account may keep, all namespaces together.' },
    },
  },
  load,
};
