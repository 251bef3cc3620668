// PEP node configuration (XEP-0060 §8.2 pubsub#node_config, §7.1.5 publish-options) as XEP-0163 needs it: the
// fields Prosody's mod_pep honours, read from and written to data forms (XEP-0004). Prosody: mod_pubsub/pubsub.lib.lua.

import { StanzaError, xml, type AccessModel, type Element, type NodeConfig } from '../../api.js';

export const NS_DATA = 'jabber:x:data';
export const FORM_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

export const ACCESS_MODELS: readonly AccessModel[] = ['presence', 'open', 'whitelist'];

/** XEP-0163 §4: presence access, one persistent item, the last one sent to new contacts (Prosody's node_defaults). */
export const DEFAULT_CONFIG: NodeConfig = { access_model: 'presence', persist_items: true, max_items: 1, send_last_published_item: 'on_sub_and_presence' };

/** A form field var → the config key it sets. */
const FIELDS: Record<string, keyof NodeConfig> = {
  'pubsub#access_model': 'access_model',
  'pubsub#persist_items': 'persist_items',
  'pubsub#max_items': 'max_items',
  'pubsub#send_last_published_item': 'send_last_published_item',
  'pubsub#title': 'title',
};

const parseBoolean = (v: string): boolean | undefined => (v === '1' || v === 'true' ? true : v === '0' || v === 'false' ? false : undefined);

/** One field's value checked against what a node may be; a bad one is not-acceptable, naming the field. */
function fieldValue(key: keyof NodeConfig, raw: string, ceiling: number): NodeConfig[keyof NodeConfig] {
  const bad = (what: string): never => {
    throw new StanzaError('not-acceptable', `pubsub#${key} must be ${what}; got "${raw.slice(0, 64)}".`);
  };
  switch (key) {
    case 'access_model':
      return (ACCESS_MODELS as readonly string[]).includes(raw) ? (raw as AccessModel) : bad(ACCESS_MODELS.join(', ') + ' (no other model is offered on PEP)');
    case 'persist_items':
      return parseBoolean(raw) ?? bad('a boolean');
    case 'max_items': {
      if (raw === 'max') return 'max';
      if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > ceiling) return bad(`an integer from 1 to ${ceiling}, or max`);
      return Number(raw);
    }
    case 'send_last_published_item':
      return raw === 'never' || raw === 'on_sub_and_presence' ? raw : bad('never or on_sub_and_presence');
    case 'title':
      return raw.length <= 1024 ? raw : bad('at most 1024 characters');
  }
}

/**
 * The node settings a submitted form asks for (pubsub#node_config or publish-options): only the fields we know;
 * others are ignored as Prosody's form reader does. A form of another FORM_TYPE is bad-request.
 */
export function parseConfigForm(x: Element | undefined, formType: string, ceiling: number): Partial<NodeConfig> {
  if (!x) return {};
  if (x.attrs.type !== 'submit') throw new StanzaError('bad-request', 'The form must be of type submit.');
  const out: Partial<NodeConfig> = {};
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var;
    if (name === 'FORM_TYPE') {
      if (field.getChildText('value') !== formType) throw new StanzaError('bad-request', `The form's FORM_TYPE must be ${formType}.`);
      continue;
    }
    if (!name || !Object.hasOwn(FIELDS, name)) continue;
    const key = FIELDS[name]!;
    (out as Record<string, unknown>)[key] = fieldValue(key, field.getChildText('value') ?? '', ceiling);
  }
  return out;
}

/** The effective number of items a node keeps. */
export const maxItemsOf = (config: NodeConfig, ceiling: number): number => (config.max_items === 'max' ? ceiling : Math.min(config.max_items, ceiling));

/** XEP-0060 §7.1.5: the first publish-option the node's configuration does not match, if any. */
export function unmetPrecondition(config: NodeConfig, wanted: Partial<NodeConfig>): string | undefined {
  for (const [key, value] of Object.entries(wanted)) {
    if (config[key as keyof NodeConfig] !== value) return `pubsub#${key}`;
  }
  return undefined;
}

/** The node configuration form (§16.4.4), as a configure get answers it. */
export function configForm(config: NodeConfig, ceiling: number): Element {
  const field = (v: string, type: string, value: string, options?: readonly string[]): Element =>
    xml('field', { var: v, type }, xml('value', {}, value), ...(options ?? []).map((o) => xml('option', {}, xml('value', {}, o))));
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'form' },
    field('FORM_TYPE', 'hidden', FORM_NODE_CONFIG),
    field('pubsub#title', 'text-single', config.title ?? ''),
    field('pubsub#access_model', 'list-single', config.access_model, ACCESS_MODELS),
    field('pubsub#persist_items', 'boolean', config.persist_items ? '1' : '0'),
    field('pubsub#max_items', 'text-single', String(config.max_items === 'max' ? 'max' : Math.min(config.max_items, ceiling))),
    field('pubsub#send_last_published_item', 'list-single', config.send_last_published_item, ['never', 'on_sub_and_presence']),
  );
}
