// The plugin API: the only host file a plugin imports (conventions: "two rooms with one door").
// Modelled on Prosody's module API (core/moduleapi.lua): load(module) receives everything a module may use.

import type { Element } from '@xmpp/xml';
import type Router from 'koa-router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Server as NetServer } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export type { Element } from '@xmpp/xml';
export { xml } from '@xmpp/xml';
export { parseJid, type Jid, type JidResult } from './util/jid.js';
export { findIllegalXmlChar, describeCodePoint } from './util/xml-text.js';
export { sendProblem, type ProblemInit } from './util/problem.js';
import type { HttpAppPolicy } from './util/http-policy.js';
export { errorReply, cloneStanza, reply } from './util/stanza.js';
export { serialize } from './util/serialize.js';
export type { AuthResult, SaslUsers } from './util/sasl/sasl.js';
export type { ScramCredentials } from './util/sasl/sasl-scram.js';
export type { AuthAdmission, AuthAttempt } from './util/throttle.js';
import type { AuthResult } from './util/sasl/sasl.js';
import type { ScramCredentials } from './util/sasl/sasl-scram.js';
import type { AuthAdmission } from './util/throttle.js';
import type { StoredXml } from './util/preserialize.js';
export { HostError, StanzaError, type HostErrorCode, type StanzaErrorCondition } from './util/errors.js';

/** A stanza is an @xmpp/xml element named message, presence or iq. */
export type Stanza = Element;

/** What local routing did with a message (RFC 6121 §8.5); `sent`: written to an authenticated stream to its server (s2s). */
export type Outcome = 'delivered' | 'stored' | 'discarded' | 'sent';

/** An option value (module option or host key), as declared by an OptionSpec. */
export type OptionValue = string | number | boolean | string[] | number[] | Record<string, string>;

/**
 * What an option's strings or numbers must look like; checked before any module runs, some normalised
 * (ejabberd's econf): `origin` scheme://host[:port], lowercased; `url` absolute http(s); `path` an HTTP path
 * from "/", trailing slash dropped; `port` 0-65535; `domain` a domain name, lowercased; `duration` seconds or
 * 30s/15m/12h/90d/1w, resolved to seconds; `address` an IP address or CIDR range.
 */
export type OptionFormat = 'origin' | 'url' | 'path' | 'port' | 'domain' | 'duration' | 'address';

/** One option: a module's in its manifest (`plugin.json` for post_msg), or a host key of the config. */
export interface OptionSpec {
  /** Strings are never empty; `map` is string keys to string values (the format applies to the values). */
  type: 'string' | 'integer' | 'number' | 'boolean' | 'string[]' | 'integer[]' | 'map';
  /** Applies to each element of a list and each value of a map. */
  format?: OptionFormat;
  /** Absent: unset unless configured (host keys only; a plugin manifest gives every option a default). */
  default?: OptionValue;
  description: string;
  /** Bounds of a number (after a duration is resolved to seconds), of each element of an integer list. */
  min?: number;
  max?: number;
  /** For strings and string lists: the allowed values; for a duration, words allowed besides durations (`never`), kept as they are. */
  enum?: string[];
  /** For `map`: exactly these keys. */
  fields?: string[];
  /** The value may also be true or false (Prosody's switch-or-list options, such as cross_domain_websocket). */
  orBoolean?: boolean;
}

/** A module's manifest: what it is called, what it needs, which options it takes. */
export interface Manifest {
  id: string;
  description: string;
  /** Path of the entry module, relative to the code root (the folder holding lib/). */
  main?: string;
  depends?: string[];
  options?: Record<string, OptionSpec>;
  /** Loaded once for the whole server, on host `*` (Prosody's module:set_global()): hooks on the global bus, sees every host's items. */
  global?: boolean;
  /** A core module also loaded on every component host (disco, ping: Prosody answers those on components too). */
  loadOnComponents?: boolean;
  /** Made to serve a component domain (`components: { <domain>: { module: <id>, ...options } }`): its options sit beside `module` there. */
  component?: boolean;
}

/** Where a stanza came from. A local account's client, the server itself, or a module acting for an account. */
export interface Origin {
  /** `c2s`: a client session; `local`: injected by a module (post_msg); `host`: the server itself. */
  type: 'c2s' | 'local' | 'host' | 's2s';
  /** The virtual host this origin belongs to. */
  host: string;
  /** Full or bare JID of the account, for `c2s` and `local`. */
  jid?: string;
  /** Deliver a stanza back to this origin (error bounces, iq results). Absent for `local` and `host`. */
  send?(stanza: Stanza): void;
}

