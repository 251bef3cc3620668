// XMPP Ping (XEP-0199): the server answers pings to itself and, on the account's behalf, to its bare JID; on a
// component host, pings to the component.
// Prosody: plugins/mod_ping.lua.

import type { ModuleApi, ModuleDefinition } from '../api.js';

const NS_PING = 'urn:xmpp:ping';

export function load(module: ModuleApi): void {
  // A client pinging without `to` (or its own bare JID) is answered by its server (RFC 6120 §10.3.3).
  module.handleIq('get', NS_PING, 'ping', () => true, { to: ['host', 'self'] });
  module.provides('disco_feature', NS_PING);
}

export const ping: ModuleDefinition = {
  manifest: { id: 'ping', description: 'XMPP Ping (XEP-0199).', loadOnComponents: true },
  load,
};
