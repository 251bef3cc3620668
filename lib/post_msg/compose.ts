// The composing fields of post_msg (post_msg.md §13–14): `to` as an array, `title`, Markdown (`text/markdown` or
// `format: markdown`) and `url` attachments turn one request into the single-message JSON payloads that
// message.ts builds, one per recipient and part. Pure; a request without them is left as it is.

import { decodeUtf8, parseForm } from './payload.js';
import { markdownToHtml, markdownToStyled } from './markdown.js';
import { problem, ok, type Result } from './problem.js';

/** One message to build: a JSON payload for buildMessage, with the path recipient or not, and an attachment. */
export interface ComposedPart {
  contentType: 'application/json';
  body: Buffer;
  /** Use the request's path recipient (the payload has no `to`). */
  usePath: boolean;
  /** `jabber:x:oob` URL to attach (XEP-0066). */
  oob?: string;
}

/** `plain`: nothing to compose, the request goes as it is. */
export type Composed = { kind: 'plain' } | { kind: 'composed'; parts: ComposedPart[] };

const MARKDOWN_RE = /^\s*text\/markdown\s*(;|$)/i;
const PASSED = ['type', 'subject', 'html', 'nick'] as const;

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The request's fields, when it uses a composing field; undefined for a plain request or a body message.ts refuses. */
function readFields(contentType: string | undefined, body: Buffer): Record<string, unknown> | undefined {
  if (contentType !== undefined && MARKDOWN_RE.test(contentType)) {
    const text = decodeUtf8(body);
    return text === undefined ? undefined : { body: text, format: 'markdown' };
  }
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = type === 'application/json' || type === 'application/x-www-form-urlencoded' ? decodeUtf8(body) : undefined;
  if (text === undefined) return undefined;
  if (type === 'application/json') {
    try {
      const value = JSON.parse(text) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  const parsed = parseForm(text);
  if (!parsed.ok || !text.includes('=')) return undefined;
  const extra = new URLSearchParams(text);
  const fields: Record<string, unknown> = { ...parsed.value };
  for (const name of ['title', 'format', 'url']) if (extra.has(name)) fields[name] = extra.get(name);
  return fields;
}

/** Split a request into its messages (§13, §14); `plain` when it uses none of the composing fields. */
export function composeRequest(contentType: string | undefined, body: Buffer, maxRecipients: number, hasPathRecipient: boolean): Result<Composed> {
  const fields = readFields(contentType, body);
  if (fields === undefined) return ok({ kind: 'plain' });
  const uses = Array.isArray(fields.to) || ['title', 'format', 'url'].some((k) => fields[k] !== undefined && fields[k] !== null);
  if (!uses) return ok({ kind: 'plain' });

  for (const name of ['title', 'format', 'url', 'body'] as const) {
    const v = fields[name];
    if (v !== undefined && v !== null && typeof v !== 'string') return problem(400, `The field "${name}" must be a string (or null).`);
  }
  const format = (fields.format as string | null | undefined) ?? 'text';
  if (format !== 'text' && format !== 'markdown') return problem(400, `The field "format" is "text" or "markdown", not ${JSON.stringify(format)}.`);

  let recipients: Array<string | undefined> = [undefined];
  if (Array.isArray(fields.to)) {
    const list = fields.to as unknown[];
    if (list.length === 0 || list.length > maxRecipients) return problem(400, `"to" lists 1 to ${maxRecipients} recipients (max_recipients).`);
    if (!list.every((t) => typeof t === 'string')) return problem(400, '"to" is a string or an array of strings (JIDs).');
    // §13: the path recipient, if any, comes first; a string `to` replaces it as in §3.
    recipients = [...(hasPathRecipient ? [undefined] : []), ...(list as string[])];
  } else if (fields.to !== undefined && fields.to !== null && typeof fields.to !== 'string') {
    return problem(400, 'The field "to" is a string or an array of strings (JIDs).');
  }

  const title = (fields.title as string | null | undefined) ?? undefined;
  let text = (fields.body as string | null | undefined) ?? undefined;
  let html = typeof fields.html === 'string' ? fields.html : undefined;
  if (format === 'markdown' && text !== undefined) {
    html ??= markdownToHtml(text);
    text = markdownToStyled(text);
  }
  if (title !== undefined && title !== '') {
    text = text === undefined || text === '' ? title : `${title}\n${text}`;
    if (html !== undefined && !/^\s*<body[\s>]/i.test(html)) html = `<p><strong>${escapeXml(title)}</strong></p>${html}`;
  }

  const url = (fields.url as string | null | undefined) ?? undefined;
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) return problem(400, `The field "url" must be an http or https URL, not ${JSON.stringify(url.slice(0, 80))}.`);
  }

  const shared: Record<string, string> = {};
  for (const name of PASSED) if (typeof fields[name] === 'string') shared[name] = fields[name] as string;
  // §14: with a body too, two messages, the text first; the attachment's body is its URL (Conversations, Dino).
  const payloads: Array<{ fields: Record<string, string>; oob?: string }> = [];
  if (text !== undefined || url === undefined) payloads.push({ fields: { ...shared, ...(text !== undefined ? { body: text } : {}), ...(html !== undefined ? { html } : {}) } });
  if (url !== undefined) {
    const { html: _html, ...rest } = shared;
    payloads.push({ fields: { ...rest, body: url }, oob: url });
  }

  const parts: ComposedPart[] = [];
  const single = !Array.isArray(fields.to);
  for (const recipient of recipients) {
    for (const p of payloads) {
      const to = single ? (typeof fields.to === 'string' ? fields.to : undefined) : recipient;
      const payload = to === undefined ? p.fields : { ...p.fields, to };
      parts.push({ contentType: 'application/json', body: Buffer.from(JSON.stringify(payload)), usePath: to === undefined, ...(p.oob ? { oob: p.oob } : {}) });
    }
  }
  return ok({ kind: 'composed', parts });
}
