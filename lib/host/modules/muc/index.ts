// muc: Multi-User Chat (XEP-0045) as a component (`components: { conference.localhost: { module: muc } }`): rooms,
// affiliations and roles, history, registration (§7.10), invitations, XEP-0410 self-ping, the room archive
// (XEP-0313 on room JIDs) when mam is on, and a post service for post_msg (post_msg.md §10). Prosody: plugins/muc/.

import parse from '@xmpp/xml/lib/parse.js';
import { StanzaError, parseJid, serialize, xml, type Element, type ModuleApi, type ModuleDefinition, type Stanza, type StanzaEvent } from '../../api.js';
import { AFFILIATIONS, ROLES, Room, affiliationChangeRefusal, affiliationRank, roleChangeRefusal, type Affiliation, type Occupant, type Refusal, type Role, type RoomConfig, type StoredRoom } from './room.js';
import { FORM_REGISTER, NS_DATA, applyConfigForm, configForm, registerForm, roomInfoForm, submitted } from './forms.js';

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_USER = 'http://jabber.org/protocol/muc#user';
export const NS_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_OWNER = 'http://jabber.org/protocol/muc#owner';
const NS_REGISTER = 'jabber:iq:register';
const NS_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_DELAY = 'urn:xmpp:delay';
const NS_SID = 'urn:xmpp:sid:0';
const NS_MAM = 'urn:xmpp:mam:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_CONFERENCE = 'jabber:x:conference';
const NS_PING = 'urn:xmpp:ping';

/** Nicks are resourceparts (RFC 7622 §3.4); the JID parser already bounds them. A room name is a localpart. */
const MAX_MAM_PAGE = 100;

export interface MucOptions {
  name: string;
  restrict_room_creation: boolean | string;
  admins: string[];
  max_history_messages: number;
  max_occupants: number;
  room_locking: boolean;
  room_default_public: boolean;
  room_default_persistent: boolean;
  room_default_members_only: boolean;
  room_default_moderated: boolean;
  room_default_public_jids: boolean;
  room_default_change_subject: boolean;
  room_default_history_length: number;
  room_default_allow_member_invites: boolean;
}

/** What post_msg hands the room service (post_msg.md §10). */
export interface MucPostInput {
  /** The room's bare JID. */
  room: string;
  /** The posting account's bare JID. */
  account: string;
  nick?: string;
  body: string;
  /** An XEP-0071 `<html/>` element, sent as given. */
  html?: Element;
  subject?: string;
  /** The message's id. */
  id: string;
}

export type MucPostResult =
  | { outcome: 'posted'; nick: string }
  | { outcome: 'forbidden'; rule: Refusal['rule']; detail: string }
  | { outcome: 'conflict'; detail: string }
  | { outcome: 'not-found'; detail: string };

/** The muc component's service, reached by a virtual host's module through componentService(domain, 'muc'). */
export interface MucService {
  /** Whether a room of this JID (bare, normalised) exists now. */
  hasRoom(room: string): boolean;
  /** Post as an account without joining: occupants get the message, history and archive keep it; no presence. */
  post(input: MucPostInput): Promise<MucPostResult>;
  /** post's refusals without posting (a request with several recipients checks them all first): 'allowed' with the nick. */
  check(input: Pick<MucPostInput, 'room' | 'account' | 'nick'>): MucCheckResult;
}

export type MucCheckResult = Exclude<MucPostResult, { outcome: 'posted' }> | { outcome: 'allowed'; nick: string };

declare module '../../api.js' {
  interface Services {
    muc: MucService;
  }
}

interface HistoryRequest {
  maxstanzas?: number;
  maxchars?: number;
  seconds?: number;
  since?: Date;
}

function jidParts(jid: string | undefined): { bare: string; full: string; local: string | null; domain: string; resource: string | null } | undefined {
  if (!jid) return undefined;
  const parsed = parseJid(jid);
  return parsed.ok ? parsed.jid : undefined;
}

function nonNegativeInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,9}$/.test(value)) return undefined;
  return Number(value);
}

function historyRequest(x: Element | undefined): HistoryRequest {
  const h = x?.getChild('history');
  if (!h) return {};
  const since = h.attrs.since ? new Date(h.attrs.since) : undefined;
  return {
    maxstanzas: nonNegativeInt(h.attrs.maxstanzas),
    maxchars: nonNegativeInt(h.attrs.maxchars),
    seconds: nonNegativeInt(h.attrs.seconds),
    since: since && !Number.isNaN(since.getTime()) ? since : undefined,
  };
}

/** A copy addressed to `to` sharing the children: broadcasts to hundreds of occupants serialise the same payload. */
function addressed(stanza: Element, to: string): Element {
  const copy = xml(stanza.name, { ...stanza.attrs, to });
  copy.children = [...stanza.children];
  for (const child of copy.children) if (typeof child !== 'string') child.parent = copy;
  return copy;
}