/** The payload of every stanza event (`message/bare`, `iq-get/host/urn:xmpp:ping:ping`, `pre-message/bare`, …). */
export interface StanzaEvent {
  stanza: Stanza;
  origin: Origin;
  /** The virtual host on which the event fires. */
  host: string;
}

/**
 * A handler claims an event by returning anything but `undefined` (Prosody's event chain).
 * For message events the claiming value is the routing Outcome.
 */
export type EventHandler<T = StanzaEvent> = (event: T) => unknown;

/** A client session as the router sees it; the c2s module fills the registry. */
export interface ClientSession {
  readonly id: string;
  /** Full JID once bound. */
  readonly full: string;
  readonly bare: string;
  readonly host: string;
  /** Available (sent initial presence) and not yet unavailable. */
  readonly isAvailable: boolean;
  /** Priority from the last available presence (RFC 6121 §4.7.2.3); 0 if none given. */
  readonly priority: number;
  /**
   * Write a stanza to this client: false when the session does not take it (closing, closed, or not reading: its
   * write buffer passed the limit). Taken is not yet written: see whenWritten().
   */
  deliver(stanza: Stanza): boolean;
  /**
   * Resolves true once every stanza this session took so far was written to its transport, false if the connection
   * closed first. With stream management (XEP-0198) it will resolve on the client's acknowledgement.
   */
  whenWritten(): Promise<boolean>;
  /** Close the stream, optionally with a stream error condition, its text and an application-specific condition. */
  close(condition?: string, text?: string, appCondition?: Element): void;
  /**
   * Stream management (XEP-0198) takes part in the session's life: whenWritten() then answers through
   * `hooks.whenAcked`, a connection lost without a closed stream may leave the session hibernating, and `ended` says
   * the session is gone for good. Undefined gives the session back its own rules. Absent on transports without it.
   */
  manage?(hooks: SessionManagement | undefined): void;
  /** Without a connection, kept for resumption (XEP-0198 §5). */
  readonly isHibernating?: boolean;
  /**
   * Continue this session (same object: its resource, presence and every module's state stay) on the connection of
   * `from`, an authenticated, unbound stream of the same account, which ends without closing that connection; this
   * session's own connection, dead or not, is dropped. False (nothing changed) when that cannot be.
   */
  resume?(from: ClientSession): boolean;
  /** Drop the connection as a dead network would (no more reading or writing): hibernation rules apply. */
  dropConnection?(): void;
  /** The last available presence the client sent (Prosody's session.presence), for probes and broadcasts. */
  readonly lastPresence?: Stanza;
  /**
   * Record the client's presence: available or not, its priority, the stanza (RFC 6121 §4.2, §4.5). Only the presence
   * module calls it, as Prosody's mod_presence sets session.presence and session.priority. Absent: presence not kept.
   */
  setPresence?(isAvailable: boolean, priority: number, presence: Stanza | undefined): void;
}

/** What stream management tells a session (ClientSession.manage). */
export interface SessionManagement {
  /** Answers the session's whenWritten(): true once the client acknowledged every stanza it was given so far. */
  whenAcked(): Promise<boolean>;
  /** The connection went without `</stream>` or a stream error from us: true keeps the session, hibernating. */
  connectionLost(): boolean;
  /** The session ended for good (closed, replaced, hibernated too long): what it still holds is the manager's to hand on. */
  ended(): void;
}

/**
 * Who is online. In-process today; a Redis-backed registry can implement the same
 * interface when several nodes share session routing.
 */
export interface SessionRegistry {
  add(session: ClientSession): void;
  remove(session: ClientSession): void;
  byFull(fullJid: string): ClientSession | undefined;
  byBare(bareJid: string): ClientSession[];
  all(): ClientSession[];
}

/**
 * Per-account JSON documents (Prosody's keyval store): roster, settings. `user` is the account's bare JID:
 * deleting the account deletes its documents in every store of its host.
 */
export interface KeyValueStore<T = unknown> {
  get(user: string): Promise<T | undefined>;
  set(user: string, value: T | undefined): Promise<void>;
}

/**
 * Per-account maps of JSON values by key (Prosody's map store): one entry is read or written without the others,
 * so a change costs the same however many entries the account has (a roster, item by item). `user` is the
 * account's bare JID: deleting the account deletes its entries in every map of its host.
 */
