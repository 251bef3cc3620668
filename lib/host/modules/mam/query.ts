// Reading a MAM query: the XEP-0004 data form of XEP-0313 §4.1 (with, start, end; before-id, after-id and ids of
// urn:xmpp:mam:2#extended) and the XEP-0059 result set (max, before, after). Prosody: mod_mam.lua, util/rsm.lua.

import { StanzaError, parseJid, xml, type Element } from '../../api.js';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
export const NS_DATA = 'jabber:x:data';
export const NS_RSM = 'http://jabber.org/protocol/rsm';

/** Most ids one query may name (`ids`): a client asks for what it shows, not for the whole archive. */
export const MAX_IDS = 1000;
/** Longest archive id we read from a client; ours are far shorter. */
const MAX_ID_LENGTH = 256;

/** What a query asks for, checked; `before: true` is RSM's empty `<before/>` (the last page). */
export interface MamQuery {
  with?: string;
  start?: Date;
  end?: Date;
  beforeId?: string;
  afterId?: string;
  ids?: string[];
  /** RSM `<max>`; undefined when absent. */
  max?: number;
  before?: string | true;
  after?: string;
  /** XEP-0313 §4.3.4: the page's items in the opposite order. */
  flipPage: boolean;
}

/** XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD. */
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** A XEP-0082 DateTime, or undefined when the text is not one (or names no real instant, as 2024-02-30). */
export function parseDateTime(text: string): Date | undefined {
  const m = DATETIME.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  // Milliseconds are what the archive keeps; finer digits are dropped.
  const ms = m[7] ? m[7].slice(0, 4).padEnd(4, '0') : '';
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s === '60' ? '59' : s}${ms}${m[8]}`);
  if (Number.isNaN(date.getTime())) return undefined;
  // Date rolls 2024-02-30 over to March: refuse a day the month does not have.
  if (m[8] === 'Z' && date.getUTCDate() !== Number(d)) return undefined;
  return date;
}

/** XEP-0082 DateTime as the archive writes it (UTC, milliseconds). */
export function formatDateTime(date: Date): string {
  return date.toISOString();
}

const bad = (text: string): StanzaError => new StanzaError('bad-request', text);

function checkId(value: string, what: string): string {
  if (value.length === 0 || value.length > MAX_ID_LENGTH) throw bad(`${what} must be an archive id.`);
  return value;
}

/** The values of a form field (XEP-0004 §3.2: one `<value/>` each); a field given twice is refused. */
function fieldsOf(form: Element): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const field of form.getChildren('field')) {
    const name = field.attrs.var;
    if (typeof name !== 'string' || name === '') throw bad('Every form field needs a var.');
    if (fields.has(name)) throw bad(`The field ${name} is given twice.`);
    fields.set(name, field.getChildren('value').map((v) => v.getText()));
  }
  return fields;
}

function single(fields: Map<string, string[]>, name: string): string | undefined {
  const values = fields.get(name);
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) throw bad(`The field ${name} takes one value.`);
  const value = values[0]!.trim();
  return value === '' ? undefined : value;
}

const KNOWN_FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

/**
 * Read `<query xmlns='urn:xmpp:mam:2'>`. Throws StanzaError bad-request for a malformed form or result set,
 * and for a field this server does not offer (XEP-0313 §4.1.1: the client asks for the form to learn them).
 */
export function parseQuery(query: Element): MamQuery {
  const out: MamQuery = { flipPage: query.getChild('flip-page') !== undefined };
  const forms = query.getChildren('x', NS_DATA);
  if (forms.length > 1) throw bad('One data form per query.');
  const form = forms[0];
  if (form) {
    if (form.attrs.type !== undefined && form.attrs.type !== 'submit') throw bad('The query form must be of type submit.');
    const fields = fieldsOf(form);
    // Prosody refuses a form without FORM_TYPE or with another one (util/dataforms get_type).
    if (single(fields, 'FORM_TYPE') !== NS_MAM) throw bad(`The form's FORM_TYPE must be ${NS_MAM}.`);
    for (const name of fields.keys()) if (!KNOWN_FIELDS.has(name)) throw bad(`This server does not filter by ${name}.`);
    const withText = single(fields, 'with');
    if (withText !== undefined) {
      const parsed = parseJid(withText);
      if (!parsed.ok) throw bad(`with: ${parsed.error}`);
      // As Prosody: the archive keeps each message's other party as a bare JID.
      out.with = parsed.jid.bare;
    }
    for (const name of ['start', 'end'] as const) {
      const text = single(fields, name);
      if (text === undefined) continue;
      const date = parseDateTime(text);
      if (!date) throw bad(`${name} must be a XEP-0082 date and time, such as 2024-05-01T12:00:00Z.`);
      out[name] = date;
    }
    const beforeId = single(fields, 'before-id');
    if (beforeId !== undefined) out.beforeId = checkId(beforeId, 'before-id');
    const afterId = single(fields, 'after-id');
    if (afterId !== undefined) out.afterId = checkId(afterId, 'after-id');
    const ids = fields.get('ids');
    if (ids !== undefined) {
      if (ids.length > MAX_IDS) throw bad(`ids names at most ${MAX_IDS} items.`);
      out.ids = ids.map((id) => checkId(id.trim(), 'Each of ids'));
    }
  }
  const set = query.getChild('set', NS_RSM);
  if (set) parseResultSet(set, out);
  return out;
}

/** XEP-0059 §2: `<max>`, `<after>`, `<before>` (empty: the last page). `<index>` is not offered (§2.4 is optional). */
function parseResultSet(set: Element, out: MamQuery): void {
  const max = set.getChild('max');
  if (max) {
    const text = max.getText().trim();
    if (!/^\d{1,9}$/.test(text)) throw bad('<max/> must be a whole number.');
    out.max = Number(text);
  }
  const after = set.getChild('after');
  if (after) out.after = checkId(after.getText(), '<after/>');
  const before = set.getChild('before');
  if (before) out.before = before.getText() === '' ? true : checkId(before.getText(), '<before/>');
  if (set.getChild('index')) throw new StanzaError('feature-not-implemented', 'Paging by index is not offered; use <after/> or <before/>.');
}

/** The form a client asks for with `<iq type='get'><query xmlns='urn:xmpp:mam:2'/></iq>` (XEP-0313 §4.1.1). */
export function queryForm(): Element {
  return xml(
    'query',
    { xmlns: NS_MAM },
    xml(
      'x',
      { xmlns: NS_DATA, type: 'form' },
      xml('field', { type: 'hidden', var: 'FORM_TYPE' }, xml('value', {}, NS_MAM)),
      xml('field', { type: 'jid-single', var: 'with' }),
      xml('field', { type: 'text-single', var: 'start' }),
      xml('field', { type: 'text-single', var: 'end' }),
      xml('field', { type: 'text-single', var: 'before-id' }),
      xml('field', { type: 'text-single', var: 'after-id' }),
      xml('field', { type: 'list-multi', var: 'ids' }),
    ),
  );
}

/** XEP-0059 §2.6 result set of a page: first and last ids and the count of every match. */
export function resultSet(page: { first?: string; last?: string; count: number }): Element {
  const set = xml('set', { xmlns: NS_RSM });
  if (page.first !== undefined) set.append(xml('first', {}, page.first));
  if (page.last !== undefined) set.append(xml('last', {}, page.last));
  set.append(xml('count', {}, String(page.count)));
  return set;
}