export async function load(module: ModuleApi<MucOptions>): Promise<void> {
  const service = module.host;
  const options = module.options;
  const rooms = new Map<string, Room>();
  const store = module.openMap<StoredRoom>('muc_rooms');
  const modulesEnabled = (module.setting('modules_enabled') as string[] | undefined) ?? [];
  const modulesDisabled = (module.setting('modules_disabled') as string[] | undefined) ?? [];
  // The room archive follows mam: where accounts keep theirs, rooms keep theirs (Prosody's muc_mam with mod_mam).
  const archive = modulesEnabled.includes('mam') && !modulesDisabled.includes('mam') ? module.openArchive('muc_log') : undefined;
  const admins = new Set(options.admins.map((a) => jidParts(a)?.bare ?? a));

  const defaults = (): RoomConfig => ({
    name: '',
    description: '',
    persistent: options.room_default_persistent,
    public: options.room_default_public,
    membersOnly: options.room_default_members_only,
    moderated: options.room_default_moderated,
    password: '',
    whois: options.room_default_public_jids ? 'anyone' : 'moderators',
    maxUsers: 0,
    historyLength: Math.min(options.room_default_history_length, options.max_history_messages),
    changeSubject: options.room_default_change_subject,
    allowInvites: options.room_default_allow_member_invites,
  });

  for (const [local, stored] of await store.getAll(service)) {
    const jid = `${local}@${service}`;
    rooms.set(jid, Room.fromStored(jid, stored, defaults()));
  }
  module.log.debug({ rooms: rooms.size }, 'persistent rooms loaded');

  const save = async (room: Room): Promise<void> => {
    const local = room.jid.slice(0, room.jid.indexOf('@'));
    await store.set(service, local, room.config.persistent && !room.isDestroyed ? room.toStored() : undefined);
  };
  const saveLater = (room: Room): void => {
    save(room).catch((err: unknown) => module.log.error({ err, room: room.jid }, 'could not store a room'));
  };

  const isAdmin = (bare: string): boolean => admins.has(bare);
  const mayCreate = (bare: string, domain: string): boolean => {
    if (isAdmin(bare)) return true;
    const rule = options.restrict_room_creation;
    if (rule === true) return false;
    if (rule === 'local') return module.isLocalHost(domain);
    return true;
  };

  // --- delivery -----------------------------------------------------------------------------------------------

  /** A real JID of this server with no session any more: its occupant left without saying so. */
  const isGone = (full: string): boolean => {
    const p = jidParts(full);
    return p !== undefined && module.isLocalHost(p.domain) && module.sessions.byFull(full) === undefined;
  };

  /**
   * To a real JID. Local sessions directly, in order (DIFF: Prosody routes each copy through the stanza router; here
   * a broadcast does not pay for routing per occupant, and a join's presences, history and subject keep their order).
   */
  const deliver = (to: string, stanza: Element): void => {
    const session = module.sessions.byFull(to);
    if (session) {
      session.deliver(addressed(stanza, to));
      return;
    }
    // A local full JID without a session is gone; a bare JID (an invitee) goes through routing like any message.
    const p = jidParts(to);
    if (p && p.resource !== null && module.isLocalHost(p.domain)) return;
    module.send(addressed(stanza, to)).catch((err: unknown) => module.log.debug({ err, to }, 'a room stanza was not delivered'));
  };

  const deliverToOccupant = (occupant: Occupant, stanza: Element): void => {
    for (const full of occupant.sessions.keys()) deliver(full, stanza);
  };

  /** Drop occupants whose sessions all went (DIFF: Prosody learns it from the unavailable presence its presence module sends). */
  const prune = (room: Room): void => {
    for (const occupant of [...room.occupants.values()]) {
      for (const full of [...occupant.sessions.keys()]) {
        if (!isGone(full)) continue;
        occupant.sessions.delete(full);
        room.byReal.delete(full);
      }
      if (occupant.sessions.size === 0) removeOccupant(room, occupant, xml('presence', { type: 'unavailable' }), []);
    }
  };

  // --- presence -----------------------------------------------------------------------------------------------

  const userX = (room: Room, occupant: Occupant, viewer: Occupant | undefined, codes: number[], extra: Element[] = []): Element => {
    const item = xml('item', { affiliation: room.affiliation(occupant.bare), role: occupant.role });
    if (room.canSeeRealJids(viewer)) item.attrs.jid = [...occupant.sessions.keys()].at(-1) ?? occupant.bare;
    // §8.2, §9.1: a kick's or ban's reason goes inside the item; a destroy element beside it (§10.9).
    for (const e of extra) if (e.name === 'reason') item.append(e);
    const others = extra.filter((e) => e.name !== 'reason');
    return xml('x', { xmlns: NS_USER }, item, ...others, ...codes.map((code) => xml('status', { code: String(code) })));
  };

  /** The occupant's presence as the room shows it: the client's own children (show, status, caps) and the muc#user item. */
  const occupantPresence = (room: Room, occupant: Occupant, viewer: Occupant | undefined, codes: number[], opts: { type?: string; item?: Record<string, string>; extra?: Element[] } = {}): Element => {
    const last = [...occupant.sessions.values()].at(-1);
    const presence = xml('presence', { from: `${room.jid}/${occupant.nick}`, type: opts.type });
    if (opts.type === undefined && last) {
      for (const child of last.children) {
        if (typeof child === 'string') continue;
        const ns = child.attrs.xmlns;
        if (ns === NS_MUC || ns === NS_USER) continue;
        presence.append(child);
      }
    }
    const x = userX(room, occupant, viewer, codes, opts.extra);
    if (opts.item) Object.assign(x.getChild('item')!.attrs, opts.item);
    presence.append(x);
    return presence;
  };

  /** Everyone sees `occupant`'s presence; the occupant's own sessions get status 110 (and `selfCodes`). */
  const broadcastPresence = (room: Room, occupant: Occupant, codes: number[], selfCodes: number[], opts: { type?: string; item?: Record<string, string>; extra?: Element[] } = {}): void => {
    let forModerators: Element | undefined;
    let forOthers: Element | undefined;
    for (const viewer of room.occupants.values()) {
      if (viewer === occupant) continue;
      const sees = room.canSeeRealJids(viewer);
      const presence = sees ? (forModerators ??= occupantPresence(room, occupant, viewer, codes, opts)) : (forOthers ??= occupantPresence(room, occupant, viewer, codes, opts));
      deliverToOccupant(viewer, presence);
    }
    deliverToOccupant(occupant, occupantPresence(room, occupant, occupant, [...codes, 110, ...selfCodes], opts));
  };

  /** Take an occupant out and tell everyone (itself included) with `presence`'s status and these codes. */
  const removeOccupant = (room: Room, occupant: Occupant, presence: Element, codes: number[], opts: { item?: Record<string, string>; extra?: Element[] } = {}): void => {
    const status = presence.getChild('status');
    const extra = [...(opts.extra ?? [])];
    // Everyone sees the occupant leave with role none (§7.14, §8.2).
    occupant.role = 'none';
    const unavailable = (viewer: Occupant | undefined, self: boolean): Element => {
      const p = occupantPresence(room, occupant, viewer, self ? [...codes, 110] : codes, { type: 'unavailable', item: opts.item, extra });
      if (status) p.append(xml('status', {}, status.text()));
      return p;
    };
    for (const viewer of room.occupants.values()) if (viewer !== occupant) deliverToOccupant(viewer, unavailable(viewer, false));
    const self = unavailable({ ...occupant, role: 'none' }, true);
    for (const full of occupant.sessions.keys()) deliver(full, self);
    room.occupants.delete(occupant.nick);
    for (const full of occupant.sessions.keys()) room.byReal.delete(full);
    occupant.role = 'none';
    if (room.occupants.size === 0 && !room.config.persistent) {
      room.isDestroyed = true;
      rooms.delete(room.jid);
    }
  };

  const sendSubject = (room: Room, to: string): void => {
    const from = room.subject?.by ? `${room.jid}/${room.subject.by}` : room.jid;
    deliver(to, xml('message', { type: 'groupchat', from, id: `subject-${Date.now()}` }, xml('subject', {}, room.subject?.text ?? '')));
  };

  const sendHistory = (room: Room, to: string, request: HistoryRequest): void => {
    for (const item of room.historyFor(request, new Date())) {
      const copy = addressed(item.stanza, to);
      copy.append(xml('delay', { xmlns: NS_DELAY, from: room.jid, stamp: item.stamp.toISOString() }));
      deliver(to, copy);
    }
  };

  const createRoom = (jid: string, creator: string, isInstant: boolean): Room => {
    const room = new Room(jid, defaults());
    room.affiliations.set(creator, 'owner');
    room.isLocked = options.room_locking && !isInstant;
    rooms.set(jid, room);
    return room;
  };

  const onPresence = async ({ stanza, origin }: StanzaEvent): Promise<string | undefined> => {
    const to = jidParts(stanza.attrs.to);
    const from = jidParts(stanza.attrs.from ?? origin.jid);
    if (!to || !from || to.local === null || to.resource === null) return 'discarded';
    const nick = to.resource;
    const roomJid = to.bare;
    let room = rooms.get(roomJid);
    const type = stanza.attrs.type;
    const current = room?.occupantOf(from.full);

    if (type === 'unavailable' || type === 'error') {
      if (room && current) {
        current.sessions.delete(from.full);
        room.byReal.delete(from.full);
        if (current.sessions.size === 0) {
          current.sessions.set(from.full, stanza);
          removeOccupant(room, current, stanza, []);
        } else {
          deliver(from.full, occupantPresence(room, current, current, [110], { type: 'unavailable' }));
        }
      }
      return 'delivered';
    }
    if (type !== undefined) return 'discarded';
    if (room) prune(room);

    // Already in: a presence update, or a nick change (§7.6).
    if (room && current) {
      if (current.nick === nick) {
        current.sessions.set(from.full, stanza);
        broadcastPresence(room, current, [], []);
        return 'delivered';
      }
      return changeNick(room, current, from.full, nick, stanza);
    }

    const x = stanza.getChild('x', NS_MUC);
    let isCreated = false;
    if (!room) {
      if (!mayCreate(from.bare, from.domain)) throw new StanzaError('not-allowed', 'Room creation is restricted on this service (restrict_room_creation).');
      room = createRoom(roomJid, from.bare, x === undefined);
      isCreated = true;
    }
    if (room.isLocked && room.affiliation(from.bare) !== 'owner') throw new StanzaError('item-not-found', 'This room is locked: its owner has not configured it yet.');
    const refusal = room.entryRefusal(from.bare, x?.getChildText('password') ?? undefined);
    if (refusal) throw new StanzaError(refusal.condition, refusal.text);
    const taken = room.nickTakenBy(nick, from.bare);
    if (taken) throw new StanzaError('conflict', taken === 'occupant' ? 'That nickname is in use in this room.' : 'That nickname is registered by someone else in this room.');
    const limit = Math.min(room.config.maxUsers || options.max_occupants, options.max_occupants);
    const existing = room.occupants.get(nick);
    if (!existing && room.occupants.size >= limit && affiliationRank(room.affiliation(from.bare)) < affiliationRank('admin')) {
      throw new StanzaError('service-unavailable', 'This room is full.');
    }

    // A second session of the same account under the same nick joins that occupant (Prosody's multi-session).
    const occupant: Occupant = existing ?? { nick, bare: from.bare, sessions: new Map(), role: room.defaultRole(from.bare) };
    occupant.sessions.set(from.full, stanza);
    room.byReal.set(from.full, nick);
    if (!existing) {
      // §7.2.3: the newcomer first gets everyone else's presence, then everyone gets its own.
      for (const other of room.occupants.values()) deliver(from.full, occupantPresence(room, other, occupant, []));
      room.occupants.set(nick, occupant);
    }
    const selfCodes: number[] = [];
    if (room.config.whois === 'anyone') selfCodes.push(100);
    if (archive) selfCodes.push(170);
    if (isCreated) selfCodes.push(201);
    if (existing) deliverToOccupant(occupant, occupantPresence(room, occupant, occupant, [110, ...selfCodes]));
    else broadcastPresence(room, occupant, [], selfCodes);
    if (isCreated && !room.isLocked) saveLater(room);
    sendHistory(room, from.full, historyRequest(x));
    sendSubject(room, from.full);
    return 'delivered';
  };

  const changeNick = (room: Room, occupant: Occupant, full: string, nick: string, stanza: Element): string => {
    const taken = room.nickTakenBy(nick, occupant.bare);
    if (taken || room.occupants.has(nick)) throw new StanzaError('conflict', 'That nickname is in use or registered in this room.');
    // §7.6: the old nick leaves with 303 and the new one, then the occupant comes back under it.
    const old = occupant.nick;
    for (const viewer of room.occupants.values()) {
      const codes = viewer === occupant ? [303, 110] : [303];
      deliverToOccupant(viewer, occupantPresence(room, occupant, viewer, codes, { type: 'unavailable', item: { nick } }));
    }
    room.occupants.delete(old);
    occupant.nick = nick;
    occupant.sessions.set(full, stanza);
    room.occupants.set(nick, occupant);
    for (const real of occupant.sessions.keys()) room.byReal.set(real, nick);
    broadcastPresence(room, occupant, [], []);
    return 'delivered';
  };

  // --- messages -----------------------------------------------------------------------------------------------

  /** Stamp, keep and send a groupchat message from `nick` to every occupant; resolves to its archive id. */
  const broadcastMessage = async (room: Room, nick: string, template: Element): Promise<void> => {
    const stamp = new Date();
    const hasBody = template.getChild('body') !== undefined;
    if (archive && hasBody) {
      const id = await archive.append(room.jid, { with: nick, stamp, value: serialize(template) });
      template.append(xml('stanza-id', { xmlns: NS_SID, id, by: room.jid }));
    }
    if (room.isDestroyed) return;
    if (hasBody) room.addHistory(template, stamp);
    for (const occupant of room.occupants.values()) deliverToOccupant(occupant, template);
  };

  /** What an occupant may put in a groupchat message: the client's payload minus addressing and stanza ids. */
  const groupchatFrom = (room: Room, nick: string, stanza: Element): Element => {
    const message = xml('message', { type: 'groupchat', from: `${room.jid}/${nick}`, id: stanza.attrs.id });
    for (const child of stanza.children) {
      if (typeof child === 'string') continue;
      if (child.name === 'stanza-id' && child.attrs.xmlns === NS_SID) continue;
      if (child.name === 'delay' && child.attrs.xmlns === NS_DELAY) continue;
      message.append(child);
    }
    return message;
  };

  const onGroupchat = async (room: Room, stanza: Element, from: { full: string; bare: string }): Promise<string> => {
    const occupant = room.occupantOf(from.full);
    if (!occupant) throw new StanzaError('not-acceptable', 'You are not an occupant of this room.');
    const subject = stanza.getChild('subject');
    const hasBody = stanza.getChild('body') !== undefined;
    if (occupant.role === 'visitor') throw new StanzaError('forbidden', 'This room is moderated and you have no voice.');
    if (subject && !hasBody) {
      if (!room.config.changeSubject && occupant.role !== 'moderator') throw new StanzaError('forbidden', 'Only moderators may change the subject of this room.');
      room.subject = { text: subject.text(), by: occupant.nick };
      saveLater(room);
    }
    await broadcastMessage(room, occupant.nick, groupchatFrom(room, occupant.nick, stanza));
    return 'delivered';
  };

  /** §7.8.2: an occupant invites someone through the room; in a members-only room an admin's invitee becomes a member. */
  const onMediated = (room: Room, stanza: Element, from: { full: string; bare: string }): string => {
    const x = stanza.getChild('x', NS_USER)!;
    const occupant = room.occupantOf(from.full);
    for (const decline of x.getChildren('decline')) {
      const to = jidParts(decline.attrs.to);
      if (!to) throw new StanzaError('jid-malformed', 'The decline needs a valid "to".');
      const reason = decline.getChildText('reason');
      deliver(to.full, xml('message', { from: room.jid }, xml('x', { xmlns: NS_USER }, xml('decline', { from: from.bare }, reason !== null ? xml('reason', {}, reason) : null))));
    }
    const invites = x.getChildren('invite');
    if (invites.length === 0) return 'delivered';
    if (!occupant) throw new StanzaError('not-acceptable', 'Only occupants may invite.');
    const aff = room.affiliation(from.bare);
    const isAdmin = affiliationRank(aff) >= affiliationRank('admin');
    if (!room.config.allowInvites && occupant.role !== 'moderator' && !isAdmin) throw new StanzaError('forbidden', 'Only moderators may invite to this room.');
    if (room.config.membersOnly && !isAdmin && !room.config.allowInvites) throw new StanzaError('forbidden', 'Only admins may invite to this members-only room.');
    for (const invite of invites.slice(0, 10)) {
      const to = jidParts(invite.attrs.to);
      if (!to) throw new StanzaError('jid-malformed', 'The invitation needs a valid "to".');
      if (room.config.membersOnly && isAdmin && room.affiliation(to.bare) === 'none') {
        room.affiliations.set(to.bare, 'member');
        saveLater(room);
      }
      const reason = invite.getChildText('reason');
      const out = xml('message', { from: room.jid, id: stanza.attrs.id },
        xml('x', { xmlns: NS_USER }, xml('invite', { from: from.bare }, reason !== null ? xml('reason', {}, reason) : null), room.config.password ? xml('password', {}, room.config.password) : null),
        xml('x', { xmlns: NS_CONFERENCE, jid: room.jid, reason: reason ?? undefined }));
      deliver(to.full, out);
    }
    return 'delivered';
  };

  const onBareMessage = async ({ stanza, origin }: StanzaEvent): Promise<string | undefined> => {
    const to = jidParts(stanza.attrs.to);
    const from = jidParts(stanza.attrs.from ?? origin.jid);
    if (!to || !from) return 'discarded';
    const room = rooms.get(to.bare);
    const type = stanza.attrs.type ?? 'normal';
    if (!room) {
      if (type === 'error') return 'discarded';
      throw new StanzaError('item-not-found', 'No such room.');
    }
    prune(room);
    if (type === 'error') {
      // An occupant whose client bounced a room message is taken out (Prosody kicks on error bounces).
      const occupant = room.occupantOf(from.full);
      if (occupant) removeOccupant(room, occupant, xml('presence'), [], {});
      return 'discarded';
    }
    if (type === 'groupchat') return onGroupchat(room, stanza, from);
    if (stanza.getChild('x', NS_USER)) return onMediated(room, stanza, from);
    throw new StanzaError('bad-request', 'Send groupchat messages to a room, or private messages to an occupant.');
  };

  /** A private message to one occupant (§7.5), from an occupant, under the sender's room JID. */
  const onFullMessage = async ({ stanza, origin }: StanzaEvent): Promise<string | undefined> => {
    const to = jidParts(stanza.attrs.to);
    const from = jidParts(stanza.attrs.from ?? origin.jid);
    if (!to || !from || to.resource === null) return 'discarded';
    const room = rooms.get(to.bare);
    if (stanza.attrs.type === 'error') return 'discarded';
    if (!room) throw new StanzaError('item-not-found', 'No such room.');
    prune(room);
    const sender = room.occupantOf(from.full);
    if (!sender) throw new StanzaError('not-acceptable', 'Only occupants may send private messages in this room.');
    if (stanza.attrs.type === 'groupchat') throw new StanzaError('bad-request', 'A groupchat message goes to the room, not to an occupant.');
    const target = room.occupants.get(to.resource);
    if (!target) throw new StanzaError('item-not-found', 'No such occupant.');
    const copy = xml('message', { ...stanza.attrs, from: `${room.jid}/${sender.nick}` });
    for (const child of stanza.children) if (typeof child !== 'string') copy.append(child);
    if (!copy.getChild('x', NS_USER)) copy.append(xml('x', { xmlns: NS_USER }));
    deliverToOccupant(target, copy);
    return 'delivered';
  };

  // --- iq: owner, admin, register, disco, mam, ping -----------------------------------------------------------

  const roomOf = (stanza: Stanza): Room => {
    const to = jidParts(stanza.attrs.to);
    const room = to ? rooms.get(to.bare) : undefined;
    if (!room) throw new StanzaError('item-not-found', 'No such room.');
    return room;
  };
  const senderOf = (event: StanzaEvent): { full: string; bare: string } => {
    const from = jidParts(event.stanza.attrs.from ?? event.origin.jid);
    if (!from) throw new StanzaError('bad-request');
    return from;
  };

  const destroy = async (room: Room, reason: string | null, alternate: string | undefined, password: string | null): Promise<void> => {
    const destroyEl = xml('destroy', { jid: alternate }, reason !== null ? xml('reason', {}, reason) : null, password !== null ? xml('password', {}, password) : null);
    room.config.persistent = false;
    for (const occupant of [...room.occupants.values()]) {
      const self = occupantPresence(room, occupant, occupant, [110], { type: 'unavailable', item: { affiliation: 'none', role: 'none' }, extra: [destroyEl] });
      for (const full of occupant.sessions.keys()) deliver(full, self);
      for (const viewer of room.occupants.values()) {
        if (viewer !== occupant) deliverToOccupant(viewer, occupantPresence(room, occupant, viewer, [], { type: 'unavailable', item: { affiliation: 'none', role: 'none' }, extra: [destroyEl] }));
      }
    }
    room.occupants.clear();
    room.byReal.clear();
    room.isDestroyed = true;
    rooms.delete(room.jid);
    await save(room);
    await archive?.delete(room.jid);
  };

  module.handleIq('get', NS_OWNER, 'query', (event) => {
    const room = roomOf(event.stanza);
    if (room.affiliation(senderOf(event).bare) !== 'owner') throw new StanzaError('forbidden', 'Only owners configure the room.');
    return xml('query', { xmlns: NS_OWNER }, configForm(room.config, options.max_history_messages));
  }, { to: ['bare'] });

  module.handleIq('set', NS_OWNER, 'query', async (event): Promise<true> => {
    const room = roomOf(event.stanza);
    const from = senderOf(event);
    if (room.affiliation(from.bare) !== 'owner') throw new StanzaError('forbidden', 'Only owners configure or destroy the room.');
    const query = event.stanza.getChild('query', NS_OWNER)!;
    const destroyEl = query.getChild('destroy');
    if (destroyEl) {
      const alternate = destroyEl.attrs.jid ? jidParts(destroyEl.attrs.jid)?.bare : undefined;
      if (destroyEl.attrs.jid && !alternate) throw new StanzaError('jid-malformed', 'The alternate venue is not a valid JID.');
      await destroy(room, destroyEl.getChildText('reason'), alternate, destroyEl.getChildText('password'));
      return true;
    }
    const x = query.getChild('x', NS_DATA);
    if (!x) throw new StanzaError('bad-request', 'Submit a muc#roomconfig form, cancel, or destroy.');
    if (x.attrs.type === 'cancel') {
      // §10.1.3: cancelling the configuration of a new locked room destroys it.
      if (room.isLocked) await destroy(room, null, undefined, null);
      return true;
    }
    if (x.attrs.type !== 'submit') throw new StanzaError('bad-request', 'The form must be of type submit or cancel.');
    const applied = applyConfigForm(room.config, submitted(x)!, { maxHistory: options.max_history_messages, maxOccupants: options.max_occupants });
    if (!applied.ok) throw new StanzaError('not-acceptable', applied.text);
    const wasWhois = room.config.whois;
    const wasModerated = room.config.moderated;
    room.config = applied.config;
    room.isLocked = false;
    if (room.history.length > room.config.historyLength) room.history.splice(0, room.history.length - room.config.historyLength);
    // Roles follow moderation: participants without affiliation become visitors and back (Prosody does the same).
    if (wasModerated !== room.config.moderated) {
      for (const o of room.occupants.values()) {
        const role = room.defaultRole(o.bare);
        if (o.role !== 'moderator' && role !== o.role) {
          o.role = role;
          broadcastPresence(room, o, [], []);
        }
      }
    }
    // A members-only room sends out those who are not members (§9.4, status 322).
    if (room.config.membersOnly) {
      for (const o of [...room.occupants.values()]) {
        if (affiliationRank(room.affiliation(o.bare)) < affiliationRank('member')) removeOccupant(room, o, xml('presence'), [322]);
      }
    }
    if (wasWhois !== room.config.whois) {
      const code = room.config.whois === 'anyone' ? 172 : 173;
      for (const o of room.occupants.values()) deliverToOccupant(o, xml('message', { type: 'groupchat', from: room.jid }, xml('x', { xmlns: NS_USER }, xml('status', { code: String(code) }))));
    }
    await save(room);
    return true;
  }, { to: ['bare'] });

  module.handleIq('get', NS_ADMIN, 'query', (event) => {
    const room = roomOf(event.stanza);
    const from = senderOf(event);
    const item = event.stanza.getChild('query', NS_ADMIN)?.getChild('item');
    const affiliation = item?.attrs.affiliation as Affiliation | undefined;
    const role = item?.attrs.role as Role | undefined;
    const aff = room.affiliation(from.bare);
    const occupant = room.occupantOf(from.full);
    const result = xml('query', { xmlns: NS_ADMIN });
    if (affiliation && AFFILIATIONS.includes(affiliation) && affiliation !== 'none') {
      if (affiliationRank(aff) < affiliationRank('admin')) throw new StanzaError('forbidden', 'Only admins and owners see affiliation lists.');
      for (const [jid, a] of room.affiliations) {
        if (a !== affiliation) continue;
        const nick = room.nicks.get(jid);
        result.append(xml('item', { affiliation: a, jid, nick }));
      }
      return result;
    }
    if (role && ROLES.includes(role) && role !== 'none') {
      if (occupant?.role !== 'moderator') throw new StanzaError('forbidden', 'Only moderators see role lists.');
      for (const o of room.occupants.values()) {
        if (o.role === role) result.append(xml('item', { role, nick: o.nick, affiliation: room.affiliation(o.bare), jid: [...o.sessions.keys()].at(-1) }));
      }
      return result;
    }
    throw new StanzaError('bad-request', 'Ask for one affiliation or one role.');
  }, { to: ['bare'] });

  module.handleIq('set', NS_ADMIN, 'query', async (event): Promise<true> => {
    const room = roomOf(event.stanza);
    const from = senderOf(event);
    const actorAff = room.affiliation(from.bare);
    const actorRole = room.occupantOf(from.full)?.role ?? 'none';
    const items = event.stanza.getChild('query', NS_ADMIN)!.getChildren('item');
    if (items.length === 0) throw new StanzaError('bad-request', 'No item.');
    // Check every item before changing anything: the whole request is applied or refused (§10.5 list edits).
    const plans: Array<() => void> = [];
    for (const item of items) {
      const reason = item.getChildText('reason');
      const reasonEl = reason !== null ? [xml('reason', {}, reason)] : [];
      if (item.attrs.affiliation !== undefined) {
        const target = AFFILIATIONS.includes(item.attrs.affiliation as Affiliation) ? (item.attrs.affiliation as Affiliation) : undefined;
        const jid = item.attrs.jid ? jidParts(item.attrs.jid)?.bare : item.attrs.nick ? room.occupants.get(item.attrs.nick)?.bare : undefined;
        if (!target) throw new StanzaError('bad-request', 'Unknown affiliation.');
        if (!jid) throw new StanzaError(item.attrs.nick ? 'item-not-found' : 'bad-request', 'The item needs a valid jid (or the nick of an occupant).');
        const current = room.affiliation(jid);
        const refusal = affiliationChangeRefusal(actorAff, current, target);
        if (refusal) throw new StanzaError('not-allowed', refusal);
        if (current === 'owner' && target !== 'owner' && [...room.affiliations.values()].filter((a) => a === 'owner').length <= 1) {
          throw new StanzaError('conflict', 'A room keeps at least one owner.');
        }
        plans.push(() => setAffiliation(room, jid, target, reasonEl));
        continue;
      }
      const role = item.attrs.role as Role | undefined;
      if (role === undefined || !ROLES.includes(role)) throw new StanzaError('bad-request', 'The item needs a role or an affiliation.');
      const target = item.attrs.nick !== undefined ? room.occupants.get(item.attrs.nick) : undefined;
      if (!target) throw new StanzaError('item-not-found', 'No occupant with that nick.');
      const refusal = roleChangeRefusal({ aff: actorAff, role: actorRole }, { aff: room.affiliation(target.bare), role: target.role }, role);
      if (refusal) throw new StanzaError('not-allowed', refusal);
      plans.push(() => {
        if (role === 'none') {
          removeOccupant(room, target, xml('presence'), [307], { extra: reasonEl });
          return;
        }
        target.role = role;
        broadcastPresence(room, target, [], []);
      });
    }
    for (const plan of plans) plan();
    await save(room);
    return true;
  }, { to: ['bare'] });

  /** §9.1, §9.3, §10.3, §10.6: record the affiliation; occupants of that account change role or leave. */
  const setAffiliation = (room: Room, jid: string, affiliation: Affiliation, extra: Element[]): void => {
    if (affiliation === 'none') room.affiliations.delete(jid);
    else room.affiliations.set(jid, affiliation);
    const occupant = room.occupantOfAccount(jid);
    if (!occupant) return;
    if (affiliation === 'outcast') return removeOccupant(room, occupant, xml('presence'), [301], { item: { affiliation: 'outcast' }, extra });
    if (room.config.membersOnly && affiliation === 'none') return removeOccupant(room, occupant, xml('presence'), [321], { extra });
    occupant.role = room.defaultRole(jid) === 'moderator' ? 'moderator' : occupant.role === 'moderator' ? room.defaultRole(jid) : occupant.role;
    if (affiliation === 'member' && occupant.role === 'visitor') occupant.role = 'participant';
    broadcastPresence(room, occupant, [], []);
  };

  // §7.10: register a nick; it is reserved for the account and makes it a member (as Prosody's muc registration does).
  module.handleIq('get', NS_REGISTER, 'query', (event) => {
    const room = roomOf(event.stanza);
    const from = senderOf(event);
    const nick = room.nicks.get(from.bare);
    if (nick !== undefined) return xml('query', { xmlns: NS_REGISTER }, xml('registered'), xml('username', {}, nick));
    if (room.affiliation(from.bare) === 'outcast') throw new StanzaError('forbidden', 'You are banned from this room.');
    if (room.config.membersOnly && room.affiliation(from.bare) === 'none') throw new StanzaError('registration-required', 'This room is members-only: ask an admin for membership.');
    return xml('query', { xmlns: NS_REGISTER }, xml('instructions', {}, 'Choose the nickname to reserve in this room.'), registerForm(undefined));
  }, { to: ['bare'] });

  module.handleIq('set', NS_REGISTER, 'query', async (event): Promise<true> => {
    const room = roomOf(event.stanza);
    const from = senderOf(event);
    const query = event.stanza.getChild('query', NS_REGISTER)!;
    if (query.getChild('remove')) {
      room.nicks.delete(from.bare);
      if (room.affiliation(from.bare) === 'member') setAffiliation(room, from.bare, 'none', []);
      await save(room);
      return true;
    }
    const aff = room.affiliation(from.bare);
    if (aff === 'outcast') throw new StanzaError('forbidden', 'You are banned from this room.');
    if (room.config.membersOnly && aff === 'none') throw new StanzaError('registration-required', 'This room is members-only: ask an admin for membership.');
    const values = submitted(query.getChild('x', NS_DATA));
    if (values?.get('FORM_TYPE')?.[0] !== undefined && values.get('FORM_TYPE')![0] !== FORM_REGISTER) throw new StanzaError('bad-request', `FORM_TYPE must be ${FORM_REGISTER}.`);
    const raw = values?.get('muc#register_roomnick')?.[0] ?? query.getChildText('username') ?? '';
    const nick = jidParts(`${room.jid}/${raw}`)?.resource;
    if (!nick) throw new StanzaError('not-acceptable', 'The nickname is not valid.');
    if (room.nickTakenBy(nick, from.bare)) throw new StanzaError('conflict', 'That nickname is in use or registered in this room.');
    room.nicks.set(from.bare, nick);
    if (aff === 'none') setAffiliation(room, from.bare, 'member', []);
    await save(room);
    return true;
  }, { to: ['bare'] });

  const roomFeatures = (room: Room): string[] => {
    const c = room.config;
    return [
      NS_MUC, NS_REGISTER, NS_SID, 'http://jabber.org/protocol/muc#stable_id',
      c.public ? 'muc_public' : 'muc_hidden', c.persistent ? 'muc_persistent' : 'muc_temporary',
      c.membersOnly ? 'muc_membersonly' : 'muc_open', c.moderated ? 'muc_moderated' : 'muc_unmoderated',
      c.password ? 'muc_passwordprotected' : 'muc_unsecured', c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
      ...(archive ? [NS_MAM] : []),
    ];
  };

  const info = (identity: Record<string, string>, features: string[], extra?: Element): Element => {
    const query = xml('query', { xmlns: NS_INFO }, xml('identity', identity));
    for (const v of [...new Set([NS_INFO, NS_ITEMS, ...features])].sort()) query.append(xml('feature', { var: v }));
    if (extra) query.append(extra);
    return query;
  };

  /** Hidden, locked and members-only rooms are not listed to those who may not enter them (§6.3). */
  const isListed = (room: Room): boolean => room.config.public && !room.isLocked;

  module.handleIq('get', NS_INFO, 'query', () => info({ category: 'conference', type: 'text', name: options.name }, [NS_MUC, NS_PING]), { to: ['host'] });
  module.handleIq('get', NS_ITEMS, 'query', () => {
    const items = [...rooms.values()].filter(isListed).sort((a, b) => (a.jid < b.jid ? -1 : 1));
    return xml('query', { xmlns: NS_ITEMS }, ...items.slice(0, 1000).map((r) => xml('item', { jid: r.jid, name: r.config.name || undefined })));
  }, { to: ['host'] });
  module.handleIq('get', NS_INFO, 'query', (event) => {
    const room = roomOf(event.stanza);
    if (room.isLocked && room.affiliation(senderOf(event).bare) !== 'owner') throw new StanzaError('item-not-found', 'No such room.');
    return info({ category: 'conference', type: 'text', name: room.config.name || room.jid.slice(0, room.jid.indexOf('@')) }, roomFeatures(room), roomInfoForm(room.config, room.occupants.size, room.subject?.text));
  }, { to: ['bare'] });
  // §6.5: occupants are listed only to occupants, and never their real JIDs.
  module.handleIq('get', NS_ITEMS, 'query', (event) => {
    const room = roomOf(event.stanza);
    const isIn = room.occupantOf(senderOf(event).full) !== undefined;
    return xml('query', { xmlns: NS_ITEMS }, ...(isIn ? [...room.occupants.keys()].map((nick) => xml('item', { jid: `${room.jid}/${nick}`, name: nick })) : []));
  }, { to: ['bare'] });

  // XEP-0410: a client pings its own occupant JID; the room answers for it, and says not-acceptable if it is not in.
  module.handleIq('get', NS_PING, 'ping', (event) => {
    const to = jidParts(event.stanza.attrs.to)!;
    const room = rooms.get(to.bare);
    const occupant = room?.occupantOf(senderOf(event).full);
    if (!room || !occupant) throw new StanzaError('not-acceptable', 'You are not an occupant of this room.');
    if (occupant.nick === to.resource) return true;
    // DIFF: Prosody forwards iqs to other occupants; here only self-pings are answered.
    throw new StanzaError('service-unavailable', 'iq requests are not forwarded to other occupants.');
  }, { to: ['full'] });
  module.handleIq('get', NS_PING, 'ping', () => true, { to: ['host', 'bare'] });

  // XEP-0313 on the room JID: occupants (members, for members-only rooms) read its archive.
  if (archive) {
    module.handleIq('set', NS_MAM, 'query', async (event) => {
      const room = roomOf(event.stanza);
      const from = senderOf(event);
      const query = event.stanza.getChild('query', NS_MAM)!;
      const aff = room.affiliation(from.bare);
      if (aff === 'outcast' || (room.config.membersOnly && affiliationRank(aff) < affiliationRank('member'))) throw new StanzaError('forbidden', 'Only members read this room\'s archive.');
      const values = submitted(query.getChild('x', NS_DATA)) ?? new Map<string, string[]>();
      const date = (name: string): Date | undefined => {
        const v = values.get(name)?.[0];
        if (v === undefined) return undefined;
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) throw new StanzaError('bad-request', `${name} is not a date-time.`);
        return d;
      };
      const set = query.getChild('set', NS_RSM);
      const max = Math.min(nonNegativeInt(set?.getChildText('max') ?? undefined) ?? 20, MAX_MAM_PAGE);
      const before = set?.getChild('before');
      const after = set?.getChildText('after') ?? undefined;
      const isBackward = before !== undefined;
      const page = await archive.find(room.jid, { start: date('start'), end: date('end'), after, before: before?.text() || undefined, limit: max, reverse: isBackward });
      const items = isBackward ? [...page.items].reverse() : page.items;
      for (const item of items) {
        let stored: Element;
        try {
          stored = parse(item.value) as Element;
        } catch {
          continue;
        }
        deliver(from.full, xml('message', { from: room.jid }, xml('result', { xmlns: NS_MAM, queryid: query.attrs.queryid, id: item.id },
          xml('forwarded', { xmlns: NS_FORWARD }, xml('delay', { xmlns: NS_DELAY, stamp: item.stamp.toISOString() }), stored))));
      }
      const rsm = xml('set', { xmlns: NS_RSM });
      if (items.length > 0) {
        rsm.append(xml('first', {}, items[0]!.id));
        rsm.append(xml('last', {}, items.at(-1)!.id));
      }
      return xml('fin', { xmlns: NS_MAM, complete: page.complete ? 'true' : undefined }, rsm);
    }, { to: ['bare'] });
  }

  module.hook('presence/full', onPresence);
  // Presence to a room's bare JID has no nick (§7.2.1): jid-malformed, as Prosody answers.
  module.hook('presence/bare', ({ stanza }) => {
    if (stanza.attrs.type === undefined) throw new StanzaError('jid-malformed', 'Join a room as room@service/nick.');
    return 'discarded';
  });
  module.hook('presence/host', () => 'discarded');
  module.hook('message/bare', onBareMessage);
  module.hook('message/full', onFullMessage);
  module.hook('message/host', () => 'discarded');

  // Deleting an account deletes what rooms keep for it (affiliations, registered nick): an account made again under
  // that name inherits no rights or reserved nick. The event fires globally (the account's host is not this one).
  // A room whose only owner was deleted stays, without an owner.
  module.hookGlobal('user-deleted', ({ jid }) => {
    for (const room of rooms.values()) {
      if (!room.affiliations.has(jid) && !room.nicks.has(jid)) continue;
      room.nicks.delete(jid);
      if (room.affiliations.has(jid)) setAffiliation(room, jid, 'none', []);
      saveLater(room);
    }
  });

  // --- the post service (post_msg.md §10) ------------------------------------------------------------------------

  const checkPost: MucService['check'] = (input) => {
    const room = rooms.get(input.room);
    if (!room || room.isLocked) return { outcome: 'not-found', detail: `There is no room ${input.room} on this server.` };
    prune(room);
    const refusal = room.postRefusal(input.account);
    if (refusal) return { outcome: 'forbidden', rule: refusal.rule, detail: `The room ${input.room} refused the post (${refusal.rule}): ${refusal.text}` };
    const occupant = room.occupantOfAccount(input.account);
    if (occupant) {
      if (input.nick !== undefined && input.nick !== occupant.nick) return { outcome: 'conflict', detail: `The account is in the room as ${occupant.nick}; give that nick or none.` };
      return { outcome: 'allowed', nick: occupant.nick };
    }
    const wanted = input.nick ?? room.nicks.get(input.account) ?? input.account.slice(0, input.account.indexOf('@'));
    const nick = jidParts(`${room.jid}/${wanted}`)?.resource;
    if (!nick) return { outcome: 'conflict', detail: `The nick ${JSON.stringify(wanted)} is not a valid nickname.` };
    const taken = room.nickTakenBy(nick, input.account);
    if (taken) return { outcome: 'conflict', detail: `The nick ${nick} is ${taken === 'occupant' ? 'in use by another account in' : 'registered by another account in'} ${input.room}.` };
    return { outcome: 'allowed', nick };
  };

  module.setService<'muc'>({
    hasRoom: (jid) => rooms.has(jid),
    check: checkPost,
    async post(input) {
      const checked = checkPost(input);
      if (checked.outcome !== 'allowed') return checked;
      const { nick } = checked;
      const room = rooms.get(input.room)!;
      const message = xml('message', { type: 'groupchat', from: `${room.jid}/${nick}`, id: input.id },
        input.subject !== undefined ? xml('subject', {}, input.subject) : null,
        xml('body', {}, input.body),
        input.html ?? null);
      await broadcastMessage(room, nick, message);
      return { outcome: 'posted', nick };
    },
  });
}

