// The OpenAPI 3.1 description of post_msg and the host's token routes (post_msg.md §15), served at B/openapi.json
// without credentials. Built per request from the base paths this host uses. DIFF: Prosody's module has none.

import type { HttpContext, ModuleApi } from '../host/api.js';
import { tokenService } from './tokens.js';

export interface OpenApiPaths {
  /** post_msg's base path, e.g. `/msg`. */
  base: string;
  /** The tokens app's base path, e.g. `/tokens`; undefined when tokenauth is not loaded. */
  tokens?: string;
}

const problemRef = { $ref: '#/components/responses/Problem' };
const problems = (...codes: number[]): Record<string, unknown> => Object.fromEntries(codes.map((c) => [String(c), problemRef]));

const MESSAGE_FIELDS = {
  to: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }], description: 'Recipient JID (replaces the path recipient), or several (§13).' },
  type: { type: 'string', enum: ['chat', 'normal', 'headline', 'groupchat'] },
  body: { type: 'string' },
  subject: { type: 'string' },
  html: { type: 'string', description: 'XHTML-IM body content, held to the whitelist.' },
  nick: { type: 'string', description: 'Nick in a room (§10).' },
  title: { type: 'string', description: 'First line of the body (§14).' },
  format: { type: 'string', enum: ['text', 'markdown'] },
  url: { type: 'string', format: 'uri', description: 'http(s) attachment, sent as jabber:x:oob (§14).' },
};

/** The document for one host. */
export function openApiDocument(paths: OpenApiPaths): Record<string, unknown> {
  const send = {
    summary: 'Send a message',
    security: [{ basicAuth: [] }, { bearerAuth: [] }],
    parameters: [
      { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' }, description: 'Safe retries (§12).' },
      { name: 'dry_run', in: 'query', required: false, schema: { type: 'string', enum: ['1', 'true'] }, description: 'Check everything, send nothing (§15).' },
    ],
    requestBody: {
      required: true,
      content: {
        'text/plain': { schema: { type: 'string' } },
        'text/markdown': { schema: { type: 'string' } },
        'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/MessageFields' } },
        'application/json': { schema: { $ref: '#/components/schemas/MessageFields' } },
      },
    },
    responses: {
      '200': { description: 'Dry run: the stanzas that would be sent.', content: { 'application/json': { schema: { $ref: '#/components/schemas/DryRun' } } } },
      '201': {
        description: 'Sent.',
        headers: { 'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] }, description: 'A replayed answer (§12).' } },
        content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Sent' }, { $ref: '#/components/schemas/SentMany' }] } } },
      },
      '401': {
        description: 'Missing or wrong credentials, or an unknown, revoked or expired token.',
        headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
      '429': {
        description: 'Rate limit or login throttle.',
        headers: { 'Retry-After': { schema: { type: 'integer' } } },
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
      ...problems(400, 403, 404, 409, 413, 415, 422, 500, 502, 504, 507),
    },
  };
  const recipient = { name: 'recipient', in: 'path', required: true, schema: { type: 'string' }, description: 'user, user@host or a full JID.' };
  const doc: Record<string, unknown> = {
    openapi: '3.1.0',
    info: { title: 'xmppd post_msg', version: '1', description: 'Send an XMPP message with one HTTP request (post_msg.md).' },
    paths: {
      [paths.base]: { post: { ...send, operationId: 'send' } },
      [`${paths.base}/{recipient}`]: { post: { ...send, operationId: 'sendTo', parameters: [recipient, ...send.parameters] } },
      [`${paths.base}/openapi.json`]: {
        get: { operationId: 'openapi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } },
      },
      ...(paths.tokens ? tokenPaths(paths.tokens) : {}),
    },
    components: {
      securitySchemes: {
        basicAuth: { type: 'http', scheme: 'basic', description: 'An account and its password; with an empty user, an app token (§11).' },
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An app token (§11).' },
      },
      schemas: {
        MessageFields: { type: 'object', properties: MESSAGE_FIELDS },
        Sent: { type: 'object', required: ['id', 'to', 'outcome'], properties: { id: { type: 'string' }, to: { type: 'string' }, outcome: { type: 'string', enum: ['delivered', 'stored', 'discarded', 'sent', 'posted'] } } },
        SentMany: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', items: { $ref: '#/components/schemas/Sent' } } } },
        DryRun: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', items: { type: 'object', required: ['to', 'stanza'], properties: { to: { type: 'string' }, stanza: { type: 'string' } } } } } },
        Problem: { type: 'object', required: ['type', 'title', 'status', 'detail'], properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' } } },
        TokenInfo: {
          type: 'object',
          required: ['id', 'name', 'account', 'created'],
          properties: { id: { type: 'string' }, name: { type: 'string' }, account: { type: 'string' }, to: { type: 'array', items: { type: 'string' } }, created: { type: 'string', format: 'date-time' }, expires: { type: 'string', format: 'date-time' } },
        },
        TokenCreated: { allOf: [{ $ref: '#/components/schemas/TokenInfo' }, { type: 'object', required: ['token'], properties: { token: { type: 'string' } } }] },
        TokenList: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: { $ref: '#/components/schemas/TokenInfo' } } } },
        TokenRequest: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string' }, to: { type: 'array', items: { type: 'string' } }, expires: { type: 'integer', minimum: 1 } } },
      },
      responses: {
        Problem: { description: 'A problem (RFC 9457).', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      },
    },
  };
  return doc;
}

function tokenPaths(base: string): Record<string, unknown> {
  const security = [{ basicAuth: [] }];
  return {
    [base]: {
      get: { operationId: 'listTokens', summary: "The account's tokens (never a secret)", security, responses: { '200': { description: 'The tokens.', content: { 'application/json': { schema: { $ref: '#/components/schemas/TokenList' } } } }, ...problems(401, 403, 429) } },
      post: {
        operationId: 'createToken',
        summary: 'Mint a token (password only; a token gets 403)',
        security,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TokenRequest' } } } },
        responses: { '201': { description: 'The token, shown once.', content: { 'application/json': { schema: { $ref: '#/components/schemas/TokenCreated' } } } }, ...problems(400, 401, 403, 409, 413, 415, 429) },
      },
    },
    [`${base}/{id}`]: {
      delete: {
        operationId: 'revokeToken',
        summary: 'Revoke one of the account\'s tokens',
        security,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'Revoked.' }, ...problems(401, 403, 404, 429) },
      },
    },
  };
}

/** The base path of the host's tokens app, when tokenauth is loaded (http_paths may have moved it). */
export function tokensPath(module: ModuleApi): string | undefined {
  if (tokenService(module) === undefined) return undefined;
  try {
    return module.depends('http').path(module.host, 'tokens', '/tokens');
  } catch {
    return '/tokens';
  }
}

/** GET B/openapi.json: no credentials needed (§15). */
export function serveOpenApi(ctx: HttpContext, module: ModuleApi): void {
  const base = ctx.path.slice(0, -'/openapi.json'.length) || '/';
  ctx.status = 200;
  ctx.set('Content-Type', 'application/json; charset=utf-8');
  ctx.set('Cache-Control', 'no-cache');
  ctx.body = JSON.stringify(openApiDocument({ base, tokens: tokensPath(module) }));
}
