// tokenauth: the host's app tokens (post_msg.md §11), Prosody's mod_tokenauth name. Offers the TokenService
// (module.depends('tokenauth')) and the `tokens` HTTP app where an account manages its own with its password.

import type { ModuleApi, ModuleDefinition, TokenService } from '../../api.js';
import { createTokensApp } from './http-app.js';
import { TokenStore, type StoredToken } from './store.js';

export { TokenStore, normaliseScope, publicInfo, type StoredToken, type TokenStoreOptions } from './store.js';
export { createTokensApp, DEFAULT_TOKENS_PATH } from './http-app.js';

/** Map store names: tokens per account, and the id → account index under the host's own name. */
export const TOKENS_STORE = 'tokenauth';
export const TOKEN_INDEX_STORE = 'tokenauth_ids';

export function load(module: ModuleApi): void {
  const tokens = module.openMap<StoredToken>(TOKENS_STORE);
  const index = module.openMap<string>(TOKEN_INDEX_STORE);
  const service: TokenService = new TokenStore({
    tokens: () => tokens,
    index: () => index,
    accountExists: (bare) => module.users.exists(bare),
    hosts: () => [module.host],
  });
  module.setService<'tokenauth'>(service);
  module.provides('http', createTokensApp(module, service));

  // The account's tokens went with it (same transaction); its index entries now name nothing: drop them.
  module.hookGlobal('user-deleted', async ({ jid, host }) => {
    if (host !== module.host) return;
    const stale = new Map<string, undefined>();
    for (const [id, account] of await index.getAll(module.host)) if (account === jid) stale.set(id, undefined);
    if (stale.size > 0) await index.setKeys(module.host, stale);
  });
}

export const tokenauth: ModuleDefinition = {
  manifest: {
    id: 'tokenauth',
    description: 'App tokens (post_msg.md §11): revocable, scoped, expiring secrets an account gives a script instead of its password; only their hashes are stored. HTTP app `tokens` (/tokens) and `xmppd token`.',
    options: {},
  },
  load: load as ModuleDefinition['load'],
};
