// Content-Type parsing for the three payload formats (RFC 9110 §8.3.1 media-type grammar).
// DIFF: Prosody compares the whole header string, so `text/plain; charset=utf-8` is a 415 there; here parameters are allowed.

import { problem, ok, quote, type Result } from './problem.js';

export type PayloadFormat = 'text' | 'form' | 'json';

export interface MediaType {
  format: PayloadFormat;
  /** The charset parameter, lowercased, when one was given. */
  charset: 'utf-8' | 'us-ascii' | undefined;
}

export const ACCEPTED_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'application/json'] as const;
/** Value of `Accept-Post` (and of the 415 answer's header): the three formats, and Markdown (§14). */
export const ACCEPT_POST = [...ACCEPTED_TYPES, 'text/markdown'].join(', ');

const FORMATS: Record<string, PayloadFormat> = {
  'text/plain': 'text',
  // §14: Markdown is text to the payload parser; compose.ts renders it.
  'text/markdown': 'text',
  'application/x-www-form-urlencoded': 'form',
  'application/json': 'json',
};

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
const TYPE_RE = new RegExp(`^(${TOKEN})/(${TOKEN})`);
const PARAM_RE = new RegExp(`^[ \\t]*;[ \\t]*(?:(${TOKEN})=(${TOKEN}|${QUOTED}))?`);

const UNSUPPORTED_DETAIL = `Content-Type must be ${ACCEPTED_TYPES.slice(0, 2).join(', ')} or ${ACCEPTED_TYPES[2]}`;

function unsupported(detail: string): { ok: false; problem: { status: number; detail: string; headers: Record<string, string> } } {
  return problem(415, detail, { 'Accept-Post': ACCEPT_POST }) as ReturnType<typeof unsupported>;
}

// A client sends the same Content-Type on every request: answers for recent headers are kept (frozen).
const MEMO_ENTRIES = 64;
const MEMO_MAX_HEADER = 128;
const memo = new Map<string, Result<MediaType>>();

/** Parse a Content-Type header into one of the three formats, or a 415 problem carrying `Accept-Post`. */
export function parseMediaType(header: string | undefined): Result<MediaType> {
  if (header === undefined || header.length > MEMO_MAX_HEADER) return parseUncached(header);
  let result = memo.get(header);
  if (result === undefined) {
    result = deepFreeze(parseUncached(header));
    if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
    memo.set(header, result);
  }
  return result;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function parseUncached(header: string | undefined): Result<MediaType> {
  if (header === undefined || header.trim() === '') return unsupported(`${UNSUPPORTED_DETAIL}; the request has none.`);
  const value = header.replace(/^[ \t]+|[ \t]+$/g, '');
  const head = TYPE_RE.exec(value);
  if (!head) return unsupported(`${UNSUPPORTED_DETAIL}; ${quote(header)} is not a media type.`);
  const essence = `${head[1]}/${head[2]}`.toLowerCase();
  const charsets: string[] = [];
  let rest = value.slice(head[0].length);
  while (rest.length > 0) {
    const param = PARAM_RE.exec(rest);
    if (!param || param[0].length === 0) return unsupported(`${UNSUPPORTED_DETAIL}; ${quote(header)} is not a valid media type.`);
    if (param[1] !== undefined && param[1].toLowerCase() === 'charset') charsets.push(unquote(param[2]!).toLowerCase());
    rest = rest.slice(param[0].length);
  }
  const format = FORMATS[essence];
  if (!format) return unsupported(`${UNSUPPORTED_DETAIL}, not ${essence}.`);
  if (charsets.length > 1) return unsupported('Give the charset parameter at most once (utf-8 or us-ascii).');
  const charset = charsets[0];
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'us-ascii') {
    return unsupported(`The charset must be utf-8 (or us-ascii), not ${quote(charset)}.`);
  }
  return ok({ format, charset });
}

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}
