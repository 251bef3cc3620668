// Server uptime with Last Activity (XEP-0012 §5): a query to the server answers the seconds since it started.
// Prosody: plugins/mod_uptime.lua.

import { xml, type ModuleApi, type ModuleDefinition } from '../api.js';

const NS_LAST = 'jabber:iq:last';

export function load(module: ModuleApi): void {
  // The host loads its modules as it starts, so load time is start time (Prosody reads prosody.start_time).
  const started = Date.now();
  module.handleIq('get', NS_LAST, 'query', () => xml('query', { xmlns: NS_LAST, seconds: String(Math.floor((Date.now() - started) / 1000)) }));
  module.provides('disco_feature', NS_LAST);
}

export const uptime: ModuleDefinition = {
  manifest: { id: 'uptime', description: 'Server uptime (XEP-0012 on the server): seconds since it started.' },
  load,
};