export interface MapStore<T = unknown> {
  get(user: string, key: string): Promise<T | undefined>;
  /** Every entry of the account, in key order. */
  getAll(user: string): Promise<Map<string, T>>;
  /** undefined deletes the entry. */
  set(user: string, key: string, value: T | undefined): Promise<void>;
  /** Several entries in one transaction: all of them are written, or none. undefined deletes an entry. */
  setKeys(user: string, entries: ReadonlyMap<string, T | undefined>): Promise<void>;
  /** Delete every entry of the account in this map. */
  clear(user: string): Promise<void>;
}

/** An item of an archive store (Prosody's archive: key, value, when, with). */
export interface ArchiveItem {
  /** Unique in one account's archive: usable as an XEP-0359 stanza-id and as an RSM before/after cursor. */
  id: string;
  stamp: Date;
  /** The other party (a JID), '' when there is none. */
  with: string;
  value: string;
}

/** Which items of an account's archive a count or delete applies to; every given condition must hold. */
export interface ArchiveFilter {
  /** Stamp at or after. */
  start?: Date;
  /** Stamp at or before. */
  end?: Date;
  /** Exactly this `with`. */
  with?: string;
  /** Stored before the item with this id (exclusive); an unknown id rejects with StanzaError item-not-found. */
  before?: string;
  /** Stored after the item with this id (exclusive); an unknown id rejects with StanzaError item-not-found. */
  after?: string;
  /** Only these ids. */
  ids?: readonly string[];
}

/** A find: a filter, at most `limit` items, oldest first (newest first with `reverse`). */
export interface ArchiveQuery extends ArchiveFilter {
  limit?: number;
  reverse?: boolean;
}

/** One page of a find; `complete` when no further matching item lies beyond it in the query's direction. */
export interface ArchivePage {
  items: ArchiveItem[];
  complete: boolean;
}

/**
 * Per-account archives in storage order (Prosody's archive store: offline messages, later MAM). `user` is the
 * account's bare JID (or a room's, for a component); deleting the account deletes its items in every archive.
 */
export interface ArchiveStore {
  /**
   * Durable when it resolves; resolves to the item's id (a new random one unless given). An id already in the
   * account's archive replaces that item, which moves to the end (as Prosody's SQL archive does).
   */
  append(user: string, item: { id?: string; stamp?: Date; with: string; value: string }): Promise<string>;
  find(user: string, query?: ArchiveQuery): Promise<ArchivePage>;
  count(user: string, filter?: ArchiveFilter): Promise<number>;
  /** Resolves to how many items were deleted; without a filter, all of the account's items. */
  delete(user: string, filter?: ArchiveFilter): Promise<number>;
}

/** One account's SCRAM credentials (Prosody's internal_hashed): never the password itself. */
export interface UserRecord {
  /** Normalised bare JID. */
  jid: string;
  iterations: number;
  salt: Buffer;
  sha1StoredKey: Buffer;
  sha1ServerKey: Buffer;
  sha256StoredKey: Buffer;
  sha256ServerKey: Buffer;
}

/** The accounts, as a storage backend keeps them (the host's user service sits on it). */
export interface UserStore {
  get(jid: string): Promise<UserRecord | undefined>;
  /** Insert; resolves false when the account exists already. */
  create(record: UserRecord): Promise<boolean>;
  /** Replace the credentials; resolves false when the account does not exist. */
  update(record: UserRecord): Promise<boolean>;
  /**
   * Delete the account and, in the same transaction, everything stored for it on its host (every key-value
   * document, map entry and archive item whose user is this JID): a new account of that name starts empty, even
   * when the process stops half-way (Prosody's storagemanager.purge). Resolves false when the account did not exist.
   */
  delete(jid: string): Promise<boolean>;
  /** Bare JIDs, sorted; only those of `host` when given. */
  list(host?: string): Promise<string[]>;
  /** How many accounts have each PBKDF2 iteration count, by count: decoys for unknown names are drawn from it. */
  iterationCounts(): Promise<Array<{ iterations: number; accounts: number }>>;
  /**
   * A count that moves when another writer (the CLI, another node) may have changed accounts (SQLite: a count
   * kept by triggers on the accounts table; a PostgreSQL store could use LISTEN/NOTIFY). This store's own writes do
   * not move it: the host announces those itself ('user-changed'). The host polls it to recheck open client streams.
   */
  outsideChangeCount(): number;
}

/**
 * Everything a storage backend keeps: accounts and every module's stores. SQLite implements it
 * (modules/storage_sqlite); a PostgreSQL backend for several nodes can implement it without touching modules
 * (Prosody's storagemanager has the same split). spec/host/core/storage/contract.ts is the suite each runs.
 */
