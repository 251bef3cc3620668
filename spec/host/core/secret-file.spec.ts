// Secrets kept in data_dir: made once with mode 0600, the same after a restart; the decoy credentials of unknown
// accounts keyed by one are the same after a restart (a per-process secret told unknown names from real ones).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOrCreateSecret } from '../../../lib/host/core/secret-file.js';
import { UserService } from '../../../lib/host/core/users.js';
import { MemoryAuthThrottle } from '../../../lib/host/util/throttle.js';
import type { UserStore } from '../../../lib/host/api.js';

const dirs: string[] = [];
const newDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'secret-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A user service over a store with no accounts, as a server started on `dataDir` has. */
const usersOn = (dataDir: string): UserService =>
  new UserService({
    store: { get: async () => undefined, iterationCounts: async () => [] } as unknown as UserStore,
    throttle: new MemoryAuthThrottle(10),
    iterations: 4096,
    isLocalHost: () => true,
    decoySecret: readOrCreateSecret(dataDir, 'decoy.key'),
  });

describe('readOrCreateSecret()', () => {
  it('creates 32 random bytes once, readable by the owner only, and reads the same after', () => {
    const dir = join(newDir(), 'data');
    const first = readOrCreateSecret(dir, 'decoy.key');
    assert.equal(first.length, 32);
    assert.equal(statSync(join(dir, 'decoy.key')).mode & 0o777, 0o600);
    assert.deepEqual(readOrCreateSecret(dir, 'decoy.key'), first);
    assert.notDeepEqual(readOrCreateSecret(newDir(), 'decoy.key'), first);
  });

  it('refuses a file that is not a secret of the right size, naming it', () => {
    const dir = newDir();
    writeFileSync(join(dir, 'decoy.key'), 'short');
    assert.throws(() => readOrCreateSecret(dir, 'decoy.key'), (err: Error & { code?: string }) => err.code === 'HOST_ERR_DATA_DIR' && /decoy\.key.*5 bytes/.test(err.message));
  });
});

describe('UserService decoys', () => {
  it("an unknown name's SCRAM salt and iteration count are the same after a restart (same data_dir)", async () => {
    const dir = newDir();
    const before = await usersOn(dir).scramDecoy('nobody@localhost', 'sha256');
    const afterRestart = await usersOn(dir).scramDecoy('nobody@localhost', 'sha256');
    assert.deepEqual(afterRestart, before);
    const elsewhere = await usersOn(newDir()).scramDecoy('nobody@localhost', 'sha256');
    assert.notDeepEqual(elsewhere.salt, before.salt, 'another server has other decoys');
  });
});
