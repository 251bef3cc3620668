// The host's core modules, loaded on every virtual host (Prosody's auto-loaded core plugins).
// Each uses only the plugin API (lib/host/api.ts), like any third-party module.

import type { ModuleDefinition } from '../api.js';
import { disco } from './disco.js';
import { iq } from './iq.js';
import { message } from './message.js';
import { ping } from './ping.js';
import { presence } from './presence.js';
import { roster } from './roster.js';

export const coreModules: ModuleDefinition[] = [presence, message, roster, iq, ping, disco];
