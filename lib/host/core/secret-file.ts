// A server secret kept in data_dir (as the generated TLS key is): made once, readable by the server's user only, the
// same after a restart. Keys what must not change between runs, such as the decoy credentials of unknown accounts.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../util/errors.js';

const SECRET_BYTES = 32;

/** The secret in `dataDir/name`, created (0600, exclusively, so two processes starting at once agree) if missing. */
export function readOrCreateSecret(dataDir: string, name: string): Buffer {
  const file = join(dataDir, name);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, randomBytes(SECRET_BYTES), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const secret = readFileSync(file);
    if (secret.length === SECRET_BYTES) return secret;
    throw new Error(`it holds ${secret.length} bytes, not ${SECRET_BYTES}`);
  } catch (err) {
    throw new HostError('HOST_ERR_DATA_DIR', `cannot use the secret ${file} (${(err as Error).message}); check data_dir, or delete the file to make a new one.`, { cause: err });
  }
}
