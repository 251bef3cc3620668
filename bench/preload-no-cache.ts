// Bench-only preload (`--import` on the server child, see effectSeries in run.ts): disables the verified-credential
// cache (lib/host/users.ts CredentialCache) so every request pays its PBKDF2, to measure what the cache is worth.
// DIFF: a monkey-patch, because the host has no switch for it; a `credential_cache` option would be cleaner.

import { CredentialCache } from '../lib/host/core/users.js';

CredentialCache.prototype.matches = () => false;
CredentialCache.prototype.remember = () => undefined;
