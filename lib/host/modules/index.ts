// The host's core modules, loaded on every virtual host (Prosody's auto-loaded core plugins).
// Each uses only the plugin API (lib/host/api.ts), like any third-party module.

import type { ModuleDefinition } from '../api.js';
import { disco } from './disco.js';
import { iq } from './iq.js';
import { message } from './message.js';
import { ping } from './ping.js';
import { presence } from './presence.js';
import { roster } from './roster.js';

/**
 * The client listener is one process-wide server, but it acts on each virtual host through that
 * host's `c2s` module API, so it uses the same door as every module.
 */
const c2sModule: ModuleDefinition = {
  manifest: { id: 'c2s', description: 'Client-to-server streams (RFC 6120); the listener acts on each host through this module.' },
  load: () => undefined,
};

export const coreModules: ModuleDefinition[] = [c2sModule, presence, message, roster, iq, ping, disco];
export { startC2s, type C2sServer, type C2sSettings } from './c2s/index.js';
export { createHttpApp, HttpApps } from './http/apps.js';
