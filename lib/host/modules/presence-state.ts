// The narrow handle the presence module needs on a client session: set availability and priority
// (RFC 6121 §4.2 initial presence, §4.5 unavailable). Sessions that allow it implement this; api.ts stays read-only.

import type { ClientSession, Stanza } from '../api.js';

export interface PresenceControl {
  /** Record the session's last presence: available or not, its priority, and the stanza itself. */
  setPresence(isAvailable: boolean, priority: number, presence: Stanza | undefined): void;
  /** The last available presence the client sent, for probes and broadcasts. */
  readonly lastPresence: Stanza | undefined;
}

export function presenceControl(session: ClientSession): (ClientSession & PresenceControl) | undefined {
  const candidate = session as ClientSession & Partial<PresenceControl>;
  return typeof candidate.setPresence === 'function' ? (candidate as ClientSession & PresenceControl) : undefined;
}
