// post_msg: send an XMPP message with one HTTP request. Port of Prosody's community module mod_post_msg.
// The manifest (options with defaults and bounds) is plugin.json at the repo root; the host reads it.

import type { ModuleApi } from '../host/api.js';
import { createApp } from './http-app.js';
import { TokenBucketLimiter } from './rate-limit.js';
import { Idempotency, IDEMPOTENCY_STORE, type IdempotencyRecord } from './idempotency.js';

export const DEFAULT_PATH = '/msg';

/** The options plugin.json declares, as the host hands them over: checked (cors_origins normalised) and frozen. */
export type PostMsgOptions = {
  max_body_bytes: number;
  cors_origins: string[];
  rate_per_second: number;
  max_recipients: number;
  idempotency_window: number;
  rate_burst: number;
  remote_timeout: number;
};

export function load(module: ModuleApi<PostMsgOptions>): void {
  const app = createApp(module, {
    maxBodyBytes: module.option('max_body_bytes'),
    corsOrigins: module.option('cors_origins'),
    idempotency: new Idempotency(module.openMap<IdempotencyRecord>(IDEMPOTENCY_STORE), module.option('idempotency_window')),
    maxRecipients: module.option('max_recipients'),
    limiter: new TokenBucketLimiter({
      ratePerSecond: module.option('rate_per_second'),
      burst: module.option('rate_burst'),
    }),
  });
  module.provides('http', { defaultPath: DEFAULT_PATH, title: 'Send a message with one HTTP request (post_msg)', ...app });
}
