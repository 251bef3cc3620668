// post_msg: send an XMPP message with one HTTP request. Port of Prosody's community module mod_post_msg.
// The manifest (options with defaults and bounds) is plugin.json at the repo root; the host reads it.

import { HostError, type ModuleApi } from '../host/api.js';
import { createRouter } from './http-app.js';
import { normaliseOrigin } from './origin.js';
import { TokenBucketLimiter } from './rate-limit.js';

export const DEFAULT_PATH = '/msg';

export function load(module: ModuleApi): void {
  const corsOrigins = module.option<string[]>('cors_origins');
  for (const origin of corsOrigins) {
    if (normaliseOrigin(origin) === undefined) {
      throw new HostError('HOST_ERR_OPTION_INVALID', `${module.host}: post_msg option cors_origins: ${JSON.stringify(origin)} is not an origin such as https://example.org.`);
    }
  }
  const router = createRouter(module, {
    maxBodyBytes: module.option<number>('max_body_bytes'),
    corsOrigins,
    limiter: new TokenBucketLimiter({
      ratePerSecond: module.option<number>('rate_per_second'),
      burst: module.option<number>('rate_burst'),
    }),
  });
  module.provides('http', { defaultPath: DEFAULT_PATH, router });
}
