// After `npm run spec`: reads the log lines of every test server of the run (XMPPD_SPEC_LOG_DIR, filled by
// spec/helpers/server.ts) and fails if a password, an Authorization value or a message body reached a level above debug.

import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEBUG = 20;

interface LogRecord {
  raw: string;
  level: number;
  body?: unknown;
}

function readLines(dir: string, kind: 'jsonl' | 'secrets'): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(`.${kind}`))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter(Boolean);
}

/** What is wrong with the run's logs in `dir`; empty when nothing leaked (and the run logged enough to tell). */
export function checkRunLogs(dir: string): string[] {
  const records: LogRecord[] = readLines(dir, 'jsonl').map((raw) => ({ raw, ...(JSON.parse(raw) as { level: number; body?: unknown }) }));
  const credentials = readLines(dir, 'secrets').map((l) => JSON.parse(l) as { jid: string; password: string });
  const passwords = [...new Set(credentials.map((c) => c.password))].filter((p) => p.length >= 6);
  const basics = credentials.map((c) => Buffer.from(`${c.jid}:${c.password}`).toString('base64'));
  const bodies = [...new Set(records.filter((r) => r.level === DEBUG && typeof r.body === 'string').map((r) => r.body as string))].filter((b) => b.length >= 12);

  // Not vacuous: the run must have logged requests, used passwords and sent bodies.
  const problems: string[] = [];
  if (records.length <= 200) problems.push(`only ${records.length} log lines were kept`);
  if (passwords.length < 3) problems.push(`only ${passwords.length} passwords were recorded`);
  if (bodies.length < 3) problems.push(`only ${bodies.length} message bodies were seen at debug`);

  for (const { raw, level } of records) {
    if (level <= DEBUG) continue;
    if (/"(password|authorization)"\s*:\s*"(?!\[redacted\])/i.test(raw)) problems.push(`a log line has a password or authorization field: ${raw}`);
    if (/Basic [A-Za-z0-9+/=]{4,}/.test(raw)) problems.push(`a log line carries a Basic credential: ${raw}`);
    if (passwords.some((p) => raw.includes(p))) problems.push(`a log line above debug contains a password: ${raw}`);
    if (basics.some((b) => raw.includes(b))) problems.push(`a log line above debug contains a Basic credential: ${raw}`);
    if (bodies.some((b) => raw.includes(b))) problems.push(`a log line above debug contains a message body: ${raw}`);
  }
  return problems;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.env.XMPPD_SPEC_LOG_DIR;
  if (!dir) {
    process.stderr.write('check-log-secrets: XMPPD_SPEC_LOG_DIR is not set (npm run spec sets it)\n');
    process.exit(2);
  }
  const problems = checkRunLogs(dir);
  if (problems.length > 0) {
    process.stderr.write(`check-log-secrets: the run's logs (kept in ${dir}):\n${problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(1);
  }
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write('check-log-secrets: no password, Authorization value or message body above debug in the run\'s logs\n');
}
