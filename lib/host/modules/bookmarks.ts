// Bookmarks (XEP-0402, urn:xmpp:bookmarks:1 in PEP) with the compatibility of XEP-0048: older clients reading or
// writing `storage:bookmarks` in private XML (XEP-0049) or in the legacy PEP node see and change the same bookmarks,
// and are notified of them. Prosody: plugins/mod_bookmarks.lua.

import {
  StanzaError,
  errorReply,
  parseJid,
  reply,
  serialize,
  xml,
  type Element,
  type ModuleApi,
  type ModuleDefinition,
  type NodeConfig,
  type PepItem,
  type PrivateDocument,
  type StanzaEvent,
} from '../api.js';
import { deserialize } from '../util/preserialize.js';

export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
export const NS_LEGACY = 'storage:bookmarks';
const NS_PRIVATE = 'jabber:iq:private';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
/** Where mod_private keeps a fragment: `<name>:<namespace>`. */
const PRIVATE_KEY = `storage:${NS_LEGACY}`;

/** XEP-0402 §3: whitelist access, as many items as allowed, persistent, nothing sent to new contacts. */
export const BOOKMARKS_CONFIG: Partial<NodeConfig> = { persist_items: true, max_items: 'max', send_last_published_item: 'never', access_model: 'whitelist' };

const textChild = (el: Element, name: string): string | undefined => el.getChild(name)?.text();

/** XEP-0048 `<storage/>` from the XEP-0402 items (item id = room JID). */
export function legacyStorage(items: readonly PepItem[]): Element {
  const storage = xml('storage', { xmlns: NS_LEGACY });
  for (const { id, payload } of items) {
    const bookmark = payload.name === 'conference' && payload.attrs.xmlns === NS_BOOKMARKS ? payload : undefined;
    const conference = xml('conference', { jid: id, name: bookmark?.attrs.name, autojoin: bookmark?.attrs.autojoin });
    const nick = bookmark && textChild(bookmark, 'nick');
    if (nick !== undefined) conference.append(xml('nick', {}, nick));
    const password = bookmark && textChild(bookmark, 'password');
    if (password !== undefined) conference.append(xml('password', {}, password));
    storage.append(conference);
  }
  return storage;
}

/** One XEP-0048 `<conference/>` as a XEP-0402 item: the room JID and its `<conference xmlns=urn:xmpp:bookmarks:1/>`. */
export function modernConference(legacy: Element): { id: string; payload: Element } {
  const parsed = parseJid(legacy.attrs.jid ?? '');
  if (!parsed.ok || parsed.jid.local === null || parsed.jid.resource !== null) throw new StanzaError('bad-request', `A bookmark's jid must be a room's bare JID; got "${(legacy.attrs.jid ?? '').slice(0, 64)}".`);
  const payload = xml('conference', { xmlns: NS_BOOKMARKS, name: legacy.attrs.name, autojoin: legacy.attrs.autojoin });
  const nick = textChild(legacy, 'nick');
  if (nick !== undefined) payload.append(xml('nick', {}, nick));
  const password = textChild(legacy, 'password');
  if (password !== undefined) payload.append(xml('password', {}, password));
  return { id: parsed.jid.bare, payload };
}