export interface Storage {
  users: UserStore;
  keyValue<T>(host: string, store: string): KeyValueStore<T>;
  /** One archive per (host, store): opened again (a module reloaded), it is the same object. */
  archive(host: string, store: string): ArchiveStore;
  /** One map store per (host, store) (Prosody's map store kind). */
  map<T>(host: string, store: string): MapStore<T>;
  close(): void;
}

/**
 * A storage backend (Prosody's storage drivers): the host key `storage: <name>` picks the one the module
 * `storage_<name>` provides. The host loads that module and opens the backend before any other module loads,
 * and closes it after the last one unloaded.
 */
export interface StorageBackend {
  /** What `storage:` names, e.g. `sqlite`. */
  name: string;
  /** Open the server's storage; `dataDir` is the resolved `data_dir`. */
  open(options: { dataDir: string }): Storage | Promise<Storage>;
}

/** The host's user store as modules see it. JIDs are bare and normalised (parseJid). */
export interface UsersApi {
  exists(bareJid: string): Promise<boolean>;
  /** SASL PLAIN semantics: SASLprep, derive, compare in constant time. Unknown users take as long. */
  verifyPassword(bareJid: string, password: string): Promise<boolean>;
  /**
   * verifyPassword plus the host's per-address failure throttle
   * (`auth_failures_per_minute`), shared by HTTP and c2s.
   */
  authenticate(input: { jid: string; password: string; address: string }): Promise<AuthResult>;
  /** SCRAM credentials for SASL SCRAM-SHA-1/-256 (RFC 5802); undefined for an unknown user. */
  scramCredentials(bareJid: string, hash: 'sha1' | 'sha256'): Promise<ScramCredentials | undefined>;
  /** SCRAM stand-in for an unknown account: shaped and drawn like stored credentials, stable per name (no enumeration). */
  scramDecoy(bareJid: string, hash: 'sha1' | 'sha256'): Promise<ScramCredentials>;
  /**
   * A throttle slot for one credential check made outside authenticate() (SASL SCRAM): call `failed()` or
   * `succeeded()` on it after the check. Counts checks in flight, so parallel attempts share the limit.
   */
  beginAuthAttempt(address: string): AuthAdmission | Promise<AuthAdmission>;
  /** Seconds an address must wait before its next attempt (finished failures), 0 if none. */
  authRetryAfter(address: string): number;
}


/** An HTTP app: a koa-router whose routes are relative to the app's base path. */
export interface HttpApp extends HttpAppPolicy {
  /** Default base path, e.g. `/msg`; `http_paths` overrides it (virtual host > global > default). */
  defaultPath: string;
  /** The app's key in `http_paths` (Prosody's http item `name`); default the providing module's id. */
  name?: string;
  router: Router;
  /** What the app is, for people: the host's index page (http_index) lists it under this name. */
  title?: string;
  /**
   * The methods the app answers (`['POST']`). Then the http module answers OPTIONS (204, `Allow`) and any other
   * method (405) before the app runs; without them the app answers both itself.
   */
  methods?: string[];
  /** Headers added to the OPTIONS answer, e.g. `{ 'Accept-Post': 'text/plain' }` (RFC 9110 §9.3.7). */
  optionsHeaders?: Record<string, string>;
  /**
   * Web origins whose pages may call the app cross-site and read its answers (CORS). A request with any other
   * foreign Origin, or `Sec-Fetch-Site: cross-site` without an allowed Origin, gets 403 unless its method is safe.
   */
  corsOrigins?: readonly string[];
  /** `Access-Control-Allow-Headers` for allowed origins; default Authorization, Content-Type. */
  corsHeaders?: string[];
  /**
   * Take over an HTTP Upgrade request under the app's base path (a WebSocket, RFC 6455 §4). The handler owns the
   * socket: it answers the handshake or refuses it and closes the socket. Without it an upgrade there is refused.
   */
  upgrade?(request: HttpUpgrade): void;
}

/** An HTTP Upgrade request handed to an app (Node's `upgrade` event, plus what the http module knows about it). */
export interface HttpUpgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  /** The client's address (behind trusted_proxies, the forwarded one), as ctx.request.ip for other requests. */
  clientAddress: string | undefined;
  /** The connection came over TLS (the https listener). */
  isTls: boolean;
  /** The virtual host the request was dispatched to. */
  host: string;
}

