// iq to a full JID (RFC 6121 §8.5.3): passed to that resource as is; none there → service-unavailable for
// get/set, results and errors dropped. Prosody does this in core/stanza_router.lua; here it is a module.

import { StanzaError, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../api.js';

export function load(module: ModuleApi): void {
  module.hook('iq/full', ({ stanza }: StanzaEvent): boolean => {
    const session = stanza.attrs.to ? module.sessions.byFull(stanza.attrs.to) : undefined;
    // A session that does not take it (closing, not reading) is as good as gone.
    if (session?.deliver(stanza)) return true;
    const type = stanza.attrs.type;
    if (type === 'get' || type === 'set') throw new StanzaError('service-unavailable');
    return true;
  });
}

export const iq: ModuleDefinition = {
  manifest: { id: 'iq', description: 'iq delivery to full JIDs (RFC 6121 §8.5.3).' },
  load,
};
