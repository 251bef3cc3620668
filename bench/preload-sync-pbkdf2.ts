// Bench-only preload (`--import` on the server child, see effectSeries in run.ts): makes crypto.pbkdf2 run
// synchronously on the event loop, to measure what running PBKDF2 in libuv's pool (lib/host/users.ts) is worth.
// Must be the first preload: lib/host/users.ts (which preload-no-cache imports) promisifies pbkdf2 when evaluated.

import crypto, { type BinaryLike } from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';

type Callback = (err: Error | null, key: Buffer) => void;

function pbkdf2OnTheLoop(password: BinaryLike, salt: BinaryLike, iterations: number, keylen: number, digest: string, callback: Callback): void {
  let key: Buffer;
  try {
    key = crypto.pbkdf2Sync(password, salt, iterations, keylen, digest);
  } catch (err) {
    callback(err as Error, Buffer.alloc(0));
    return;
  }
  callback(null, key);
}

(crypto as { pbkdf2: unknown }).pbkdf2 = pbkdf2OnTheLoop;
syncBuiltinESMExports();
