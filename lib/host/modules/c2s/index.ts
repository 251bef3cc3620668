// Client-to-server streams (RFC 6120/6121): Prosody's plugins/mod_c2s.lua. A global module: it provides the `c2s`
// (STARTTLS) and `c2s_direct_tls` (XEP-0368) net items and keeps the sessions; each session acts on its virtual host
// through that host's `c2s_host` module API.

import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ModuleApi, ModuleDefinition } from '../../api.js';
import { createStreamServer, UnauthenticatedLimit, type Admission } from '../../net/tcp-listener.js';
import { TcpConnection, type Connection } from '../../net/connection.js';
import { itemsByHost } from '../../util/items-by-host.js';
import { C2sSession, type C2sSettings, type SessionContext } from './session.js';

declare module '../../api.js' {
  interface Provides {
    /** A virtual host's API for its client sessions (the c2s_host module of that host). */
    c2s_host: ModuleApi;
  }
  interface Services {
    /** Client sessions over other transports (a WebSocket): the same stream, SASL, limits and shutdown as TCP. */
    c2s: C2sService;
  }
}

export interface C2sService {
  /**
   * Start a client session on a connection. False (and nothing started) when its address already holds
   * c2s_max_unauthenticated_per_ip unauthenticated connections: the caller closes the connection.
   */
  open(connection: Connection): boolean;
  /** The c2s_stanza_size_limit: the largest frame a framed transport should accept. */
  readonly stanzaSizeLimit: number;
}

/** Streams rechecked per turn of the event loop, so 10,000 sessions do not hold up everything else at once. */
const RECHECK_BATCH = 500;

/** How long shutdown waits for clients to read `</stream:stream>` and close before dropping them. */
const SHUTDOWN_GRACE_MS = 2_000;

function load(module: ModuleApi): void {
  const setting = <T>(key: string): T => module.setting(key) as T;
  const settings: C2sSettings = {
    c2s_ports: setting('c2s_ports'),
    c2s_direct_tls_ports: setting('c2s_direct_tls_ports'),
    c2s_interfaces: setting('c2s_interfaces'),
    c2s_require_encryption: setting('c2s_require_encryption'),
    c2s_stanza_size_limit: setting('c2s_stanza_size_limit'),
    c2s_timeout: setting('c2s_timeout'),
  };
  const hosts = itemsByHost<ModuleApi>((added, removed) => module.handleItems('c2s_host', added, removed));

  const sessions = new Set<C2sSession>();
  // One count for both ports: an address's unauthenticated connections, until each authenticates or closes.
  const unauthenticated = new UnauthenticatedLimit(setting('c2s_max_unauthenticated_per_ip'));
  const admissions = new WeakMap<C2sSession, Admission>();
  const context: SessionContext = {
    settings,
    log: module.log,
    hostApi: (domain) => hosts.get(domain),
    onClosed: (s) => {
      sessions.delete(s);
      // A transport without a TCP socket of its own (WebSocket) frees its place here; a second call does nothing.
      admissions.get(s)?.authenticated();
    },
    onAuthenticated: (s) => admissions.get(s)?.authenticated(),
    onResumed: (s) => void sessions.add(s),
  };
  // TLS 1.2 at least (RFC 7590 §3.1 and today's BCP 195); made once, from the pair the port manager hands in.
  let secureContext: SecureContext | undefined;
  const onConnection = (socket: Socket, isSecure: boolean, admission: Admission): void => {
    const session = new C2sSession(new TcpConnection(socket, isSecure, secureContext!), context);
    admissions.set(session, admission);
    sessions.add(session);
  };
  const server = (kind: 'starttls' | 'direct_tls') => (tls: { key: string; cert: string } | undefined) => {
    secureContext ??= createSecureContext({ key: tls!.key, cert: tls!.cert, minVersion: 'TLSv1.2' });
    return createStreamServer({ kind, tls: tls!, log: module.log, handshakeTimeoutMs: settings.c2s_timeout * 1000, unauthenticated, onConnection });
  };
  // Both need the certificate: STARTTLS upgrades on the plain port.
  module.provides('net', { name: 'c2s', tls: true, createServer: server('starttls') });
  module.setService({
    open: (connection) => {
      const admission = unauthenticated.admit(connection.remoteAddress);
      if (!admission) return false;
      const session = new C2sSession(connection, context);
      admissions.set(session, admission);
      sessions.add(session);
      return true;
    },
    stanzaSizeLimit: settings.c2s_stanza_size_limit,
  });
  module.provides('net', { name: 'c2s_direct_tls', interfacesSetting: 'c2s_interfaces', tls: true, createServer: server('direct_tls') });

  // Close the streams of an account deleted or whose password changed: at once for a change made through this
  // server, on the next recheck for one made by another process (xmppd passwd, deluser).
  const failed = (err: unknown): void => module.log.error({ err }, 'rechecking client streams against their accounts failed');
  module.hookGlobal('user-changed', ({ jid, change }) => {
    if (change !== 'created') recheckAccounts(sessions, jid).catch(failed);
  });
  let running = false;
  module.hookGlobal('users-changed-elsewhere', () => {
    if (running) return;
    running = true;
    recheckAccounts(sessions, undefined)
      .catch(failed)
      .finally(() => (running = false));
  });

  let closing: Promise<void> | undefined;
  module.onUnload(() => (closing ??= shutdown(sessions, module)));
}

async function recheckAccounts(sessions: Set<C2sSession>, bareJid: string | undefined): Promise<void> {
  const chosen = [...sessions].filter((s) => bareJid === undefined || s.bare === bareJid);
  for (let i = 0; i < chosen.length; i += RECHECK_BATCH) {
    if (i > 0) await new Promise<void>((r) => setImmediate(r));
    await Promise.all(chosen.slice(i, i + RECHECK_BATCH).map((s) => s.recheckAccount()));
  }
}

/** End every stream with system-shutdown (RFC 6120 §4.9.3.17), wait for the writes to drain, then drop the rest. */
async function shutdown(sessions: Set<C2sSession>, module: ModuleApi): Promise<void> {
  const open = [...sessions];
  for (const session of open) session.close('system-shutdown', 'The server is shutting down.');
  const timer = new Promise<void>((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref());
  await Promise.race([Promise.all(open.map((s) => s.whenClosed())), timer]);
  for (const session of sessions) session.destroy();
  module.log.debug({ sessions: open.length }, 'c2s closed');
}

export const c2s: ModuleDefinition = {
  manifest: { id: 'c2s', global: true, description: 'Client-to-server streams (RFC 6120): the c2s and c2s_direct_tls listeners and their sessions.' },
  load,
};

/** On each virtual host: hands the c2s sessions of that host its module API (routing, users, session filters). */
export const c2sHost: ModuleDefinition = {
  manifest: { id: 'c2s_host', description: "A virtual host's side of client streams: the API its c2s sessions act through." },
  load: (module) => module.provides('c2s_host', module),
};
