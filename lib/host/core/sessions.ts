// In-process registry of bound client sessions (Prosody's full_sessions / bare_sessions).
// A Redis-backed registry for several nodes implements the same SessionRegistry interface.

import type { ClientSession, SessionRegistry } from '../api.js';

export class MemorySessionRegistry implements SessionRegistry {
  private readonly full = new Map<string, ClientSession>();
  private readonly bare = new Map<string, Set<ClientSession>>();

  add(session: ClientSession): void {
    this.full.set(session.full, session);
    let set = this.bare.get(session.bare);
    if (!set) this.bare.set(session.bare, (set = new Set()));
    set.add(session);
  }

  remove(session: ClientSession): void {
    if (this.full.get(session.full) === session) this.full.delete(session.full);
    const set = this.bare.get(session.bare);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) this.bare.delete(session.bare);
  }

  byFull(fullJid: string): ClientSession | undefined {
    return this.full.get(fullJid);
  }

  byBare(bareJid: string): ClientSession[] {
    return [...(this.bare.get(bareJid) ?? [])];
  }

  all(): ClientSession[] {
    return [...this.full.values()];
  }
}
