// A multi-user chat room's state and rules (XEP-0045): configuration, affiliations, roles, occupants, bounded
// history, registered nicks. No stanzas sent from here: index.ts turns decisions into presence and messages.
// Prosody: plugins/muc/muc.lib.lua (room methods), members_only.lib.lua, moderated.lib.lua, password.lib.lua.

import type { Element } from '../../api.js';

export type Affiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'outcast', 'none'];
export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];
const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

/** The muc#roomconfig fields a room keeps (XEP-0045 §10.2, §15.5.3). */
export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** '' when the room has no password. */
  password: string;
  /** Who sees occupants' real JIDs. */
  whois: 'moderators' | 'anyone';
  /** 0: no limit beyond the service's. */
  maxUsers: number;
  historyLength: number;
  changeSubject: boolean;
  allowInvites: boolean;
}

/** What a persistent room stores (one map entry per room under the service's domain). */
export interface StoredRoom {
  config: RoomConfig;
  affiliations: Record<string, Affiliation>;
  /** Registered nicks (§7.10) by real bare JID. */
  nicks: Record<string, string>;
  subject?: { text: string; by: string };
}

/** One occupant: a nick held by one real account, with one or more of its sessions (Prosody's multi-session occupants). */
export interface Occupant {
  nick: string;
  /** The account's bare JID. */
  bare: string;
  /** Real full JID → its last presence to the room (as sent, without the MUC payload). */
  sessions: Map<string, Element>;
  role: Role;
}

/** A message kept for history on join (§7.2.15). */
export interface HistoryItem {
  stanza: Element;
  stamp: Date;
  chars: number;
}

/** Why an account may not join or speak, worded for people (post_msg's 403 detail, stanza error text). */
export type Refusal =
  | { condition: 'forbidden'; rule: 'outcast'; text: string }
  | { condition: 'registration-required'; rule: 'members-only'; text: string }
  | { condition: 'not-authorized'; rule: 'password-protected'; text: string }
  | { condition: 'forbidden'; rule: 'moderated'; text: string };

export class Room {
  readonly occupants = new Map<string, Occupant>();
  /** Real full JID → nick, for every session of every occupant. */
  readonly byReal = new Map<string, string>();
  history: HistoryItem[] = [];
  /** A newly created room stays locked until its owner configures it (§10.1.2); only the owner may enter. */
  isLocked = false;
  /** Set when destroyed, so late stanzas find no room. */
  isDestroyed = false;

  constructor(
    readonly jid: string,
    public config: RoomConfig,
    public affiliations: Map<string, Affiliation> = new Map(),
    public nicks: Map<string, string> = new Map(),
    public subject?: { text: string; by: string },
  ) {}

  static fromStored(jid: string, stored: StoredRoom, defaults: RoomConfig): Room {
    return new Room(jid, { ...defaults, ...stored.config }, new Map(Object.entries(stored.affiliations ?? {})), new Map(Object.entries(stored.nicks ?? {})), stored.subject);
  }

  toStored(): StoredRoom {
    return { config: this.config, affiliations: Object.fromEntries(this.affiliations), nicks: Object.fromEntries(this.nicks), subject: this.subject };
  }

  affiliation(bare: string): Affiliation {
    return this.affiliations.get(bare) ?? 'none';
  }

  /** The role an account gets when it enters (§5.1.2): moderators for admins and owners, voice per moderation. */
  defaultRole(bare: string): Role {
    const aff = this.affiliation(bare);
    if (aff === 'owner' || aff === 'admin') return 'moderator';
    if (aff === 'member') return 'participant';
    return this.config.moderated ? 'visitor' : 'participant';
  }

  occupantOf(realFull: string): Occupant | undefined {
    const nick = this.byReal.get(realFull);
    return nick === undefined ? undefined : this.occupants.get(nick);
  }

  /** The occupant an account holds (any of its sessions). */
  occupantOfAccount(bare: string): Occupant | undefined {
    for (const o of this.occupants.values()) if (o.bare === bare) return o;
    return undefined;
  }

  /** Whether `bare` may enter, before nick and capacity checks (§7.2.6 - §7.2.8). Undefined: yes. */
  entryRefusal(bare: string, password: string | undefined): Refusal | undefined {
    const aff = this.affiliation(bare);
    if (aff === 'outcast') return { condition: 'forbidden', rule: 'outcast', text: 'You are banned from this room (outcast).' };
    if (this.config.membersOnly && AFFILIATION_RANK[aff] < AFFILIATION_RANK.member) {
      return { condition: 'registration-required', rule: 'members-only', text: 'This room is members-only and you are not a member.' };
    }
    if (this.config.password !== '' && password !== this.config.password && AFFILIATION_RANK[aff] < AFFILIATION_RANK.member) {
      return { condition: 'not-authorized', rule: 'password-protected', text: 'This room is password-protected.' };
    }
    return undefined;
  }

