// The post-step of `npm run spec` (scripts/check-log-secrets.ts): it passes a clean run's logs and names each leak.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRunLogs } from '../../scripts/check-log-secrets.js';

const INFO = 30;
const DEBUG = 20;
const users = [
  { jid: 'alice@localhost', password: 'alice-secret-1' },
  { jid: 'bob@localhost', password: 'bob-secret-22' },
  { jid: 'carol@localhost', password: 'carol-secret-333' },
];
const bodies = ['the first message body', 'the second message body', 'the third message body'];

describe('checkRunLogs', () => {
  let dir: string;
  const log = (record: Record<string, unknown>): void => appendFileSync(join(dir, '1.jsonl'), `${JSON.stringify(record)}\n`);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'log-secrets-'));
    writeFileSync(join(dir, '1.secrets'), users.map((u) => `${JSON.stringify(u)}\n`).join(''));
    for (const body of bodies) log({ level: DEBUG, msg: 'message', body });
    for (let i = 0; i < 200; i++) log({ level: INFO, msg: 'request', status: 201, authorization: '[redacted]' });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds nothing in a run whose secrets stayed at debug', () => {
    assert.deepEqual(checkRunLogs(dir), []);
  });

  it('names a password, a Basic credential, an authorization field and a body above debug', () => {
    log({ level: INFO, msg: `login failed for ${users[0]!.password}` });
    log({ level: 40, msg: 'header', header: `Basic ${Buffer.from(`${users[1]!.jid}:${users[1]!.password}`).toString('base64')}` });
    log({ level: INFO, msg: 'request', authorization: 'Basic xyz' });
    log({ level: 50, msg: `could not deliver "${bodies[2]}"` });
    const problems = checkRunLogs(dir);
    assert.ok(problems.some((p) => p.startsWith('a log line above debug contains a password')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('a log line above debug contains a Basic credential')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('a log line has a password or authorization field')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('a log line above debug contains a message body')), problems.join('\n'));
  });

  it('fails a run that logged too little to tell', () => {
    rmSync(join(dir, '1.jsonl'));
    writeFileSync(join(dir, '1.jsonl'), `${JSON.stringify({ level: INFO, msg: 'started' })}\n`);
    assert.ok(checkRunLogs(dir).some((p) => p.startsWith('only 1 log lines')));
  });
});
