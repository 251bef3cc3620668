// Personal Eventing Protocol (XEP-0163): a publish-subscribe service (the XEP-0060 subset PEP needs) at every
// account's bare JID, notifying the account's resources and its subscribed contacts that ask by XEP-0115 +notify caps.
// Prosody: plugins/mod_pep.lua with mod_pubsub/pubsub.lib.lua and util/pubsub.lua.

import { randomBytes } from 'node:crypto';
import parse from '@xmpp/xml/lib/parse.js';
import {
  StanzaError,
  errorReply,
  parseJid,
  reply,
  serialize,
  xml,
  type AccessModel,
  type Element,
  type ModuleApi,
  type ModuleDefinition,
  type NodeConfig,
  type Origin,
  type PepChange,
  type PepItem,
  type PepService,
  type RosterItem,
  type StanzaErrorCondition,
  type StanzaEvent,
} from '../../api.js';
import { capsOf, notifyNodes, verificationString, type CapsClaim } from './caps.js';
import {
  DEFAULT_CONFIG,
  FORM_NODE_CONFIG,
  FORM_PUBLISH_OPTIONS,
  NS_DATA,
  configForm,
  maxItemsOf,
  parseConfigForm,
  unmetPrecondition,
} from './config.js';
import { keyedLock } from '../../util/keyed-lock.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** Features Prosody's mod_pep lists on the account (XEP-0060 §10 names, after the pubsub namespace and `#`). */
const FEATURES = [
  'access-presence', 'auto-create', 'auto-subscribe', 'config-node', 'config-node-max', 'create-and-configure', 'create-nodes',
  'delete-items', 'delete-nodes', 'filtered-notifications', 'item-ids', 'last-published', 'persistent-items', 'presence-notifications',
  'presence-subscribe', 'publish', 'publish-options', 'purge-nodes', 'retract-items', 'retrieve-items',
];

export interface PepOptions {
  max_items: number;
  item_size_limit: number;
  max_nodes: number;
  info_cache_size: number;
}

/** One published item: its id and its payload, serialized. */
interface StoredItem {
  id: string;
  xml: string;
}

/** A StanzaError with XEP-0060's application condition (`<precondition-not-met/>` in pubsub#errors). */
class PubsubError extends StanzaError {
  constructor(condition: StanzaErrorCondition, text: string, readonly app?: string, readonly feature?: string) {
    super(condition, text);
  }
}

/** The error reply, with the pubsub#errors condition when there is one (RFC 6120 §8.3.2: after the text). */
function pubsubErrorReply(stanza: Element, err: StanzaError): Element {
  const answer = errorReply(stanza, err);
  if (err instanceof PubsubError && err.app) answer.getChild('error')?.append(xml(err.app, { xmlns: NS_PUBSUB_ERRORS, feature: err.feature }));
  return answer;
}

const unsupported = (feature: string): never => {
  throw new PubsubError('feature-not-implemented', `This PEP service does not offer ${feature}.`, 'unsupported', feature);
};

const isSubscribedFrom = (item: RosterItem | undefined): boolean => item?.subscription === 'from' || item?.subscription === 'both';
const bareOf = (jid: string | undefined): string | undefined => {
  const parsed = jid ? parseJid(jid) : undefined;
  return parsed?.ok ? parsed.jid.bare : undefined;
};

/** A Map kept to `size` entries, the least recently used going first. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value!);
  }
}

/** Recipients one account remembers (full JIDs with their +notify nodes); more are not notified. */
const MAX_RECIPIENTS = 1000;
/** disco#info queries for caps awaiting an answer, server-wide on this host, and how long one may wait. */
const MAX_PENDING_QUERIES = 1000;
const QUERY_TIMEOUT_MS = 30_000;
const MAX_NODE_NAME = 1024;
const MAX_ITEM_ID = 1024;