  /**
   * Whether `bare` may post without joining (post_msg §10): as it could join and speak, except that a password
   * protects the room from everyone not affiliated (an HTTP post carries none).
   */
  postRefusal(bare: string): Refusal | undefined {
    const entry = this.entryRefusal(bare, undefined);
    if (entry) return entry;
    const occupant = this.occupantOfAccount(bare);
    const role = occupant?.role ?? this.defaultRole(bare);
    if (role === 'visitor') return { condition: 'forbidden', rule: 'moderated', text: 'This room is moderated and the account has no voice.' };
    return undefined;
  }

  /** Who registered or holds `nick` other than `bare`: a nick is reserved by its registration (§7.10). */
  nickTakenBy(nick: string, bare: string): 'occupant' | 'registered' | undefined {
    const holder = this.occupants.get(nick);
    if (holder && holder.bare !== bare) return 'occupant';
    for (const [who, registered] of this.nicks) if (registered === nick && who !== bare) return 'registered';
    return undefined;
  }

  canSeeRealJids(viewer: Occupant | undefined): boolean {
    return this.config.whois === 'anyone' || viewer?.role === 'moderator';
  }

  addHistory(stanza: Element, stamp: Date): void {
    const limit = this.config.historyLength;
    if (limit <= 0) return;
    const body = stanza.getChildText('body') ?? '';
    this.history.push({ stanza, stamp, chars: body.length });
    if (this.history.length > limit) this.history.splice(0, this.history.length - limit);
  }

  /** History to send on join (§7.2.15): the newest items within every limit the client gave, oldest first. */
  historyFor(request: { maxstanzas?: number; maxchars?: number; seconds?: number; since?: Date }, now: Date): HistoryItem[] {
    let items = this.history;
    if (request.seconds !== undefined) items = items.filter((i) => now.getTime() - i.stamp.getTime() <= request.seconds! * 1000);
    if (request.since !== undefined) items = items.filter((i) => i.stamp.getTime() > request.since!.getTime());
    if (request.maxstanzas !== undefined) items = request.maxstanzas === 0 ? [] : items.slice(-request.maxstanzas);
    if (request.maxchars !== undefined) {
      let chars = 0;
      const kept: HistoryItem[] = [];
      for (let i = items.length - 1; i >= 0; i--) {
        chars += items[i]!.chars;
        if (chars > request.maxchars) break;
        kept.unshift(items[i]!);
      }
      items = kept;
    }
    return items;
  }
}

/** Can `actor` (affiliation and role) change `target`'s role to `role` (§8.2 - §8.5, §9.6, §9.7)? */
export function roleChangeRefusal(actor: { aff: Affiliation; role: Role }, target: { aff: Affiliation; role: Role }, role: Role): string | undefined {
  if (actor.role !== 'moderator') return 'Only moderators change roles.';
  if (role === 'moderator' || target.role === 'moderator') {
    if (AFFILIATION_RANK[actor.aff] < AFFILIATION_RANK.admin) return 'Only admins and owners grant or revoke moderator status.';
  }
  if (AFFILIATION_RANK[target.aff] > AFFILIATION_RANK[actor.aff]) return 'You cannot change the role of someone with a higher affiliation.';
  if ((role === 'none' || role === 'visitor') && AFFILIATION_RANK[target.aff] >= AFFILIATION_RANK.admin) return 'Admins and owners cannot be kicked or muted.';
  return undefined;
}

/** Can `actor` move `target` from `from` to `to` (§9.1 - §10.8)? Admins handle members and outcasts; owners all. */
export function affiliationChangeRefusal(actor: Affiliation, from: Affiliation, to: Affiliation): string | undefined {
  if (actor === 'owner') return undefined;
  if (actor !== 'admin') return 'Only admins and owners change affiliations.';
  if (AFFILIATION_RANK[from] >= AFFILIATION_RANK.admin || AFFILIATION_RANK[to] >= AFFILIATION_RANK.admin) return 'Only owners grant or revoke admin and owner affiliations.';
  return undefined;
}

export function roleRank(role: Role): number {
  return ROLE_RANK[role];
}

export function affiliationRank(aff: Affiliation): number {
  return AFFILIATION_RANK[aff];
}