/**
 * A listening service (Prosody's `net` items, core/portmanager.lua): the host opens one server per configured
 * interface × port, and closes them when the providing module unloads.
 */
export interface NetItem {
  /** Prosody's service name: `c2s`, `c2s_direct_tls`, `http`, `https`. */
  name: string;
  /** Host key listing the ports; default `<name>_ports`. A missing key means defaultPorts. */
  portsSetting?: string;
  /** Host key listing the interfaces; default `<name>_interfaces`. */
  interfacesSetting?: string;
  defaultPorts?: readonly number[];
  /** Needs the server's TLS key and certificate (direct TLS, HTTPS, STARTTLS): loaded once, then handed in. */
  tls?: boolean;
  /** A new server for one address and port, not yet listening. */
  createServer(tls: { key: string; cert: string } | undefined): NetServer;
  /** Stop one of its servers gracefully; default server.close(). Connections may still be open when it starts. */
  close?(server: NetServer): Promise<void>;
}

/**
 * State the host reads from `ctx.state` after an HTTP app ran, for its request log line.
 * Never put a password, an Authorization header or a message body here.
 */
export interface HttpLogState {
  account?: string;
  log?: Record<string, string | number | undefined>;
}

export type HttpContext = Context;

/**
 * Kinds of item a module can provide (Prosody's module:provides); the host removes each when its module unloads.
 * Open: a module inventing a kind adds it by declaration merging,
 * `declare module '<path>/api.js' { interface Provides { my_kind: MyItem } }`.
 */
export interface Provides {
  http: HttpApp;
  /** A listener; the port manager in core consumes them. */
  net: NetItem;
  /** A disco#info feature var advertised on the server (XEP-0030). */
  disco_feature: string;
  /** A disco#info feature var advertised on accounts' bare JIDs. */
  account_disco_feature: string;
  /** A storage backend (`storage_<name>` modules); the host opens the one the `storage` key names. */
  storage: StorageBackend;
}

/** Who provided an item: the host it was provided on (`*` for a global module) and the module. */
export interface ItemInfo {
  readonly host: string;
  readonly module: string;
}

/**
 * Services modules offer each other through `setService()` / `depends()`. Open, like Provides: the offering module
 * adds its entry, `declare module '<path>/api.js' { interface Services { tokenauth: TokenService } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface Services {}

/** Federation (the s2s module's service, absent when `modules_disabled: [s2s]`): for a sender that waits (post_msg.md §9). */
export interface S2sService {
  /**
   * Tie a stanza about to be sent with module.send to a signal: if it aborts before the stanza is on an
   * authenticated stream to its domain, the stanza leaves the queue (never sent later) and the send rejects
   * remote-server-timeout.
   */
  withdrawOnAbort(stanza: Stanza, signal: AbortSignal): void;
}

export interface Services {
  s2s: S2sService;
}

/** An app token as listed (never its secret): `xmppd token list`, `GET /tokens`. */
export interface TokenInfo {
  /** Public part of the token (its prefix), for listing and revoking. */
  id: string;
  name: string;
  /** The account's bare JID: the token sends as it. */
  account: string;
  /** Bare JIDs or domains the token may send to; absent: anyone. */
  to?: string[];
  /** ISO 8601. */
  created: string;
  /** ISO 8601; absent: never. */
  expires?: string;
}

/** A token check: the token's account and scope, or why it fails (unknown, revoked and expired look alike to callers). */
export type TokenCheck = { ok: true; info: TokenInfo } | { ok: false; reason: 'malformed' | 'unknown' | 'expired' };

/**
 * The host's app tokens (module tokenauth, post_msg.md §11): only a hash of each secret is stored, per account, so
 * deleting the account deletes its tokens. Expected failures are values; a bad name, scope or lifetime throws
 * HostError HOST_ERR_TOKEN_INVALID, and a token past the account's cap of live tokens HOST_ERR_TOKEN_LIMIT.
 */
export interface TokenService {
  /** A new token for an existing account of this host; `token` is the secret, shown once. */
  create(account: string, input: { name: string; to?: readonly string[]; expiresInSeconds?: number }): Promise<{ token: string; info: TokenInfo }>;
  /** The account's tokens, oldest first. */
  list(account: string): Promise<TokenInfo[]>;
  /** Revoke one of the account's tokens; false when it has no token with that id. Takes effect at once. */
  revoke(account: string, id: string): Promise<boolean>;
  /** Check a presented token in constant time against the stored hash. */
  verify(token: string): Promise<TokenCheck>;
  /** Does the token's scope allow this recipient (a bare or full JID)? */
  allows(info: TokenInfo, recipient: string): boolean;
}