export function load(module: ModuleApi): void {
  const pep = module.depends('pep');
  const privateStore = module.openStore<PrivateDocument>('private');

  const bookmarksOf = async (owner: string): Promise<PepItem[]> => (await pep.items(owner, NS_BOOKMARKS)) ?? [];

  /**
   * Write XEP-0048 bookmarks into the XEP-0402 node: new or changed conferences are published; with `synchronise`
   * (a client replaced its whole list) those no longer there are retracted, as Prosody's publish_to_pep.
   */
  const publishToPep = async (owner: string, storage: Element, synchronise: boolean): Promise<void> => {
    const wanted = storage.getChildren('conference').map(modernConference);
    const current = new Map((await bookmarksOf(owner)).map((i) => [i.id, serialize(i.payload)]));
    for (const { id, payload } of wanted) {
      if (current.get(id) !== serialize(payload)) await pep.publish(owner, NS_BOOKMARKS, { id, payload }, BOOKMARKS_CONFIG, true);
      current.delete(id);
    }
    if (!synchronise) return;
    for (const id of current.keys()) await pep.retract(owner, NS_BOOKMARKS, id, true);
  };

  /** The account a request of its own is for; anyone else is not let near it (these handlers run on iq to self). */
  const ownerOf = ({ origin }: StanzaEvent): string => {
    const parsed = origin.jid ? parseJid(origin.jid) : undefined;
    if ((origin.type !== 'c2s' && origin.type !== 'local') || !parsed?.ok || parsed.jid.local === null) throw new StanzaError('forbidden');
    return parsed.jid.bare;
  };

  /** Answer an iq we take over from private or pep, or pass it on (undefined) when it is not about bookmarks. */
  const takeOver = (decide: (event: StanzaEvent) => (() => Promise<Element | true>) | undefined) => async (event: StanzaEvent): Promise<true | undefined> => {
    const run = decide(event);
    if (!run) return undefined;
    const { stanza, origin } = event;
    try {
      const payload = await run();
      origin.send?.(reply(stanza, payload === true ? undefined : payload));
    } catch (err) {
      const stanzaError = err instanceof StanzaError ? err : new StanzaError('internal-server-error', 'The bookmarks could not be stored.');
      if (!(err instanceof StanzaError)) module.log.error({ err }, 'bookmarks compatibility failed');
      if (!origin.send) throw stanzaError;
      origin.send(errorReply(stanza, stanzaError));
    }
    return true;
  };

  const legacyIn = (stanza: Element): Element | undefined => stanza.getChild('query', NS_PRIVATE)?.getChild('storage', NS_LEGACY);

  // XEP-0049 with storage:bookmarks: read from and written to the XEP-0402 node (Prosody keeps nothing in private).
  module.hook(`iq-get/self/${NS_PRIVATE}:query`, takeOver((event) => {
    if (!legacyIn(event.stanza)) return undefined;
    return async () => xml('query', { xmlns: NS_PRIVATE }, legacyStorage(await bookmarksOf(ownerOf(event))));
  }), 1);
  module.hook(`iq-set/self/${NS_PRIVATE}:query`, takeOver((event) => {
    const storage = legacyIn(event.stanza);
    if (!storage) return undefined;
    return async () => {
      await publishToPep(ownerOf(event), storage, true);
      return true;
    };
  }), 1);

  // XEP-0048 over PEP (the legacy node): items and publish of storage:bookmarks map to the XEP-0402 node too.
  module.hook(`iq-get/self/${NS_PUBSUB}:pubsub`, takeOver((event) => {
    if (event.stanza.getChild('pubsub', NS_PUBSUB)?.getChild('items')?.attrs.node !== NS_LEGACY) return undefined;
    return async () => {
      const storage = legacyStorage(await bookmarksOf(ownerOf(event)));
      return xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_LEGACY }, xml('item', { id: 'current' }, storage)));
    };
  }), 1);
  module.hook(`iq-set/self/${NS_PUBSUB}:pubsub`, takeOver((event) => {
    const publish = event.stanza.getChild('pubsub', NS_PUBSUB)?.getChild('publish');
    if (publish?.attrs.node === 'urn:xmpp:bookmarks:0') return async () => {
      throw new StanzaError('not-allowed', 'Your client does XEP-0402 version 0.3.0 but 0.4.0+ is required');
    };
    if (publish?.attrs.node !== NS_LEGACY) return undefined;
    const storage = publish.getChild('item')?.getChild('storage', NS_LEGACY);
    if (!storage) return async () => {
      throw new StanzaError('bad-request', 'Publish one item holding <storage xmlns="storage:bookmarks"/>.');
    };
    return async () => {
      await publishToPep(ownerOf(event), storage, true);
      return xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: NS_LEGACY }, xml('item', { id: 'current' })));
    };
  }), 1);

  // The other way: any change of the XEP-0402 node reaches XEP-0048 clients that +notify storage:bookmarks.
  const stop = pep.onChange(({ owner, node }) => {
    if (node !== NS_BOOKMARKS) return;
    void (async () => {
      const item = xml('item', { id: 'current' }, legacyStorage(await bookmarksOf(owner)));
      await pep.notify(owner, NS_LEGACY, xml('items', { node: NS_LEGACY }, item), 'whitelist');
    })().catch((err: unknown) => module.log.warn({ err }, 'legacy bookmarks notification failed'));
  });
  module.onUnload(stop);

  // Bookmarks an older client left in private XML move to the XEP-0402 node at the account's next login.
  module.hookGlobal('resource-available', async ({ session }) => {
    if (session.host !== module.host) return;
    const owner = session.bare;
    try {
      const doc = await privateStore.get(owner);
      const entry = doc && Object.hasOwn(doc, PRIVATE_KEY) ? doc[PRIVATE_KEY] : undefined;
      if (!doc || !entry) return;
      await publishToPep(owner, deserialize(entry.xml), false);
      const rest = { ...doc };
      delete rest[PRIVATE_KEY];
      await privateStore.set(owner, Object.keys(rest).length > 0 ? rest : undefined);
    } catch (err) {
      module.log.warn({ err }, 'private bookmarks not migrated');
    }
  });

  module.provides('account_disco_feature', `${NS_BOOKMARKS}#compat`);
  module.provides('account_disco_feature', `${NS_BOOKMARKS}#compat-pep`);
  module.provides('account_disco_feature', 'urn:xmpp:bookmarks-conversion:0');
}

export const bookmarks: ModuleDefinition = {
  manifest: {
    id: 'bookmarks',
    description: 'Bookmarks (XEP-0402) kept in sync with XEP-0048 bookmarks in private XML and the legacy PEP node.',
    depends: ['pep'],
  },
  load,
};
