// post_msg's adapter specs run on the host's mock module (lib/host/testing.ts) with post_msg's id and option defaults.
// Not for end-to-end specs.

import { mockModule, type MockModule, type MockModuleOptions } from '../../../lib/host/testing.js';
import type { OptionValue } from '../../../lib/host/api.js';
import type { PostMsgOptions } from '../../../lib/post_msg/index.js';

export type FakeModuleOptions = Omit<MockModuleOptions, 'name'>;
export type FakeModule = MockModule<PostMsgOptions>;

export const DEFAULT_OPTIONS: Record<string, OptionValue> = {
  max_body_bytes: 262144,
  cors_origins: [],
  rate_per_second: 10,
  rate_burst: 50,
  idempotency_window: 86400,
  max_recipients: 20,
  remote_timeout: 10,
};

export function fakeModule(opts: FakeModuleOptions = {}): FakeModule {
  return mockModule<PostMsgOptions>({ ...opts, name: 'post_msg', options: { ...DEFAULT_OPTIONS, ...opts.options } });
}
