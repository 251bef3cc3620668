// Archiving preferences (XEP-0313 §6.1): a default of always, never or roster, and JIDs always or never archived.
// Prosody: plugins/mod_mam/mamprefs.lua and mamprefsxml.lua.

import { StanzaError, parseJid, xml, type Element } from '../../api.js';
import { NS_MAM } from './query.js';

export type DefaultRule = 'always' | 'never' | 'roster';

export interface MamPrefs {
  default: DefaultRule;
  always: string[];
  never: string[];
}

/** Prosody's default_archive_policy = true: everything is archived until the account says otherwise. */
export const DEFAULT_PREFS: Readonly<MamPrefs> = Object.freeze({ default: 'always', always: [], never: [] });

/** Most JIDs one list may hold: preferences are a short list of people, not a roster copy. */
export const MAX_PREF_JIDS = 1000;

const RULES = new Set<string>(['always', 'never', 'roster']);

/**
 * Whether a message with `other` (a bare JID) is archived for the account: its own rule for that JID (never wins over
 * always), else its default; `roster` when that depends on whether `other` is on its roster (the caller asks, so the
 * usual answer comes without a promise).
 */
export function archiveRule(prefs: MamPrefs, other: string): boolean | 'roster' {
  if (prefs.never.includes(other)) return false;
  if (prefs.always.includes(other)) return true;
  if (prefs.default === 'roster') return 'roster';
  return prefs.default === 'always';
}

function jidList(parent: Element | undefined, what: string): string[] {
  if (!parent) return [];
  const jids = parent.getChildren('jid');
  if (jids.length > MAX_PREF_JIDS) throw new StanzaError('not-acceptable', `<${what}/> holds at most ${MAX_PREF_JIDS} JIDs.`);
  const out = new Set<string>();
  for (const el of jids) {
    const parsed = parseJid(el.getText().trim());
    if (!parsed.ok) throw new StanzaError('jid-malformed', `<${what}/>: ${parsed.error}`);
    out.add(parsed.jid.full);
  }
  return [...out];
}

/** Read a prefs set (§6.1.2); `default` is required. Throws StanzaError for what it refuses. */
export function prefsFromElement(el: Element): MamPrefs {
  const rule = el.attrs.default;
  if (typeof rule !== 'string' || !RULES.has(rule)) throw new StanzaError('bad-request', "<prefs/> needs default='always', 'never' or 'roster'.");
  const always = jidList(el.getChild('always'), 'always');
  const never = jidList(el.getChild('never'), 'never');
  return { default: rule as DefaultRule, always: always.filter((j) => !never.includes(j)), never };
}

export function prefsElement(prefs: MamPrefs): Element {
  const list = (name: string, jids: string[]): Element => xml(name, {}, ...jids.map((j) => xml('jid', {}, j)));
  return xml('prefs', { xmlns: NS_MAM, default: prefs.default }, list('always', prefs.always), list('never', prefs.never));
}

/** A stored value, checked (a document written by an older or broken version reads as the default). */
export function storedPrefs(value: unknown): MamPrefs {
  if (typeof value !== 'object' || value === null) return DEFAULT_PREFS;
  const v = value as Partial<MamPrefs>;
  if (typeof v.default !== 'string' || !RULES.has(v.default)) return DEFAULT_PREFS;
  const strings = (a: unknown): string[] => (Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : []);
  return { default: v.default, always: strings(v.always), never: strings(v.never) };
}
