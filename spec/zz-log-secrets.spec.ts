// Runs last (files run in sorted order): reads the log lines of every test server of this run and
// checks that no password, Authorization value or message body reached a level above debug (issue 6).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.XMPPD_SPEC_LOG_DIR;
const DEBUG = 20;

function read(kind: 'jsonl' | 'secrets'): string[] {
  return readdirSync(dir!)
    .filter((f) => f.endsWith(`.${kind}`))
    .flatMap((f) => readFileSync(join(dir!, f), 'utf8').split('\n'))
    .filter(Boolean);
}

describe('Logs of the whole test run', { skip: dir ? false : 'needs XMPPD_SPEC_LOG_DIR, which `npm run spec` sets' }, () => {
  it('hold no password, Authorization value or message body above debug', () => {
    const lines = read('jsonl');
    const records = lines.map((l) => ({ raw: l, parsed: JSON.parse(l) as { level: number; msg?: string; body?: unknown } }));
    const credentials = read('secrets').map((l) => JSON.parse(l) as { jid: string; password: string });
    const passwords = [...new Set(credentials.map((c) => c.password))].filter((p) => p.length >= 6);
    const basics = credentials.map((c) => Buffer.from(`${c.jid}:${c.password}`).toString('base64'));
    const bodies = [...new Set(records.filter((r) => r.parsed.level === DEBUG && typeof r.parsed.body === 'string').map((r) => r.parsed.body as string))].filter(
      (b) => b.length >= 12,
    );

    // Not vacuous: the run logged requests, used passwords and sent bodies.
    assert.ok(records.length > 200, `only ${records.length} log lines were kept`);
    assert.ok(passwords.length >= 3, `only ${passwords.length} passwords were recorded`);
    assert.ok(bodies.length >= 3, `only ${bodies.length} message bodies were seen at debug`);

    const above = records.filter((r) => r.parsed.level > DEBUG);
    for (const { raw } of above) {
      assert.doesNotMatch(raw, /"(password|authorization)"\s*:\s*"(?!\[redacted\])/i, `a log line has a password or authorization field: ${raw}`);
      assert.doesNotMatch(raw, /Basic [A-Za-z0-9+/=]{4,}/, `a log line carries a Basic credential: ${raw}`);
      for (const p of passwords) assert.ok(!raw.includes(p), `a log line above debug contains a password: ${raw}`);
      for (const b of basics) assert.ok(!raw.includes(b), `a log line above debug contains a Basic credential: ${raw}`);
      for (const b of bodies) assert.ok(!raw.includes(b), `a log line above debug contains a message body: ${raw}`);
    }
  });
});
