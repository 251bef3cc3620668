// post_msg.md §15: GET B/openapi.json without credentials is an OpenAPI 3.1 document a maintained validator accepts
// (@seriousme/openapi-schema-validator), and the server's real answers (201, 200 dry run, 4xx problems, the token
// routes) conform to the document's schemas (ajv, JSON Schema 2020-12) for a status the operation documents.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

type Response_ = { $ref?: string; content?: Record<string, { schema: unknown }> };
type Doc = { paths: Record<string, Record<string, { responses: Record<string, Response_> }>>; components: { responses: Record<string, Response_> } };

describe('post_msg OpenAPI document (§15)', () => {
  let ts: TestServer;
  let doc: Doc;
  let ajv: Ajv2020;

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: ['tokenauth', 'post_msg'] }, users: [['alice@localhost', 'alice-pw'], ['bob@localhost', 'secret']] });
    const res = await fetch(`${ts.httpUrl}/msg/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as Doc;
    ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ ...doc, $id: 'openapi.json' });
  });
  after(async () => ts?.stop());

  it('is served without credentials and accepted by an OpenAPI 3.1 validator', async () => {
    const result = await new Validator().validate(doc as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    assert.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');
    for (const path of ['/msg', '/msg/{recipient}', '/msg/openapi.json', '/tokens', '/tokens/{id}']) assert.ok(doc.paths[path], path);
    const text = JSON.stringify(doc);
    for (const word of ['Idempotency-Key', 'Idempotent-Replayed', 'dry_run', 'bearerAuth', 'basicAuth', 'text/markdown', 'WWW-Authenticate', 'Retry-After']) assert.ok(text.includes(word), word);
  });

  /** The real answer's status is documented for the operation and its body matches the documented schema. */
  async function conforms(path: string, method: string, res: Response, status: number): Promise<void> {
    assert.equal(res.status, status, `${method} ${path}: ${await res.clone().text()}`);
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path} is documented`);
    let documented = op.responses[String(res.status)];
    assert.ok(documented, `${method} ${path}: status ${res.status} is documented`);
    const ref = documented.$ref;
    if (ref) documented = doc.components.responses[ref.split('/').at(-1)!]!;
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
    const text = await res.text();
    if (!documented.content) return assert.equal(text, '', `${res.status} has no body`);
    const media = documented.content[type];
    assert.ok(media, `${method} ${path} ${res.status}: ${type} is documented`);
    const pointer = `${path.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    const where = ref ? `components/responses/${ref.split('/').at(-1)}` : `paths/${pointer}/${method}/responses/${res.status}`;
    const validate = ajv.compile({ $ref: `openapi.json#/${where}/content/${type.replace('/', '~1')}/schema` });
    assert.equal(validate(JSON.parse(text)), true, `${method} ${path} ${res.status}: ${JSON.stringify(validate.errors)} ${text}`);
  }

  const post = (path: string, body: string, type: string, auth = basic('bob', 'secret')): Promise<Response> =>
    fetch(`${ts.httpUrl}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': type }, body });

  it('the message answers conform: 201 (one and several), 200 dry run, 4xx problems', async () => {
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice', 'hi', 'text/plain'), 201);
    await conforms('/msg', 'post', await post('/msg', JSON.stringify({ to: ['alice', 'bob'], body: 'hi' }), 'application/json'), 201);
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice?dry_run=1', 'hi', 'text/plain'), 200);
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice', '{', 'application/json'), 400);
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice', 'hi', 'text/plain', basic('bob', 'wrong')), 401);
    await conforms('/msg/{recipient}', 'post', await post('/msg/nobody', 'hi', 'text/plain'), 404);
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice', 'hi', 'image/png'), 415);
    await conforms('/msg', 'post', await post('/msg', 'hi', 'text/plain'), 422);
    await conforms('/msg/{recipient}', 'post', await post('/msg/alice', JSON.stringify({ url: 'ftp://x' }), 'application/json'), 400);
  });

  it('the token routes conform: 201, 200, 204, 403, 404', async () => {
    const created = await post('/tokens', JSON.stringify({ name: 'doc' }), 'application/json');
    const { id, token } = (await created.clone().json()) as { id: string; token: string };
    await conforms('/tokens', 'post', created, 201);
    await conforms('/tokens', 'get', await fetch(`${ts.httpUrl}/tokens`, { headers: { authorization: basic('bob', 'secret') } }), 200);
    await conforms('/tokens', 'get', await fetch(`${ts.httpUrl}/tokens`, { headers: { authorization: `Bearer ${token}` } }), 403);
    await conforms('/tokens', 'post', await post('/tokens', '{}', 'application/json'), 400);
    await conforms('/tokens/{id}', 'delete', await fetch(`${ts.httpUrl}/tokens/${id}`, { method: 'DELETE', headers: { authorization: basic('bob', 'secret') } }), 204);
    await conforms('/tokens/{id}', 'delete', await fetch(`${ts.httpUrl}/tokens/${id}`, { method: 'DELETE', headers: { authorization: basic('bob', 'secret') } }), 404);
  });

  it('GET elsewhere under B stays 405; an account named openapi.json is reached with its full JID', async () => {
    const res = await fetch(`${ts.httpUrl}/msg/alice`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'OPTIONS, POST');
    await ts.server.users.create('openapi.json@localhost', 'x-pw');
    const full = await post('/msg/openapi.json@localhost', 'hi', 'text/plain');
    assert.equal(full.status, 201, await full.clone().text());
  });
});
