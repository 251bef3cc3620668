// The pure core of post_msg: one HTTP request's content → the <message/> stanza to send, or a problem.
// Port of handle_post in Prosody's mod_post_msg.lua; no sockets, no Koa, no host state (tested directly).

import { xml, findIllegalXmlChar, describeCodePoint, StanzaError, type Element, type Jid, type Outcome } from '../host/api.js';
import { problem, ok, quote, type Problem, type Result } from './problem.js';
import { parseMediaType } from './media-type.js';
import { parsePayload, type Fields } from './payload.js';
import { buildXhtmlIm } from './xhtml.js';
import { decodePathRecipient, resolveRecipient } from './address.js';

export type MessageType = 'chat' | 'normal' | 'headline' | 'groupchat';

export interface MessageInput {
  /** The Content-Type header, if any. */
  contentType: string | undefined;
  /** The raw request body. */
  body: Buffer;
  /** The path after `<base>/`, still percent-encoded; '' when the request was to the base path. */
  pathRecipient: string;
  /** The authenticated account: bare JID, or full when the credentials carried a resource. */
  account: string;
  /** The serving virtual host. */
  host: string;
  /** The stanza id to use (fresh per request; passed in to keep this function pure). */
  id: string;
  isLocalHost(domain: string): boolean;
  /** The host federates (s2s loaded): a recipient on another server is sent there (post_msg.md §9). */
  isFederated?: boolean;
  /** Is this domain a multi-user chat service of this server (post_msg.md §10)? */
  isRoomService?(domain: string): boolean;
}

export interface MessagePlan {
  stanza: Element;
  to: Jid;
  type: MessageType;
  /** The recipient is a room of a local MUC service: the message is posted there, under `nick` if given. */
  isRoom: boolean;
  nick?: string;
}

const TYPES = new Set<string>(['chat', 'normal', 'headline']);

/** Decide what to send. Never throws for any input; every failure is a 400, 415 or 422 problem. */
export function buildMessage(input: MessageInput): Result<MessagePlan> {
  const media = parseMediaType(input.contentType);
  if (!media.ok) return media;
  const payload = parsePayload(media.value, input.body);
  if (!payload.ok) return payload;
  const fields = payload.value;

  if (fields.type !== undefined && fields.type !== 'groupchat' && !TYPES.has(fields.type)) {
    return problem(400, `The message type ${quote(fields.type)} is not allowed; use chat, normal or headline (groupchat for a room).`);
  }

  const recipient = chooseRecipient(fields, input);
  if (!recipient.ok) return recipient;
  // §10: a room of a local MUC service takes groupchat messages only, and groupchat goes only to such a room.
  const isRoom = input.isRoomService?.(recipient.value.domain) === true;
  const type = fields.type ?? (isRoom ? 'groupchat' : 'chat');
  if (isRoom && type !== 'groupchat') {
    return problem(422, `${recipient.value.bare} is a multi-user chat room, which takes only groupchat messages; leave out type or give groupchat.`);
  }
  if (isRoom && recipient.value.resource !== null) {
    return problem(422, `${recipient.value.full} is an occupant of a room; post to the room itself, ${recipient.value.bare}.`);
  }
  if (!isRoom && type === 'groupchat') {
    return problem(422, `type "groupchat" needs a multi-user chat room of this server, and ${recipient.value.full} is not one; use chat, normal or headline.`);
  }

  for (const name of ['body', 'subject'] as const) {
    const illegal = checkXmlText(name, fields[name]);
    if (illegal) return { ok: false, problem: illegal };
  }
  const html = fields.html === undefined || fields.html === '' ? ok(undefined) : buildXhtmlIm(fields.html);
  if (!html.ok) return html;

  const text = fields.body !== undefined && fields.body !== '' ? fields.body : html.value?.text;
  if (text === undefined) {
    return problem(422, 'There is nothing to send: give a non-empty body (the request body for text/plain, the field "body" otherwise) or html.');
  }

  const stanza = xml(
    'message',
    { from: input.account, to: recipient.value.full, type, id: input.id },
    xml('body', {}, text),
    fields.subject !== undefined ? xml('subject', {}, fields.subject) : null,
    html.value?.element ?? null,
  );
  return ok({ stanza, to: recipient.value, type: type as MessageType, isRoom, nick: isRoom ? fields.nick : undefined });
}

