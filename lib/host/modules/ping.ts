// XMPP Ping (XEP-0199): the server answers pings to itself and, on the account's behalf, to its bare JID.
// Prosody: plugins/mod_ping.lua.

import { xml, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../api.js';

const NS_PING = 'urn:xmpp:ping';

export function load(module: ModuleApi): void {
  const pong = ({ stanza, origin }: StanzaEvent): boolean => {
    origin.send?.(xml('iq', { type: 'result', id: stanza.attrs.id, to: stanza.attrs.from, from: stanza.attrs.to }));
    return true;
  };
  module.hook(`iq-get/host/${NS_PING}:ping`, pong);
  // A client pinging without `to` (or its own bare JID) is answered by its server (RFC 6120 §10.3.3).
  module.hook(`iq-get/self/${NS_PING}:ping`, pong);
  module.provides('disco_feature', NS_PING);
}

export const ping: ModuleDefinition = {
  manifest: { id: 'ping', description: 'XMPP Ping (XEP-0199).' },
  load,
};
