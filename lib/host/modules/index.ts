// The host's core modules, loaded on every virtual host (Prosody's auto-loaded core plugins).
// Each uses only the plugin API (lib/host/api.ts), like any third-party module.

import type { ModuleDefinition } from '../api.js';

export const coreModules: ModuleDefinition[] = [];