export function load(module: ModuleApi<PepOptions>): void {
  const { max_items: ceiling, item_size_limit: itemSizeLimit, max_nodes: maxNodes } = module.options;
  const roster = module.depends('roster');
  const nodes = module.openMap<NodeConfig>('pep');
  const stored = module.openMap<StoredItem[]>('pep_items');
  /** Items of nodes with persist_items false: kept in memory only. */
  const volatile = new Map<string, Map<string, StoredItem[]>>();
  /** owner → recipient full JID → nodes it +notifies. */
  const interest = new Map<string, Map<string, Set<string>>>();
  /** Verified caps (`hash ver`) → the nodes their disco#info +notifies. */
  const capsCache = new BoundedCache<Set<string>>(module.options.info_cache_size);
  const pending = new Map<string, { owner: string; recipient: string; claim: CapsClaim; timer: NodeJS.Timeout }>();
  const listeners = new Set<(change: PepChange) => void>();
  const hostOrigin: Origin = { type: 'host', host: module.host };

  /** One change at a time per account: a publish reads and rewrites a node's items. */
  const withLock = keyedLock();

  // --- storage ---------------------------------------------------------------------------------------

  const readItems = async (owner: string, node: string, config: NodeConfig): Promise<StoredItem[]> =>
    config.persist_items ? ((await stored.get(owner, node)) ?? []) : (volatile.get(owner)?.get(node) ?? []);

  const writeItems = async (owner: string, node: string, config: NodeConfig, items: StoredItem[]): Promise<void> => {
    if (config.persist_items) {
      await stored.set(owner, node, items.length > 0 ? items : undefined);
      volatile.get(owner)?.delete(node);
      return;
    }
    await stored.set(owner, node, undefined);
    // DIFF: a node that does not persist keeps only its last item, in memory (enough for XEP-0163 §4.3.2).
    let byNode = volatile.get(owner);
    if (!byNode) volatile.set(owner, (byNode = new Map()));
    if (items.length > 0) byNode.set(node, items.slice(-1));
    else byNode.delete(node);
  };

  const toPepItem = (item: StoredItem): PepItem | undefined => {
    try {
      return { id: item.id, payload: parse(item.xml) as Element };
    } catch (err) {
      module.log.warn({ err }, 'a stored PEP item could not be read');
      return undefined;
    }
  };

  const itemElement = (item: StoredItem, withPayload = true): Element | undefined => {
    const pep = withPayload ? toPepItem(item) : { id: item.id, payload: undefined };
    if (!pep) return undefined;
    return xml('item', { id: pep.id }, ...(pep.payload ? [pep.payload] : []));
  };

  const checkNodeName = (node: string | undefined): string => {
    if (!node) throw new PubsubError('bad-request', 'A node name is required.', 'nodeid-required');
    if (node.length > MAX_NODE_NAME) throw new StanzaError('not-acceptable', `A node name has at most ${MAX_NODE_NAME} characters.`);
    return node;
  };

  const changed = (change: PepChange): void => {
    for (const listener of listeners) {
      try {
        listener(change);
      } catch (err) {
        module.log.error({ err }, 'a PEP change listener failed');
      }
    }
  };

  // --- access ----------------------------------------------------------------------------------------

  /** May `requester` (a JID, never the owner) see the node's items and notifications? (XEP-0060 §4.5) */
  const mayRead = async (owner: string, access: AccessModel, requester: string): Promise<boolean> => {
    const bare = bareOf(requester);
    if (bare === owner) return true;
    if (access === 'open') return true;
    if (access === 'whitelist' || !bare) return false;
    return isSubscribedFrom((await roster.contact(owner, bare)).item);
  };

  // --- notifications ---------------------------------------------------------------------------------

  const sendEvent = (owner: string, to: string, child: Element): void => {
    const message = xml('message', { type: 'headline', from: owner, to, id: randomBytes(9).toString('base64url') }, xml('event', { xmlns: NS_PUBSUB_EVENT }, child));
    module.route(message, hostOrigin).catch((err: unknown) => module.log.debug({ err, to }, 'PEP notification not routed'));
  };

  /** XEP-0163 §4.3: every recipient that +notifies the node and may read it gets the event. */
  const broadcast = async (owner: string, node: string, access: AccessModel, child: Element): Promise<void> => {
    for (const [recipient, wanted] of interest.get(owner) ?? []) {
      if (wanted.has(node) && (await mayRead(owner, access, recipient))) sendEvent(owner, recipient, child);
    }
  };

  /** XEP-0163 §4.3.2: the node's last item to one recipient (new +notify, or coming online). */
  const sendLastItem = async (owner: string, node: string, recipient: string): Promise<void> => {
    const config = await nodes.get(owner, node);
    if (!config || config.send_last_published_item === 'never' || !(await mayRead(owner, config.access_model, recipient))) return;
    const last = (await readItems(owner, node, config)).at(-1);
    const element = last && itemElement(last);
    if (element) sendEvent(owner, recipient, xml('items', { node }, element));
  };

  /** Record what a recipient +notifies; nodes it newly asks for send their last item. */
  const setInterest = async (owner: string, recipient: string, wanted: Set<string> | undefined): Promise<void> => {
    let byRecipient = interest.get(owner);
    const before = byRecipient?.get(recipient);
    if (!wanted || wanted.size === 0) {
      byRecipient?.delete(recipient);
      if (byRecipient?.size === 0) interest.delete(owner);
      return;
    }
    if (!byRecipient) interest.set(owner, (byRecipient = new Map()));
    if (!before && byRecipient.size >= MAX_RECIPIENTS) return;
    byRecipient.set(recipient, wanted);
    for (const node of wanted) if (!before?.has(node)) await sendLastItem(owner, node, recipient);
  };

  /** Ask a recipient's client what its caps mean (XEP-0115 §6.2), from the owner's bare JID as Prosody does. */
  const queryCaps = (owner: string, recipient: string, claim: CapsClaim): void => {
    for (const p of pending.values()) if (p.owner === owner && p.recipient === recipient && p.claim.queryNode === claim.queryNode) return;
    if (pending.size >= MAX_PENDING_QUERIES) {
      module.log.info({ owner }, 'caps query not sent: too many waiting');
      return;
    }
    const id = `caps-${randomBytes(9).toString('base64url')}`;
    const timer = setTimeout(() => pending.delete(id), QUERY_TIMEOUT_MS);
    timer.unref();
    pending.set(id, { owner, recipient, claim, timer });
    const iq = xml('iq', { type: 'get', id, from: owner, to: recipient }, xml('query', { xmlns: NS_DISCO_INFO, node: claim.queryNode }));
    module.route(iq, hostOrigin).catch((err: unknown) => module.log.debug({ err }, 'caps query not routed'));
  };

  const onCapsAnswer = async ({ stanza }: StanzaEvent): Promise<true | undefined> => {
    const id = stanza.attrs.id;
    const waiting = id ? pending.get(id) : undefined;
    if (!waiting || stanza.attrs.from !== waiting.recipient) return undefined;
    pending.delete(id!);
    clearTimeout(waiting.timer);
    const query = stanza.attrs.type === 'result' ? stanza.getChild('query', NS_DISCO_INFO) : undefined;
    if (!query) return true;
    const { claim, owner, recipient } = waiting;
    const wanted = notifyNodes(query);
    if (claim.key) {
      // XEP-0115 §5.4: an answer that does not hash to the announced ver is neither cached nor believed.
      if (verificationString(query, claim.hash!) !== claim.ver) {
        module.log.info({ recipient }, 'caps verification failed: the disco#info answer does not match its ver');
        await setInterest(owner, recipient, undefined);
        return true;
      }
      capsCache.set(claim.key, wanted);
    }
    await setInterest(owner, recipient, wanted);
    return true;
  };

  /** Available or unavailable presence from `from` (a full JID) reaching `owner`: its +notify interest changes. */
  const onPresence = async (owner: string, from: string, stanza: Element): Promise<void> => {
    const type = stanza.attrs.type;
    if (type === 'unavailable') return setInterest(owner, from, undefined);
    if (type !== undefined) return;
    const fromBare = bareOf(from);
    if (!fromBare || from === fromBare) return;
    if (fromBare !== owner && !isSubscribedFrom((await roster.contact(owner, fromBare)).item)) return;
    const claim = capsOf(stanza);
    if (!claim) return setInterest(owner, from, undefined);
    const known = claim.key ? capsCache.get(claim.key) : undefined;
    if (known) return setInterest(owner, from, known);
    queryCaps(owner, from, claim);
  };

  // The account's own resources: their presence has no `to` (or the own bare JID).
  const onOwnPresence = async ({ stanza, origin }: StanzaEvent): Promise<undefined> => {
    const owner = bareOf(origin.jid);
    if (owner && origin.jid && (!stanza.attrs.to || bareOf(stanza.attrs.to) === owner)) await onPresence(owner, origin.jid, stanza).catch((err: unknown) => module.log.warn({ err }, 'PEP presence handling failed'));
    return undefined;
  };
  // Contacts' presence to the account (broadcasts, probe answers, directed presence).
  const onContactPresence = async ({ stanza }: StanzaEvent): Promise<undefined> => {
    const owner = bareOf(stanza.attrs.to);
    const from = stanza.attrs.from;
    if (owner && from && bareOf(from) !== owner && (await module.users.exists(owner))) await onPresence(owner, from, stanza).catch((err: unknown) => module.log.warn({ err }, 'PEP presence handling failed'));
    return undefined;
  };

  // --- the service -----------------------------------------------------------------------------------

  const createNode = async (owner: string, node: string, config: NodeConfig): Promise<void> => {
    if ((await nodes.getAll(owner)).size >= maxNodes) throw new StanzaError('policy-violation', `An account keeps at most ${maxNodes} PEP nodes; delete one first.`);
    await nodes.set(owner, node, config);
  };

  const publish = async (owner: string, node: string, item: { id?: string; payload: Element }, options: Partial<NodeConfig> = {}, reconfigure = false): Promise<string> => {
    const id = item.id ?? randomBytes(9).toString('base64url');
    if (id.length > MAX_ITEM_ID) throw new StanzaError('not-acceptable', `An item id has at most ${MAX_ITEM_ID} characters.`);
    const text = serialize(item.payload);
    const size = Buffer.byteLength(text);
    if (size > itemSizeLimit) throw new PubsubError('not-acceptable', `A PEP item payload takes at most ${itemSizeLimit} bytes; this one has ${size}.`, 'payload-too-big');
    const config = await withLock(owner, async () => {
      let current = await nodes.get(owner, node);
      const previous = current;
      if (!current) {
        current = { ...DEFAULT_CONFIG, ...options };
        await createNode(owner, node, current);
      } else if (reconfigure) {
        current = { ...current, ...options };
        await nodes.set(owner, node, current);
      } else {
        const unmet = unmetPrecondition(current, options);
        if (unmet) throw new PubsubError('conflict', `The node's ${unmet} differs from the publish-options.`, 'precondition-not-met');
      }
      const items = (await readItems(owner, node, previous ?? current)).filter((i) => i.id !== id);
      items.push({ id, xml: text });
      await writeItems(owner, node, current, items.slice(-maxItemsOf(current, ceiling)));
      return current;
    });
    await broadcast(owner, node, config.access_model, xml('items', { node }, xml('item', { id }, item.payload)));
    changed({ owner, node, kind: 'publish' });
    return id;
  };

  const retract = async (owner: string, node: string, id: string, notify: boolean): Promise<boolean> => {
    const config = await withLock(owner, async () => {
      const current = await nodes.get(owner, node);
      if (!current) return undefined;
      const items = await readItems(owner, node, current);
      const rest = items.filter((i) => i.id !== id);
      if (rest.length === items.length) return undefined;
      await writeItems(owner, node, current, rest);
      return current;
    });
    if (!config) return false;
    if (notify) await broadcast(owner, node, config.access_model, xml('items', { node }, xml('retract', { id })));
    changed({ owner, node, kind: 'retract' });
    return true;
  };

  const purge = async (owner: string, node: string, notify = true): Promise<void> => {
    const config = await withLock(owner, async () => {
      const current = await nodes.get(owner, node);
      if (current) await writeItems(owner, node, current, []);
      return current;
    });
    if (!config) throw new StanzaError('item-not-found', `No node ${node}.`);
    if (notify) await broadcast(owner, node, config.access_model, xml('purge', { node }));
    changed({ owner, node, kind: 'purge' });
  };

  const deleteNode = async (owner: string, node: string): Promise<void> => {
    const config = await withLock(owner, async () => {
      const current = await nodes.get(owner, node);
      if (!current) return undefined;
      await writeItems(owner, node, current, []);
      await nodes.set(owner, node, undefined);
      volatile.get(owner)?.delete(node);
      return current;
    });
    if (!config) throw new StanzaError('item-not-found', `No node ${node}.`);
    await broadcast(owner, node, config.access_model, xml('delete', { node }));
    changed({ owner, node, kind: 'delete' });
  };

  const configure = async (owner: string, node: string, options: Partial<NodeConfig>): Promise<void> => {
    await withLock(owner, async () => {
      const current = await nodes.get(owner, node);
      if (!current) throw new StanzaError('item-not-found', `No node ${node}.`);
      const next = { ...current, ...options };
      const items = await readItems(owner, node, current);
      await nodes.set(owner, node, next);
      await writeItems(owner, node, next, items.slice(-maxItemsOf(next, ceiling)));
    });
  };

  const service: PepService = {
    config: (owner, node) => nodes.get(owner, node),
    items: async (owner, node) => {
      const config = await nodes.get(owner, node);
      if (!config) return undefined;
      return (await readItems(owner, node, config)).map(toPepItem).filter((i): i is PepItem => i !== undefined);
    },
    publish,
    retract,
    purge: (owner, node) => purge(owner, node),
    notify: (owner, node, child, access) => broadcast(owner, node, access, child),
    onChange: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
  module.setService<'pep'>(service);

  // --- the protocol ----------------------------------------------------------------------------------

  /** Whose service an iq is for, who asks, and whether the asker is the account itself (never over s2s). */
  const partiesOf = async ({ stanza, origin }: StanzaEvent): Promise<{ owner: string; requester: string; isOwner: boolean }> => {
    const isLocal = origin.type === 'c2s' || origin.type === 'local';
    const owner = bareOf(stanza.attrs.to) ?? (isLocal ? bareOf(origin.jid) : undefined);
    if (!owner || !(await module.users.exists(owner))) throw new StanzaError('service-unavailable');
    const requester = (isLocal ? origin.jid : stanza.attrs.from) ?? '';
    return { owner, requester, isOwner: isLocal && bareOf(origin.jid) === owner };
  };

  const onlyOwner = (isOwner: boolean): void => {
    if (!isOwner) throw new StanzaError('forbidden', 'Only the account itself changes its PEP nodes.');
  };

  const onPublish = async (owner: string, publishEl: Element, pubsub: Element): Promise<Element> => {
    const node = checkNodeName(publishEl.attrs.node);
    const items = publishEl.getChildren('item');
    if (items.length !== 1) throw new PubsubError('bad-request', 'Publish exactly one item.', items.length === 0 ? 'item-required' : 'invalid-payload');
    const payloads = items[0]!.children.filter((c): c is Element => typeof c !== 'string');
    if (payloads.length !== 1) throw new PubsubError('bad-request', 'A PEP item carries exactly one payload element.', payloads.length === 0 ? 'payload-required' : 'invalid-payload');
    const form = pubsub.getChild('publish-options')?.getChild('x', NS_DATA);
    const options = parseConfigForm(form, FORM_PUBLISH_OPTIONS, ceiling);
    const id = await publish(owner, node, { id: items[0]!.attrs.id || undefined, payload: payloads[0]! }, options);
    return xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node }, xml('item', { id })));
  };

  const onItems = async (owner: string, requester: string, isOwner: boolean, itemsEl: Element): Promise<Element> => {
    const node = checkNodeName(itemsEl.attrs.node);
    const config = await nodes.get(owner, node);
    if (!config) throw new StanzaError('item-not-found', `No node ${node}.`);
    if (!isOwner && !(await mayRead(owner, config.access_model, requester))) {
      const app = config.access_model === 'presence' ? 'presence-subscription-required' : 'closed-node';
      throw new PubsubError(config.access_model === 'presence' ? 'not-authorized' : 'not-allowed', `This node is ${config.access_model}-only.`, app);
    }
    let items = await readItems(owner, node, config);
    const ids = itemsEl.getChildren('item').map((i) => i.attrs.id).filter((id): id is string => !!id);
    if (ids.length > 0) items = items.filter((i) => ids.includes(i.id));
    const max = itemsEl.attrs.max_items;
    if (max !== undefined) {
      if (!/^\d{1,9}$/.test(max)) throw new StanzaError('bad-request', 'max_items is a number.');
      items = Number(max) === 0 ? [] : items.slice(-Number(max));
    }
    const elements = items.map((i) => itemElement(i)).filter((e): e is Element => e !== undefined);
    return xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }, ...elements));
  };

  const onPubsub = async (event: StanzaEvent): Promise<Element | true> => {
    const { stanza } = event;
    const { owner, requester, isOwner } = await partiesOf(event);
    const pubsub = stanza.getChild('pubsub', NS_PUBSUB)!;
    const action = pubsub.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'publish-options' && c.name !== 'configure');
    const type = stanza.attrs.type;
    if (!action) throw new StanzaError('bad-request', 'No pubsub action.');
    if (type === 'get' && action.name === 'items') return onItems(owner, requester, isOwner, action);
    if (type === 'set' && action.name === 'publish') {
      onlyOwner(isOwner);
      return onPublish(owner, action, pubsub);
    }
    if (type === 'set' && action.name === 'retract') {
      onlyOwner(isOwner);
      const node = checkNodeName(action.attrs.node);
      const id = action.getChild('item')?.attrs.id;
      if (!id) throw new PubsubError('bad-request', 'Name the item to retract.', 'item-required');
      if (!(await nodes.get(owner, node))) throw new StanzaError('item-not-found', `No node ${node}.`);
      const notify = action.attrs.notify === 'true' || action.attrs.notify === '1';
      if (!(await retract(owner, node, id, notify))) throw new StanzaError('item-not-found', `No item ${id} on ${node}.`);
      return true;
    }
    if (type === 'set' && action.name === 'create') {
      onlyOwner(isOwner);
      const node = checkNodeName(action.attrs.node);
      const form = pubsub.getChild('configure')?.getChild('x', NS_DATA);
      const options = parseConfigForm(form, FORM_NODE_CONFIG, ceiling);
      await withLock(owner, async () => {
        if (await nodes.get(owner, node)) throw new StanzaError('conflict', `The node ${node} exists.`);
        await createNode(owner, node, { ...DEFAULT_CONFIG, ...options });
      });
      return true;
    }
    return unsupported(action.name);
  };

  const onOwnerIq = async (event: StanzaEvent): Promise<Element | true> => {
    const { stanza } = event;
    const { owner, isOwner } = await partiesOf(event);
    onlyOwner(isOwner);
    const pubsub = stanza.getChild('pubsub', NS_PUBSUB_OWNER)!;
    const action = pubsub.children.find((c): c is Element => typeof c !== 'string');
    const type = stanza.attrs.type;
    if (!action) throw new StanzaError('bad-request', 'No pubsub#owner action.');
    if (type === 'get' && action.name === 'default') return xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('default', {}, configForm(DEFAULT_CONFIG, ceiling)));
    const node = checkNodeName(action.attrs.node);
    if (type === 'get' && action.name === 'configure') {
      const config = await nodes.get(owner, node);
      if (!config) throw new StanzaError('item-not-found', `No node ${node}.`);
      return xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('configure', { node }, configForm(config, ceiling)));
    }
    if (type === 'set' && action.name === 'configure') {
      const form = action.getChild('x', NS_DATA);
      if (form?.attrs.type === 'cancel') return true;
      await configure(owner, node, parseConfigForm(form, FORM_NODE_CONFIG, ceiling));
      return true;
    }
    if (type === 'set' && action.name === 'delete') return deleteNode(owner, node).then(() => true as const);
    if (type === 'set' && action.name === 'purge') return purge(owner, node).then(() => true as const);
    return unsupported(action.name);
  };

  /** Like handleIq, but an error may carry its pubsub#errors condition. */
  const pubsubCallee = (handler: (event: StanzaEvent) => Promise<Element | true>) => async (event: StanzaEvent): Promise<true> => {
    const { stanza, origin } = event;
    try {
      const payload = await handler(event);
      origin.send?.(reply(stanza, payload === true ? undefined : payload));
    } catch (err) {
      const stanzaError = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
      if (!(err instanceof StanzaError)) module.log.error({ err }, 'a PEP request failed');
      if (!origin.send) throw stanzaError;
      origin.send(pubsubErrorReply(stanza, stanzaError));
    }
    return true;
  };

  for (const to of ['bare', 'self'] as const) {
    for (const type of ['get', 'set'] as const) {
      module.hook(`iq-${type}/${to}/${NS_PUBSUB}:pubsub`, pubsubCallee(onPubsub));
      module.hook(`iq-${type}/${to}/${NS_PUBSUB_OWNER}:pubsub`, pubsubCallee(onOwnerIq));
    }
    module.hook(`iq-result/${to}`, onCapsAnswer, 10);
    module.hook(`iq-error/${to}`, onCapsAnswer, 10);
  }
  module.hook('pre-presence/bare', onOwnPresence, 10);
  module.hook('presence/bare', onContactPresence, 10);
  module.hook('presence/full', onContactPresence, 10);

  // --- disco (XEP-0163 §6, XEP-0060 §5) ----------------------------------------------------------------

  /** The account's disco#info with the pubsub/pep identity (disco answers for accounts; this adds the identity). */
  const onDiscoInfo = async (event: StanzaEvent): Promise<Element> => {
    const { owner, requester, isOwner } = await partiesOf(event);
    const node = event.stanza.getChild('query', NS_DISCO_INFO)?.attrs.node;
    if (node !== undefined) {
      const config = await nodes.get(owner, node);
      if (!config || (!isOwner && !(await mayRead(owner, config.access_model, requester)))) throw new StanzaError('item-not-found');
      return xml('query', { xmlns: NS_DISCO_INFO, node }, xml('identity', { category: 'pubsub', type: 'leaf' }), xml('feature', { var: NS_PUBSUB }));
    }
    const features = [...new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...module.discoFeatures('account')])].sort();
    return xml(
      'query',
      { xmlns: NS_DISCO_INFO },
      xml('identity', { category: 'account', type: 'registered' }),
      xml('identity', { category: 'pubsub', type: 'pep' }),
      ...features.map((v) => xml('feature', { var: v })),
    );
  };

  /** The nodes the requester may see, or one node's item ids (XEP-0060 §5.2, §5.5). */
  const onDiscoItems = async (event: StanzaEvent): Promise<Element> => {
    const { owner, requester, isOwner } = await partiesOf(event);
    const node = event.stanza.getChild('query', NS_DISCO_ITEMS)?.attrs.node;
    if (node !== undefined) {
      const config = await nodes.get(owner, node);
      if (!config || (!isOwner && !(await mayRead(owner, config.access_model, requester)))) throw new StanzaError('item-not-found');
      const items = await readItems(owner, node, config);
      return xml('query', { xmlns: NS_DISCO_ITEMS, node }, ...items.map((i) => xml('item', { jid: owner, name: i.id })));
    }
    const visible: Element[] = [];
    for (const [name, config] of await nodes.getAll(owner)) {
      if (isOwner || (await mayRead(owner, config.access_model, requester))) visible.push(xml('item', { jid: owner, node: name, name: config.title }));
    }
    return xml('query', { xmlns: NS_DISCO_ITEMS }, ...visible);
  };

  module.handleIq('get', NS_DISCO_INFO, 'query', onDiscoInfo, { to: ['bare', 'self'], priority: 1 });
  module.handleIq('get', NS_DISCO_ITEMS, 'query', onDiscoItems, { to: ['bare', 'self'], priority: 1 });
  module.provides('account_disco_feature', NS_PUBSUB);
  for (const f of FEATURES) module.provides('account_disco_feature', `${NS_PUBSUB}#${f}`);

  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host !== module.host) return;
    interest.delete(jid);
    volatile.delete(jid);
    // Storage dropped the account's nodes with it; this catches a publish that was under way.
    await withLock(jid, async () => {
      await nodes.clear(jid);
      await stored.clear(jid);
    });
  });
  module.onUnload(() => {
    for (const p of pending.values()) clearTimeout(p.timer);
    pending.clear();
  });
}

export const pep: ModuleDefinition = {
  manifest: {
    id: 'pep',
    description: 'Personal Eventing Protocol (XEP-0163): per-account pubsub nodes, notified to the account and its contacts by +notify caps (XEP-0115).',
    depends: ['roster'],
    options: {
      max_items: { type: 'integer', default: 256, min: 1, max: 10000, description: "Most items a node keeps, and what a node's max_items `max` means (Prosody's pep_max_items)." },
      item_size_limit: { type: 'integer', default: 65536, min: 1024, max: 10485760, description: 'Bytes an item payload may have, serialized; larger ones are refused not-acceptable (payload-too-big).' },
      max_nodes: { type: 'integer', default: 128, min: 1, max: 10000, description: 'Nodes one account may have; creating another is refused policy-violation.' },
      info_cache_size: { type: 'integer', default: 10000, min: 10, max: 1000000, description: 'Verified XEP-0115 caps remembered with their +notify nodes.' },
    },
  },
  load,
};
