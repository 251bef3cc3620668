// Entity Time (XEP-0202): the server answers its current time in UTC. Prosody: plugins/mod_time.lua.
// COMPAT: the offset is always +00:00, as Prosody, so the answer does not tell where the server stands.

import { xml, type Element, type ModuleApi, type ModuleDefinition } from '../api.js';

const NS_TIME = 'urn:xmpp:time';

/** XEP-0202 §3: `<tzo/>` and `<utc/>` (XEP-0082 DateTime, whole seconds). */
export function timeElement(now: Date = new Date()): Element {
  return xml('time', { xmlns: NS_TIME }, xml('tzo', {}, '+00:00'), xml('utc', {}, now.toISOString().replace(/\.\d{3}Z$/, 'Z')));
}

export function load(module: ModuleApi): void {
  module.handleIq('get', NS_TIME, 'time', () => timeElement());
  module.provides('disco_feature', NS_TIME);
}

export const time: ModuleDefinition = {
  manifest: { id: 'time', description: 'Entity Time (XEP-0202): the server\'s time in UTC.' },
  load,
};