export interface Services {
  tokenauth: TokenService;
}

/** A roster item's subscription state (RFC 6121 §2.1.2.5). */
export type Subscription = 'none' | 'to' | 'from' | 'both';

/** One contact of an account's roster (RFC 6121 §2.1), as the roster module stores it. */
export interface RosterItem {
  jid: string;
  name?: string;
  subscription: Subscription;
  ask?: 'subscribe';
  /** Pre-approved (RFC 6121 §3.4): the contact's subscription request will be approved at once. */
  approved?: true;
  groups: string[];
}

/**
 * A subscription request that is waiting for the account's answer (RFC 6121 §3.1.3 "pending in"), kept whole, with its
 * status and nick, as Prosody keeps it in the roster's pending list: each new session gets it until it is answered.
 */
export interface PendingRequest {
  /** The requester's bare JID. */
  from: string;
  /** The presence stanza as it arrived (serialized). */
  stanza: string;
}

/** A change to push to interested resources (RFC 6121 §2.1.6): an item, or a removed contact's JID. */
export type RosterChange = { item: RosterItem } | { removed: string };

/** What a subscription change sees of one contact: its roster item and its pending request, either possibly absent. */
export interface ContactState {
  item: RosterItem | undefined;
  pending: PendingRequest | undefined;
}

/** What a subscription change writes: a field left out stays as it is, null deletes. */
export interface ContactUpdate {
  item?: RosterItem | null;
  pending?: PendingRequest | null;
}

/** The outcome of an update: the state before and after, and, when the item changed, the new ver and the change to push. */
export interface ContactResult {
  before: ContactState;
  after: ContactState;
  pushed?: { ver: string; change: RosterChange };
}

/** What the roster module offers the presence module (and others) through depends('roster'). */
export interface RosterService {
  /** Every item of the account's roster. */
  items(user: string): Promise<RosterItem[]>;
  /** One contact's item and pending request. */
  contact(user: string, jid: string): Promise<ContactState>;
  /** Subscription requests waiting for the account's answer. */
  pendingRequests(user: string): Promise<PendingRequest[]>;
  /** Change a contact's subscription state (RosterStore.update); a changed item is pushed to interested resources. */
  update(user: string, jid: string, decide: (state: ContactState) => ContactUpdate | undefined): Promise<ContactResult>;
  /** Whether the session asked for the roster (RFC 6121 §2.1.6 interested resource). */
  isInterested(session: ClientSession): boolean;
}

export interface Services {
  roster: RosterService;
}

/** Who may see a PEP node's items (XEP-0060 §4.5, the models XEP-0163 uses). */
export type AccessModel = 'presence' | 'open' | 'whitelist';

/** A PEP node's configuration (XEP-0060 §8.2 pubsub#node_config), the fields the pep module honours. */
export interface NodeConfig {
  access_model: AccessModel;
  persist_items: boolean;
  /** A number, or 'max': the server's ceiling (pep.max_items). */
  max_items: number | 'max';
  send_last_published_item: 'never' | 'on_sub_and_presence';
  title?: string;
}

/** A PEP item as the service hands it out: id and payload element. */
export interface PepItem {
  id: string;
  payload: Element;
}

/** What changed on a node, for modules that mirror one (bookmarks). */
export interface PepChange {
  owner: string;
  node: string;
  kind: 'publish' | 'retract' | 'purge' | 'delete';
}

/** The PEP service (XEP-0163) other modules use through depends('pep'); `owner` is an account's bare JID. Acts as the owner. */
export interface PepService {
  /** The node's configuration, undefined when the account has no such node. */
  config(owner: string, node: string): Promise<NodeConfig | undefined>;
  /** The node's items oldest first, undefined when the account has no such node. */
  items(owner: string, node: string): Promise<PepItem[] | undefined>;
  /**
   * Publish as the account: the node is created with `config` when missing; an existing node is reconfigured to it
   * when `reconfigure`, else `config` must match (XEP-0060 §7.1.5). Resolves to the item id. Rejects with StanzaError.
   */
  publish(owner: string, node: string, item: { id?: string; payload: Element }, config?: Partial<NodeConfig>, reconfigure?: boolean): Promise<string>;
  /** Resolves false when there was no such item. */
  retract(owner: string, node: string, id: string, notify: boolean): Promise<boolean>;
  purge(owner: string, node: string): Promise<void>;
  /** Send `<event><{child}/></event>` for `node` to the account's +notify recipients that `access` allows. */
  notify(owner: string, node: string, child: Element, access: AccessModel): Promise<void>;
  /** Called after every change; returns the function that stops it. */
  onChange(listener: (change: PepChange) => void): () => void;
}

