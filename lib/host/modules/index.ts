// The host's core modules, loaded on every virtual host or once globally (Prosody's auto-loaded core plugins).
// Each uses only the plugin API (lib/host/api.ts), like any third-party module.

import type { ModuleDefinition } from '../api.js';
import { blocklist } from './blocklist.js';
import { bookmarks } from './bookmarks.js';
import { c2s, c2sHost } from './c2s/index.js';
import { s2s } from './s2s/index.js';
import { carbons } from './carbons.js';
import { csiSimple } from './csi-simple.js';
import { conversejs, httpIndex } from './conversejs/index.js';
import { http } from './http/index.js';
import { httpFileShare } from './http_file_share/index.js';
import { disco } from './disco.js';
import { iq } from './iq.js';
import { lastactivity } from './lastactivity.js';
import { mam } from './mam/index.js';
import { muc } from './muc/index.js';
import { message } from './message.js';
import { pep } from './pep/index.js';
import { ping } from './ping.js';
import { presence } from './presence.js';
import { privateStorage } from './private.js';
import { roster } from './roster.js';
import { smacks } from './smacks.js';
import { storageSqlite } from './storage_sqlite/index.js';
import { tokenauth } from './tokenauth/index.js';
import { httpAltconnect, websocket } from './websocket/index.js';
import { time } from './time.js';
import { uptime } from './uptime.js';
import { vcardLegacy } from './vcard-legacy.js';
import { version } from './version.js';

/** The token store on a server's storage, for `xmppd token` (the CLI runs no modules). */
export { TokenStore, TOKENS_STORE, TOKEN_INDEX_STORE } from './tokenauth/index.js';

/** Storage backends (`storage_<name>`): the host loads the one the `storage` key names, before any other module. */
export const storageModules: ModuleDefinition[] = [storageSqlite];

export const coreModules: ModuleDefinition[] = [http, c2s, c2sHost, s2s, presence, message, roster, iq, ping, disco];

/** Bundled modules loaded only where `modules_enabled` names them (Prosody ships these plugins off by default). */
export const optionalModules: ModuleDefinition[] = [carbons, csiSimple, smacks, mam, muc, version, uptime, time, lastactivity, privateStorage, pep, bookmarks, vcardLegacy, blocklist, tokenauth, websocket, httpAltconnect, conversejs, httpIndex, httpFileShare];