export const muc: ModuleDefinition = {
  manifest: {
    id: 'muc',
    description: 'Multi-User Chat (XEP-0045) as a component: rooms, affiliations and roles, history, registration, invitations, self-ping, room archive with mam.',
    component: true,
    options: {
      name: { type: 'string', default: 'Chatrooms', description: 'The service\'s name in service discovery.' },
      // COMPAT: Prosody's values false (anyone), true (admins only) and local (accounts of this server's hosts).
      // DIFF: default local, not false: strangers from other servers do not create rooms here unless allowed.
      restrict_room_creation: { type: 'string', enum: ['local'], orBoolean: true, default: 'local', description: 'Who may create rooms: false anyone, true only `admins`, local the accounts of this server.' },
      // COMPAT: Prosody's admins is a global key; here the service's own list.
      admins: { type: 'string[]', default: [], description: 'Bare JIDs that may create rooms when restrict_room_creation is true.' },
      max_history_messages: { type: 'integer', default: 20, min: 0, max: 1000, description: 'Most messages a room keeps for history on join (each room\'s historylength is at most this).' },
      // DIFF: Prosody bounds occupants only per room (muc_max_occupants in 0.12 is global); a service-wide cap bounds memory.
      max_occupants: { type: 'integer', default: 10000, min: 1, max: 1000000, description: 'Most occupants in one room (a room\'s maxusers is at most this).' },
      room_locking: { type: 'boolean', default: true, description: 'A room created with the MUC protocol stays locked until its owner configures it (XEP-0045 §10.1).' },
      room_default_public: { type: 'boolean', default: true, description: 'New rooms are listed in service discovery.' },
      room_default_persistent: { type: 'boolean', default: false, description: 'New rooms outlive their last occupant.' },
      room_default_members_only: { type: 'boolean', default: false, description: 'New rooms admit only members.' },
      room_default_moderated: { type: 'boolean', default: false, description: 'New rooms give voice only to members and moderators.' },
      room_default_public_jids: { type: 'boolean', default: false, description: 'New rooms show occupants\' real JIDs to everyone (whois anyone).' },
      room_default_change_subject: { type: 'boolean', default: false, description: 'Occupants of new rooms may change the subject.' },
      room_default_history_length: { type: 'integer', default: 20, min: 0, max: 1000, description: 'History length of new rooms.' },
      room_default_allow_member_invites: { type: 'boolean', default: false, description: 'Occupants of new rooms may invite others.' },
    },
  },
  load: load as ModuleDefinition['load'],
};
