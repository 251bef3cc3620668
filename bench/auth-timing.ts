// Benchmark: how long a wrong password takes for an unknown account against a known one (UserService.verifyPassword,
// lib/host/core/users.ts: decoys for unknown names); the ratio of the means should be near 1. The spec counts the work.
// Run: node --import tsx bench/auth-timing.ts [tries=200]

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../lib/host/modules/storage_sqlite/sqlite.js';
import { MemoryAuthThrottle } from '../lib/host/util/throttle.js';
import { CredentialCache, UserService } from '../lib/host/core/users.js';
import type { Storage } from '../lib/host/api.js';

const ACCOUNT_ITERATIONS = 10_000; // the default pbkdf2_iterations
const tries = Number(process.argv[2] ?? 200);

/** A service as the server builds it (credential cache on), with pbkdf2_iterations `iterations`. */
function service(storage: Storage, iterations: number): UserService {
  return new UserService({ store: storage.users, throttle: new MemoryAuthThrottle(1_000_000), iterations, isLocalHost: () => true, cache: new CredentialCache() });
}

async function elapsedNs(check: () => Promise<boolean>): Promise<number> {
  const start = process.hrtime.bigint();
  await check();
  return Number(process.hrtime.bigint() - start);
}

/** Mean times of a wrong password for the known account and for fresh unknown names, sampled in turn. */
async function measure(users: UserService, label: string): Promise<void> {
  const known = (): Promise<boolean> => users.verifyPassword('alice@localhost', 'wrong');
  const unknown = (i: number) => (): Promise<boolean> => users.verifyPassword(`nobody-${label}-${i}@localhost`, 'wrong');
  for (let i = 0; i < 20; i++) await elapsedNs(i % 2 ? known : unknown(-i - 1)); // warm-up
  let knownNs = 0;
  let unknownNs = 0;
  for (let i = 0; i < tries; i++) {
    knownNs += await elapsedNs(known);
    unknownNs += await elapsedNs(unknown(i));
  }
  const ms = (ns: number): string => (ns / tries / 1e6).toFixed(2);
  console.log(`${label}: known ${ms(knownNs)} ms, unknown ${ms(unknownNs)} ms, unknown/known ${(unknownNs / knownNs).toFixed(3)}`);
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${tries} tries of each`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-auth-'));
  const storage = openSqliteStorage(dir);
  try {
    await service(storage, ACCOUNT_ITERATIONS).create('alice@localhost', 'correct horse');
    await measure(service(storage, ACCOUNT_ITERATIONS), `pbkdf2_iterations ${ACCOUNT_ITERATIONS}`);
    // Accounts keep their count until their password changes; decoys must follow them, not the new setting.
    await measure(service(storage, 2 * ACCOUNT_ITERATIONS), `pbkdf2_iterations changed to ${2 * ACCOUNT_ITERATIONS}`);
  } finally {
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