export interface Services {
  pep: PepService;
}

/**
 * The document of the `private` store (XEP-0049, the private module), per account: `<name>:<namespace>` → the
 * fragment, preserialized, with its serialized size. Bookmarks reads and edits it too, as Prosody's mod_bookmarks does.
 */
export type PrivateDocument = Record<string, { size: number; xml: StoredXml }>;

/** An iq handler for `handleIq`: the result's payload, `true` for an empty result; a thrown StanzaError is the error reply. */
export type IqHandler = (event: StanzaEvent) => Element | true | Promise<Element | true>;

/** The address types an iq handler answers (Prosody's to_type in `iq-get/<to_type>/<xmlns>:<name>`). */
export type IqToType = 'host' | 'bare' | 'self' | 'full';

/** The session filter kinds (Prosody's util/filters names). */
export type FilterKind = 'stanzas/in' | 'stanzas/out';

/** A session filter: return the stanza (or a replacement) to pass it on, undefined to drop it. */
export type StanzaFilter = (stanza: Stanza, session: ClientSession) => Stanza | undefined;

/** A host's filters of one kind, as a transport runs them on each stanza of its sessions. */
export interface StanzaFilterChain {
  /** Nothing registered: skip run(). */
  readonly isEmpty: boolean;
  /** The stanza after every filter, or undefined when one dropped it. A throwing filter's error propagates. */
  run(stanza: Stanza, session: ClientSession): Stanza | undefined;
}

/** Host-wide events that are not stanzas. */
export interface HostEvents {
  'server-started': Record<string, never>;
  'server-stopping': Record<string, never>;
  /**
   * Fired after this process created an account, changed its password or deleted it. Changes made by
   * another process (the xmppd CLI, another node) are not announced: re-read the store instead.
   */
  'user-changed': { jid: string; change: 'created' | 'password' | 'deleted' };
  /** Another process (the xmppd CLI, another node) changed accounts; which ones is unknown: recheck what depends on them. */
  'users-changed-elsewhere': Record<string, never>;
  /**
   * Fired after this process deleted an account (Prosody's user-deleted). Its data in every store is already gone,
   * in the same transaction as the account (also when the xmppd CLI deletes it, which fires nothing here); a module
   * drops what it holds in memory for the account and anything it wrote for it since.
   */
  'user-deleted': { jid: string; host: string };
  /** A resource became available (initial presence): offline delivery listens. */
  'resource-available': { session: ClientSession };
  /**
   * Before the account's offline messages are pushed to a session that just became available (Prosody's
   * message/offline/broadcast): a handler returning a value keeps them back for that session (mam does, for a
   * session that fetched the archive first); they stay stored.
   */
  'message/offline/broadcast': { session: ClientSession };
  /**
   * A client stream is about to be offered its features (Prosody's stream-features): a module appends its own to
   * `features`. `session.bare` is '' before authentication, `session.full` '' before bind; check `session.host`.
   */
  'stream-features': { session: ClientSession; features: Element };
  /**
   * A top-level element of an authenticated client stream outside jabber:client (a nonza: XEP-0352 `<inactive/>`,
   * XEP-0198 `<r/>`), fired as `stanza/<xmlns>:<name>` (Prosody's name). Claim it by returning a value; unclaimed,
   * the stream closes with unsupported-stanza-type (RFC 6120 §4.9.3.24).
   */
  [event: `stanza/${string}`]: { session: ClientSession; stanza: Element };
  /**
   * A stanza for a domain this server does not serve (`host` is that domain); s2s claims it by returning a value.
   * Unclaimed, the sender gets remote-server-not-found (Prosody's route/remote).
   */
  'route/remote': StanzaEvent;
}

/**
 * What `load(module)` receives. One instance per module per virtual host.
 * `O` types the options: `load(module: ModuleApi<PostMsgOptions>)`; a spec ties it to the manifest.
 */
