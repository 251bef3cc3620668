// Client-to-server streams (RFC 6120/6121): listeners and sessions; the server calls startC2s().
// Prosody's plugins/mod_c2s.lua; each session acts on its virtual host through that host's module API.

import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ModuleApi } from '../../api.js';
import { closeListener, listen, type Listener } from '../../net/tcp-listener.js';
import { C2sSession, type C2sSettings } from './session.js';

export type { C2sSettings } from './session.js';

export interface C2sDeps {
  settings: C2sSettings;
  tls: { key: string | Buffer; cert: string | Buffer };
  log: Logger;
  /** The API of the virtual host named `domain` (normalised), or undefined when this server does not serve it. */
  hostApi(domain: string): ModuleApi | undefined;
}

export interface C2sServer {
  ports: number[];
  tlsPorts: number[];
  sessionCount(): number;
  /**
   * Close the authenticated streams whose account was deleted or changed password since they logged in:
   * those of `bareJid`, or all of them. Resolves when every stream was looked at.
   */
  recheckAccounts(bareJid?: string): Promise<void>;
  close(): Promise<void>;
}

/** Streams rechecked per turn of the event loop, so 10,000 sessions do not hold up everything else at once. */
const RECHECK_BATCH = 500;

/** How long shutdown waits for clients to read `</stream:stream>` and close before dropping them. */
const SHUTDOWN_GRACE_MS = 2_000;

export async function startC2s(deps: C2sDeps): Promise<C2sServer> {
  const { settings, log } = deps;
  // TLS 1.2 at least (RFC 7590 §3.1 and today's BCP 195).
  const secureContext = createSecureContext({ key: deps.tls.key, cert: deps.tls.cert, minVersion: 'TLSv1.2' });
  const sessions = new Set<C2sSession>();
  const context = {
    settings,
    secureContext,
    log,
    hostApi: deps.hostApi,
    onClosed: (s: C2sSession) => sessions.delete(s),
  };
  const onConnection = (socket: import('node:net').Socket, isSecure: boolean) => {
    sessions.add(new C2sSession(socket, isSecure, context));
  };

  const listeners: Listener[] = [];
  try {
    for (const address of settings.c2s_interfaces) {
      for (const port of settings.c2s_ports) listeners.push(await listen({ kind: 'starttls', address, port, tls: deps.tls, log, onConnection }));
      for (const port of settings.c2s_direct_tls_ports) listeners.push(await listen({ kind: 'direct_tls', address, port, tls: deps.tls, log, onConnection }));
    }
  } catch (err) {
    await Promise.all(listeners.map(closeListener));
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    ports: listeners.filter((l) => l.kind === 'starttls').map((l) => l.port),
    tlsPorts: listeners.filter((l) => l.kind === 'direct_tls').map((l) => l.port),
    sessionCount: () => sessions.size,
    recheckAccounts: (bareJid) => recheckAccounts(sessions, bareJid),
    close: () => (closing ??= shutdown(listeners, sessions, log)),
  };
}

async function recheckAccounts(sessions: Set<C2sSession>, bareJid: string | undefined): Promise<void> {
  const chosen = [...sessions].filter((s) => bareJid === undefined || s.bare === bareJid);
  for (let i = 0; i < chosen.length; i += RECHECK_BATCH) {
    if (i > 0) await new Promise<void>((r) => setImmediate(r));
    await Promise.all(chosen.slice(i, i + RECHECK_BATCH).map((s) => s.recheckAccount()));
  }
}

/** Stop accepting, end every stream with system-shutdown (RFC 6120 §4.9.3.17), wait for the writes to drain. */
async function shutdown(listeners: Listener[], sessions: Set<C2sSession>, log: Logger): Promise<void> {
  const stopped = Promise.all(listeners.map(closeListener));
  const open = [...sessions];
  for (const session of open) session.close('system-shutdown', 'The server is shutting down.');
  const timer = new Promise<void>((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref());
  await Promise.race([Promise.all(open.map((s) => s.whenClosed())), timer]);
  for (const session of sessions) session.destroy();
  await stopped;
  log.debug({ sessions: open.length }, 'c2s closed');
}
