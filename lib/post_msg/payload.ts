// The three payload formats of post_msg: text/plain, application/x-www-form-urlencoded, application/json.
// Port of the payload handling in Prosody's mod_post_msg.lua (handle_post), strict where that module is lax.

import { problem, ok, quote, type Result } from './problem.js';
import type { MediaType } from './media-type.js';

/** The fields a payload may carry; everything else is ignored (forward compatible). */
export interface Fields {
  to?: string;
  type?: string;
  body?: string;
  subject?: string;
  html?: string;
  /** The nick to post under in a room (post_msg.md §10). */
  nick?: string;
}

export const FIELD_NAMES = ['to', 'type', 'body', 'subject', 'html', 'nick'] as const;
type FieldName = (typeof FIELD_NAMES)[number];

const isFieldName = (name: string): name is FieldName => (FIELD_NAMES as readonly string[]).includes(name);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode bytes as strict UTF-8 (a leading BOM is dropped); undefined when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Turn the request body into fields. Never throws; every failure is a 400 naming what to fix. */
export function parsePayload(media: MediaType, body: Buffer): Result<Fields> {
  if (media.charset === 'us-ascii') {
    const index = body.findIndex((byte) => byte > 0x7f);
    if (index !== -1) return problem(400, `The body is declared us-ascii but byte ${index} is not ASCII; send UTF-8 with charset=utf-8.`);
  }
  const text = decodeUtf8(body);
  if (text === undefined) return problem(400, 'The request body is not valid UTF-8; send the text encoded as UTF-8.');
  switch (media.format) {
    case 'text':
      return ok({ body: text });
    case 'form':
      return parseForm(text);
    case 'json':
      return parseJson(text);
  }
}

/**
 * application/x-www-form-urlencoded (WHATWG URL §5.1), strictly: a malformed %-escape or
 * escaped bytes that are not UTF-8 are a 400 instead of being passed on mangled.
 * DIFF: a body with no `=` at all is the message text itself, verbatim, so that
 * `curl -d 'db1 is down'` (which sends this Content-Type) works; Prosody sends an empty message.
 */
export function parseForm(text: string): Result<Fields> {
  if (!text.includes('=')) return ok({ body: text });
  const fields: Fields = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const name = formDecode(rawName);
    if (name === undefined) return problem(400, `The form field name ${quote(rawName)} is not valid percent-encoded UTF-8.`);
    if (!isFieldName(name)) continue;
    const value = formDecode(rawValue);
    if (value === undefined) return problem(400, `The form field "${name}" is not valid percent-encoded UTF-8.`);
    if (fields[name] !== undefined) return problem(400, `The form field "${name}" is given more than once; give it once.`);
    fields[name] = value;
  }
  return ok(fields);
}

function formDecode(raw: string): string | undefined {
  const plus = raw.replace(/\+/g, ' ');
  if (!plus.includes('%')) return plus;
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < plus.length; ) {
    if (plus[i] === '%') {
      const hex = plus.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 3;
      continue;
    }
    const cp = plus.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    for (const b of encoder.encode(ch)) bytes.push(b);
    i += ch.length;
  }
  return decodeUtf8(Uint8Array.from(bytes));
}

/** application/json: an object whose known keys are strings or null (null means absent). */
export function parseJson(text: string): Result<Fields> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return problem(400, `The body is not valid JSON (${(err as Error).message}); send an object such as {"body": "hello"}.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return problem(400, `The JSON body must be an object such as {"body": "hello"}, not ${describeJson(value)}.`);
  }
  const record = value as Record<string, unknown>;
  const fields: Fields = {};
  for (const name of FIELD_NAMES) {
    if (!Object.hasOwn(record, name)) continue;
    const v = record[name];
    if (v === null) continue;
    if (typeof v !== 'string') return problem(400, `The JSON key "${name}" must be a string (or null), not ${describeJson(v)}.`);
    fields[name] = v;
  }
  return ok(fields);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
