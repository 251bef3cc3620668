// Software Version (XEP-0092): the server answers with its name, its version (package.json) and, unless
// `hide_os_type`, the operating system it runs on. Prosody: plugins/mod_version.lua.

import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml, type Element, type ModuleApi, type ModuleDefinition } from '../api.js';

const NS_VERSION = 'jabber:iq:version';

export interface VersionOptions {
  hide_os_type: boolean;
}

/** The nearest package.json above this file: the same walk works from lib/ (tsx) and from dist/lib/ (build). */
export function packageVersion(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
      return typeof parsed.version === 'string' ? parsed.version : 'unknown';
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

/** The `<query/>` payload (XEP-0092 §2): name, version and, when shown, os. */
export function versionQuery(version: string, osName: string | undefined): Element {
  const query = xml('query', { xmlns: NS_VERSION }, xml('name', {}, 'xmppd'), xml('version', {}, version));
  if (osName) query.append(xml('os', {}, osName));
  return query;
}

export function load(module: ModuleApi<VersionOptions>): void {
  const version = packageVersion();
  // As Prosody: the kernel's name and release (uname -sr); XEP-0092 §3 lets an admin hide it.
  const osName = module.options.hide_os_type ? undefined : `${os.type()} ${os.release()}`;
  module.handleIq('get', NS_VERSION, 'query', () => versionQuery(version, osName));
  module.provides('disco_feature', NS_VERSION);
}

export const version: ModuleDefinition = {
  manifest: {
    id: 'version',
    description: 'Software Version (XEP-0092): the server\'s name, version and operating system.',
    options: {
      hide_os_type: { type: 'boolean', default: false, description: 'Leave the operating system out of version answers (XEP-0092 §3 privacy).' },
    },
  },
  load,
};