function chooseRecipient(fields: Fields, input: MessageInput): Result<Jid> {
  let raw: string;
  let field: string;
  if (fields.to !== undefined) {
    raw = fields.to;
    field = 'field "to"';
  } else {
    const decoded = decodePathRecipient(input.pathRecipient);
    if (decoded === undefined) return problem(400, `The recipient in the path ${quote(input.pathRecipient)} is not valid percent-encoded UTF-8.`);
    raw = decoded;
    field = 'path';
  }
  if (raw === '' && field === 'path') {
    return problem(422, 'There is no recipient: POST to <base>/<user> or give the field "to".');
  }
  const resolved = resolveRecipient(raw, input.host, (d) => input.isLocalHost(d) || input.isRoomService?.(d) === true, field, input.isFederated === true);
  if (!resolved.ok) return resolved;
  return ok(resolved.value.jid);
}

function checkXmlText(name: string, value: string | undefined): Problem | undefined {
  if (value === undefined) return undefined;
  const illegal = findIllegalXmlChar(value);
  if (!illegal) return undefined;
  return {
    status: 400,
    detail: `The ${name} contains the character ${describeCodePoint(illegal.codePoint)} at index ${illegal.index}, which XML 1.0 does not allow in a message; remove it.`,
  };
}

/** The 201 answer: `{"id", "to", "outcome"}`. */
export function createdResponse(plan: MessagePlan, outcome: Outcome | 'posted'): { status: 201; body: { id: string; to: string; outcome: Outcome | 'posted' } } {
  return { status: 201, body: { id: plan.stanza.attrs.id!, to: plan.to.full, outcome } };
}

/**
 * Map a routing failure (RFC 6120 §8.3.3 condition) to an HTTP problem. `internal` marks the ones
 * whose cause belongs in the log and not in the answer.
 */
export function deliveryProblem(err: StanzaError, to: string): Problem & { isInternal: boolean } {
  switch (err.condition) {
    case 'item-not-found':
    case 'recipient-unavailable':
      return { status: 404, detail: `The recipient ${to} does not exist or cannot receive messages.`, isInternal: false };
    // What a recipient answers when it takes no messages from this sender, a block included (XEP-0191 §3.5): final, not a retry.
    case 'service-unavailable':
      return { status: 403, detail: `The recipient ${to} does not accept messages from this account (service-unavailable).`, isInternal: false };
    case 'resource-constraint':
      // 507 (RFC 4918 §11.5): the message cannot be stored (the recipient's offline quota is full). Not 503 with a
      // Retry-After: retrying soon fails the same way until the recipient comes online and empties its queue.
      return { status: 507, detail: err.text ?? `The server cannot store the message to ${to} now.`, isInternal: false };
    case 'forbidden':
    case 'not-allowed':
    case 'not-acceptable':
    case 'not-authorized':
    case 'policy-violation':
      return { status: 403, detail: `The server refused the message to ${to} (${err.condition})${err.text ? `: ${err.text}` : '.'}`, isInternal: false };
    // post_msg.md §9: the remote server could not be reached or authenticated (the text names its domain and why):
    // remote-server-not-found, or remote-server-timeout of type cancel (RFC 6120 §8.3.3.17: TLS, SASL or dialback
    // failed). Only a timeout proper (type wait, remote_timeout or s2s_timeout) is 504.
    case 'remote-server-not-found':
      return { status: 502, detail: `The message to ${to} was not sent: ${err.text ?? 'its server cannot be reached.'}`, isInternal: false };
    case 'remote-server-timeout':
      if (err.type === 'cancel') return { status: 502, detail: `The message to ${to} was not sent: ${err.text ?? 'its server could not be authenticated.'}`, isInternal: false };
      return { status: 504, detail: `The message to ${to} was not sent: ${err.text ?? 'its server did not answer in time.'}`, isInternal: false };
    case 'jid-malformed':
    case 'bad-request':
      return { status: 400, detail: `The server refused the message as malformed (${err.condition}).`, isInternal: false };
    default:
      return { status: 500, detail: 'The server failed to route the message; the cause is in the server log.', isInternal: true };
  }
}