export interface ModuleApi<O extends object = Record<string, OptionValue>> {
  readonly name: string;
  readonly host: string;
  readonly log: Logger;
  /** All of this module's options, validated and frozen: host setting > global setting > manifest default. */
  readonly options: Readonly<O>;
  /** One option; throws HostError HOST_ERR_OPTION_UNKNOWN for a key the manifest does not declare. */
  option<K extends keyof O & string>(key: K): O[K];
  /** A host-level setting from the config (`auth_failures_per_minute`, …). */
  setting(key: string): unknown;
  /** Provide an item of a kind (fires `item-added/<kind>`); removed when this module unloads. */
  provides<K extends keyof Provides>(kind: K, item: Provides[K]): void;
  /**
   * Consume a kind: `onAdded` for every item already provided (this host's and global modules'; every host's for a
   * global module) and every later one, `onRemoved` when its provider unloads (Prosody's module:handle_items).
   */
  handleItems<K extends keyof Provides>(
    kind: K,
    onAdded: (item: Provides[K], info: ItemInfo) => void,
    onRemoved?: (item: Provides[K], info: ItemInfo) => void,
  ): void;
  /** Offer this module's service to the modules that depend on it; call it in load(). */
  setService<K extends keyof Services>(service: Services[K]): void;
  /**
   * The service of a module loaded on this host (or globally), which should be in this manifest's `depends` so it
   * loads first. Throws HostError HOST_ERR_MODULE_DEPENDENCY when it is not loaded or offers no service.
   */
  depends<K extends keyof Services>(name: K): Services[K];
  /**
   * The service of module `name` on another domain of this server, such as a component (`conference.localhost` for
   * muc), looked up at each call since components load after virtual hosts: undefined when that domain does not run
   * the module or the module offers no service.
   */
  serviceAt<K extends keyof Services>(domain: string, name: K): Services[K] | undefined;
  readonly users: UsersApi;
  readonly sessions: SessionRegistry;
  /** Is this domain one of this server's virtual hosts (components are not)? */
  isLocalHost(domain: string): boolean;
  /** Is this domain a component host of this server (served by one module, no client logins)? */
  isComponent(domain: string): boolean;
  /**
   * Inject a stanza into local routing. When `from` is a local account, the stanza first
   * goes through the `pre-*` events as if that account's client had sent it.
   * Resolves to the outcome; rejects with StanzaError (condition per RFC 6120 §8.3.3).
   */
  send(stanza: Stanza): Promise<Outcome>;
  /** Route a stanza from a given origin (c2s sessions use this). Resolves to the claiming value. */
  route(stanza: Stanza, origin: Origin): Promise<unknown>;
  /** Subscribe to a stanza event on this module's host. Higher priority runs first. */
  hook(event: string, handler: EventHandler, priority?: number): void;
  /**
   * Answer iq `type` with payload `<name xmlns=xmlns>` (xmpp.js iqCallee) addressed to `to` (default the host):
   * the handler returns the result's payload or `true`, or throws StanzaError; the reply goes to the origin.
   * Any other error is logged with this module's name and answered internal-server-error.
   */
  handleIq(type: 'get' | 'set', xmlns: string, name: string, handler: IqHandler, options?: { to?: readonly IqToType[]; priority?: number }): void;
  /** Filter every stanza of this host's client sessions, incoming or outgoing (Prosody util/filters). Higher priority runs first. */
  filter(kind: FilterKind, fn: StanzaFilter, priority?: number): void;
  /** This host's filters of a kind, for the transports that carry sessions (c2s). */
  sessionFilters(kind: FilterKind): StanzaFilterChain;
  /** Subscribe to a host-wide event. */
  hookGlobal<K extends keyof HostEvents>(event: K, handler: (payload: HostEvents[K]) => unknown, priority?: number): void;
  /** Fire a host-wide event; resolves to the value of the handler that claimed it (Prosody's fire_event), else undefined. */
  fireGlobal<K extends keyof HostEvents>(event: K, payload: HostEvents[K]): Promise<unknown>;
  /** Open a per-account store of JSON documents for this host. */
  openStore<T = unknown>(name: string): KeyValueStore<T>;
  /** Open a per-account map store for this host (Prosody's module:open_store(name, 'map')). */
  openMap<T = unknown>(name: string): MapStore<T>;
  /** Open a per-account archive store for this host (Prosody's module:open_store(name, 'archive')). */
  openArchive(name: string): ArchiveStore;
  /** Disco features provided by all modules on this host. */
  discoFeatures(kind: 'server' | 'account'): string[];
  onUnload(fn: () => void | Promise<void>): void;
}

/** What a module file exports. */
export interface ModuleDefinition {
  manifest: Manifest;
  load(module: ModuleApi): void | Promise<void>;
}
