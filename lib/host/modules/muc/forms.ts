// Data forms (XEP-0004) for rooms: muc#roomconfig (XEP-0045 §10.2), muc#register (§7.10), muc#roominfo (§6.4).
// Prosody: plugins/muc/muc.lib.lua get_form_layout / process_form, util/dataforms.lua.

import { xml, type Element } from '../../api.js';
import type { RoomConfig } from './room.js';

export const NS_DATA = 'jabber:x:data';
export const FORM_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
export const FORM_REGISTER = 'http://jabber.org/protocol/muc#register';
export const FORM_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';

type FieldValue = string | boolean | number | undefined;

export function field(name: string, type: string, value: FieldValue, label?: string, options?: readonly string[]): Element {
  const f = xml('field', { var: name, type, label });
  for (const option of options ?? []) f.append(xml('option', { label: option }, xml('value', {}, option)));
  if (value !== undefined) f.append(xml('value', {}, typeof value === 'boolean' ? (value ? '1' : '0') : String(value)));
  return f;
}

export function form(type: 'form' | 'result', formType: string, title: string | undefined, fields: Element[]): Element {
  return xml('x', { xmlns: NS_DATA, type }, title ? xml('title', {}, title) : null, field('FORM_TYPE', 'hidden', formType), ...fields);
}

/** The values of a submitted form by field var; undefined for no form (XEP-0004 §3.1: type submit). */
export function submitted(x: Element | undefined): Map<string, string[]> | undefined {
  if (!x) return undefined;
  const values = new Map<string, string[]>();
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var;
    if (typeof name !== 'string') continue;
    values.set(name, f.getChildren('value').map((v) => v.text()));
  }
  return values;
}

/** XEP-0004 §3.3 boolean: 1/true or 0/false; anything else is undefined. */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}

export function configForm(config: RoomConfig, maxHistory: number): Element {
  return form('form', FORM_ROOMCONFIG, 'Room configuration', [
    field('muc#roomconfig_roomname', 'text-single', config.name, 'Title'),
    field('muc#roomconfig_roomdesc', 'text-single', config.description, 'Description'),
    field('muc#roomconfig_persistentroom', 'boolean', config.persistent, 'Persistent (kept when empty)'),
    field('muc#roomconfig_publicroom', 'boolean', config.public, 'Listed in the directory'),
    field('muc#roomconfig_membersonly', 'boolean', config.membersOnly, 'Only members may enter'),
    field('muc#roomconfig_moderatedroom', 'boolean', config.moderated, 'Moderated: only members and participants with voice speak'),
    field('muc#roomconfig_passwordprotectedroom', 'boolean', config.password !== '', 'Password required to enter'),
    field('muc#roomconfig_roomsecret', 'text-private', config.password, 'Password'),
    field('muc#roomconfig_whois', 'list-single', config.whois, 'Who may see real JIDs', ['moderators', 'anyone']),
    field('muc#roomconfig_maxusers', 'text-single', config.maxUsers, 'Most occupants (0: the service limit)'),
    field('muc#roomconfig_historylength', 'text-single', config.historyLength, `Messages of history kept (at most ${maxHistory})`),
    field('muc#roomconfig_changesubject', 'boolean', config.changeSubject, 'Occupants may change the subject'),
    field('muc#roomconfig_allowinvites', 'boolean', config.allowInvites, 'Occupants may invite others'),
  ]);
}

/**
 * Apply a submitted muc#roomconfig form to a copy of `config`; a value that is not what the field takes is an error
 * text (the owner gets not-acceptable), never a silent default.
 */
export function applyConfigForm(config: RoomConfig, values: Map<string, string[]>, limits: { maxHistory: number; maxOccupants: number }): { ok: true; config: RoomConfig } | { ok: false; text: string } {
  const next: RoomConfig = { ...config };
  const formType = values.get('FORM_TYPE')?.[0];
  if (formType !== undefined && formType !== FORM_ROOMCONFIG) return { ok: false, text: `FORM_TYPE must be ${FORM_ROOMCONFIG}.` };
  const one = (name: string): string | undefined => values.get(name)?.[0];
  const bool = (name: string, set: (v: boolean) => void): string | undefined => {
    if (!values.has(name)) return undefined;
    const v = parseBoolean(one(name));
    if (v === undefined) return `${name} must be a boolean.`;
    set(v);
    return undefined;
  };
  const int = (name: string, max: number, set: (v: number) => void): string | undefined => {
    if (!values.has(name)) return undefined;
    const raw = one(name) ?? '';
    if (raw === '' || raw === 'none') {
      set(0);
      return undefined;
    }
    if (!/^\d{1,9}$/.test(raw) || Number(raw) > max) return `${name} must be a whole number from 0 to ${max}.`;
    set(Number(raw));
    return undefined;
  };
  const text = (name: string, set: (v: string) => void): string | undefined => {
    if (!values.has(name)) return undefined;
    const v = one(name) ?? '';
    if (v.length > 1024) return `${name} is longer than 1024 characters.`;
    set(v);
    return undefined;
  };
  let isPasswordProtected: boolean | undefined;
  const problems = [
    text('muc#roomconfig_roomname', (v) => (next.name = v)),
    text('muc#roomconfig_roomdesc', (v) => (next.description = v)),
    bool('muc#roomconfig_persistentroom', (v) => (next.persistent = v)),
    bool('muc#roomconfig_publicroom', (v) => (next.public = v)),
    bool('muc#roomconfig_membersonly', (v) => (next.membersOnly = v)),
    bool('muc#roomconfig_moderatedroom', (v) => (next.moderated = v)),
    bool('muc#roomconfig_passwordprotectedroom', (v) => (isPasswordProtected = v)),
    text('muc#roomconfig_roomsecret', (v) => (next.password = v)),
    bool('muc#roomconfig_changesubject', (v) => (next.changeSubject = v)),
    bool('muc#roomconfig_allowinvites', (v) => (next.allowInvites = v)),
    int('muc#roomconfig_maxusers', limits.maxOccupants, (v) => (next.maxUsers = v)),
    int('muc#roomconfig_historylength', limits.maxHistory, (v) => (next.historyLength = v)),
  ].filter((p): p is string => p !== undefined);
  if (values.has('muc#roomconfig_whois')) {
    const whois = one('muc#roomconfig_whois');
    if (whois === 'moderators' || whois === 'anyone') next.whois = whois;
    else problems.push('muc#roomconfig_whois must be moderators or anyone.');
  }
  if (problems.length > 0) return { ok: false, text: problems.join(' ') };
  if (isPasswordProtected === false) next.password = '';
  else if (isPasswordProtected === true && next.password === '') return { ok: false, text: 'A password-protected room needs muc#roomconfig_roomsecret.' };
  return { ok: true, config: next };
}

export function registerForm(nick: string | undefined): Element {
  return form('form', FORM_REGISTER, 'Register a nickname in this room', [field('muc#register_roomnick', 'text-single', nick, 'Nickname')]);
}

export function roomInfoForm(config: RoomConfig, occupants: number, subject: string | undefined): Element {
  return form('result', FORM_ROOMINFO, undefined, [
    field('muc#roominfo_description', 'text-single', config.description, 'Description'),
    field('muc#roominfo_occupants', 'text-single', occupants, 'Number of occupants'),
    field('muc#roominfo_subject', 'text-single', subject ?? '', 'Subject'),
    field('muc#roomconfig_changesubject', 'boolean', config.changeSubject, 'Occupants may change the subject'),
  ]);
}
