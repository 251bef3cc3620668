// Server-to-server federation (RFC 6120 §§4-6, 13; XEP-0178 certificates, XEP-0220 dialback with XEP-0185 keys;
// XEP-0368): Prosody's mod_s2s with mod_dialback and mod_s2s_auth_certs. A global module: it claims route/remote
// for stanzas to other servers and provides the `s2s` and `s2s_direct_tls` listeners; `modules_disabled: [s2s]` turns it off.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { StanzaError, cloneStanza, errorReply, parseJid, serialize, type ModuleApi, type ModuleDefinition, type Stanza, type StanzaEvent } from '../../api.js';
import { createStreamServer, UnauthenticatedLimit } from '../../net/tcp-listener.js';
import { CertificateRequestingTls, TcpConnection } from '../../net/connection.js';
import { itemsByHost } from '../../util/items-by-host.js';
import { TargetResolver } from './resolve.js';
import { OutgoingStream, S2sFailure, type AckOutcome, type OutgoingContext, type S2sSettings } from './outgoing.js';
import { IncomingStream, type IncomingContext } from './incoming.js';

/** Stanzas that may wait for one remote domain's stream to be set up; more are refused at once. */
export const MAX_QUEUE = 256;
/** An authenticated outgoing stream unused this long is closed. */
const IDLE_MS = 5 * 60_000;
const SHUTDOWN_GRACE_MS = 2_000;
/** Unauthenticated incoming connections one address may hold. */
const MAX_UNAUTHENTICATED_PER_IP = 32;
/** Authenticated incoming streams one remote domain may hold (a peer needs one, a few while it reconnects). */
export const MAX_INCOMING_PER_DOMAIN = 16;
/**
 * Dialback verification streams to one remote domain at once: anyone may claim a domain, and each claim makes us
 * connect to it, so claims from many addresses must not make us flood it. Outgoing route streams are one per pair of
 * local and remote domain.
 */
export const MAX_VERIFYING_PER_DOMAIN = 8;

interface Pending {
  text: string;
  onLost: (() => void) | undefined;
  resolve(outcome: 'sent'): void;
  reject(err: StanzaError): void;
}

/** One remote domain as seen from one local domain: its outgoing stream and what waits for it. */
interface Route {
  stream: OutgoingStream;
  queue: Pending[];
}

function load(module: ModuleApi): void {
  const setting = <T>(key: string): T => module.setting(key) as T;
  const caFile = setting<string | undefined>('s2s_ca_file');
  const settings: S2sSettings = {
    requireEncryption: setting('s2s_require_encryption'),
    secureAuth: setting('s2s_secure_auth'),
    timeoutMs: setting<number>('s2s_timeout') * 1000,
    idleMs: IDLE_MS,
    stanzaSizeLimit: setting('s2s_stanza_size_limit'),
    ca: caFile ? readFileSync(caFile, 'utf8') : undefined,
  };
  const secret = randomBytes(32);
  const resolver = new TargetResolver(setting<string[]>('dns_servers'));
  /** Our pair as the listeners got it: shown to peers as our client certificate on outgoing streams. */
  let identity: { key: string; cert: string } | undefined;
  const outCtx: OutgoingContext = { settings, log: module.log, secret, resolver, identity: () => identity };

  const hosts = itemsByHost<ModuleApi>((added, removed) => module.handleItems('c2s_host', added, removed));

  const routes = new Map<string, Route>();
  const verifying = new Set<OutgoingStream>();
  /** Stanzas whose sender waits with a deadline (post_msg): withdrawn from the queue when it passes. */
  const deadlines = new WeakMap<Stanza, AbortSignal>();
  module.setService<'s2s'>({ withdrawOnAbort: (stanza, signal) => void deadlines.set(stanza, signal) });

  const routeFor = (local: string, remote: string): Route => {
    const key = `${local} ${remote}`;
    const existing = routes.get(key);
    if (existing) return existing;
    const stream = new OutgoingStream(outCtx, local, remote, { kind: 'route' });
    const route: Route = { stream, queue: [] };
    routes.set(key, route);
    stream.ready.then(
      () => {
        for (const p of route.queue.splice(0)) {
          if (stream.send(p.text, lostHandler(p.onLost))) p.resolve('sent');
          else p.reject(new StanzaError('remote-server-not-found', `${remote}: the stream closed before the stanza was sent`));
        }
      },
      (err: S2sFailure) => {
        if (routes.get(key) === route) routes.delete(key);
        for (const p of route.queue.splice(0)) p.reject(new StanzaError(err.condition, err.message, err.type));
      },
    );
    stream.onClosed = () => {
      if (routes.get(key) === route) routes.delete(key);
      const failure = stream.failure ?? new S2sFailure('remote-server-not-found', `${remote}: the stream closed before the stanza was sent`);
      for (const p of route.queue.splice(0)) p.reject(new StanzaError(failure.condition, failure.message, failure.type));
    };
    return route;
  };

  /**
   * Hand a stanza to the remote domain: 'sent' once written on its authenticated stream. With XEP-0198 on that
   * stream, `onLost` runs if the stream ends before the peer acknowledged it.
   */
  const sendRemote = (stanza: Stanza, local: string, remote: string, onLost?: () => void): Promise<'sent'> => {
    const signal = deadlines.get(stanza);
    const withdrawn = (): StanzaError => new StanzaError('remote-server-timeout', `${remote}: no authenticated stream in the time the sender waits; the stanza was withdrawn, not sent.`);
    if (signal?.aborted) return Promise.reject(withdrawn());
    const copy = cloneStanza(stanza);
    // Our stanzas are jabber:client internally; on this stream the default namespace is jabber:server.
    if (copy.attrs.xmlns === 'jabber:client') delete copy.attrs.xmlns;
    const text = serialize(copy);
    if (Buffer.byteLength(text) > settings.stanzaSizeLimit) {
      return Promise.reject(new StanzaError('policy-violation', `The stanza is larger than ${remote} is sent (${settings.stanzaSizeLimit} bytes).`));
    }
    const route = routeFor(local, remote);
    if (route.stream.isReady) {
      if (route.stream.send(text, lostHandler(onLost))) return Promise.resolve('sent');
      return Promise.reject(new StanzaError('remote-server-not-found', `${remote}: the stream cannot take more`));
    }
    if (route.queue.length >= MAX_QUEUE) {
      return Promise.reject(new StanzaError('resource-constraint', `Too many stanzas wait for the stream to ${remote}.`));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { text, onLost, resolve, reject };
      route.queue.push(pending);
      // Nothing is sent behind an answer its sender no longer waits for.
      signal?.addEventListener('abort', () => {
        const at = route.queue.indexOf(pending);
        if (at < 0) return;
        route.queue.splice(at, 1);
        reject(withdrawn());
      }, { once: true });
    });
  };

  module.hookGlobal('route/remote', (event: StanzaEvent) => {
    const { stanza, origin, host: remote } = event;
    const fromAttr = stanza.attrs.from ? parseJid(stanza.attrs.from) : undefined;
    const local = fromAttr?.ok ? fromAttr.jid.domain : origin.host;
    // Only our own domains speak through us; a remote origin's stanza for a third server is not relayed.
    if (!hosts.has(local) || origin.type === 's2s') throw new StanzaError('not-allowed', `${local} may not send to ${remote} through this server.`);
    if (!stanza.attrs.from) stanza.attrs.from = origin.jid ?? local;
    const bounceTo = origin.send;
    // After a 'sent', an error can still reach the sender: to its stream, else through its host (offline storage).
    const lateBounce = (err: StanzaError): void => {
      if (!canBounce(stanza)) return;
      if (bounceTo) return bounceTo(errorReply(stanza, err));
      hosts.get(local)?.route(errorReply(stanza, err), { type: 'host', host: local }).catch((e: unknown) => module.log.debug({ err: e }, 'a bounce to a local sender failed'));
    };
    // COMPAT: Prosody's mod_smacks bounces what an s2s stream did not acknowledge with recipient-unavailable too.
    const onLost = (): void => lateBounce(new StanzaError('recipient-unavailable', `${remote} did not acknowledge the stanza before its stream ended (XEP-0198); it may not have arrived.`));
    const sent = sendRemote(stanza, local, remote, onLost);
    // A client's stream must not wait for another server: answer it later, with a bounce if it fails.
    if (!bounceTo) return sent;
    sent.catch((err: unknown) => {
      if (!(err instanceof StanzaError) || !canBounce(stanza)) return;
      bounceTo(errorReply(stanza, err));
    });
    return 'queued';
  });

  const inCtx: IncomingContext = {
    settings,
    log: module.log,
    secret,
    hostApi: (domain) => hosts.get(domain),
    verify: async (local, remote, streamId, key) => {
      if ([...verifying].filter((s) => s.remote === remote).length >= MAX_VERIFYING_PER_DOMAIN) {
        throw new S2sFailure('remote-server-timeout', `${MAX_VERIFYING_PER_DOMAIN} dialback verifications with ${remote} are in progress already; try again later`);
      }
      const stream = new OutgoingStream(outCtx, local, remote, { kind: 'verify', id: streamId, key });
      verifying.add(stream);
      stream.onClosed = () => verifying.delete(stream);
      await stream.ready;
      return stream.isVerified;
    },
    bounce: (stanza, local) => {
      const api = hosts.get(local);
      api?.route(stanza, { type: 'host', host: local }).catch((err: unknown) => module.log.debug({ err }, 'a bounce to a remote server failed'));
    },
    onClosed: (s) => {
      incoming.delete(s);
      for (const [domain, streams] of byDomain) if (streams.delete(s) && streams.size === 0) byDomain.delete(domain);
    },
    admitDomain: (s, domain) => {
      const streams = byDomain.get(domain) ?? new Set<IncomingStream>();
      if (!streams.has(s) && streams.size >= MAX_INCOMING_PER_DOMAIN) return false;
      streams.add(s);
      byDomain.set(domain, streams);
      return true;
    },
    isDomainFull: (domain) => (byDomain.get(domain)?.size ?? 0) >= MAX_INCOMING_PER_DOMAIN,
  };
  /** Authenticated incoming streams per remote domain. */
  const byDomain = new Map<string, Set<IncomingStream>>();
  const incoming = new Set<IncomingStream>();
  const unauthenticated = new UnauthenticatedLimit(MAX_UNAUTHENTICATED_PER_IP);
  let secureContext: SecureContext | undefined;
  let verifyingTls: CertificateRequestingTls | undefined;
  const onConnection = (socket: Socket, isSecure: boolean, admission: { authenticated(): void }): void => {
    const stream = new IncomingStream(new TcpConnection(socket, isSecure, secureContext!, verifyingTls), { ...inCtx, onAuthenticated: () => admission.authenticated() });
    incoming.add(stream);
  };
  const server = (kind: 'starttls' | 'direct_tls') => (tls: { key: string; cert: string } | undefined) => {
    secureContext ??= createSecureContext({ key: tls!.key, cert: tls!.cert, minVersion: 'TLSv1.2' });
    identity ??= tls;
    // Peers' certificates are asked for and verified against s2s_ca_file, for SASL EXTERNAL (XEP-0178).
    verifyingTls ??= new CertificateRequestingTls({ key: tls!.key, cert: tls!.cert, ca: settings.ca, handshakeTimeoutMs: settings.timeoutMs });
    const requestCert = { ca: settings.ca };
    return createStreamServer({ kind, tls: tls!, requestCert, log: module.log, handshakeTimeoutMs: settings.timeoutMs, unauthenticated, onConnection });
  };
  module.provides('net', { name: 's2s', tls: true, defaultPorts: [5269], createServer: server('starttls') });
  module.provides('net', { name: 's2s_direct_tls', interfacesSetting: 's2s_interfaces', tls: true, defaultPorts: [], createServer: server('direct_tls') });

  module.onUnload(async () => {
    for (const route of routes.values()) route.stream.close();
    for (const stream of verifying) stream.close();
    const open = [...incoming];
    for (const s of open) s.close('system-shutdown', 'The server is shutting down.');
    await Promise.race([Promise.all(open.map((s) => s.whenClosed())), new Promise<void>((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
    for (const s of incoming) s.destroy();
  });
}

/** The stream's acknowledgement callback: only a loss matters here (the sender was told 'sent' already). */
function lostHandler(onLost: (() => void) | undefined): ((outcome: AckOutcome) => void) | undefined {
  return onLost ? (outcome) => void (outcome === 'lost' && onLost()) : undefined;
}

/** Never answer an error with an error, nor an iq result (RFC 6120 §8.3.1). */
function canBounce(stanza: Stanza): boolean {
  const type = stanza.attrs.type;
  return type !== 'error' && !(stanza.name === 'iq' && type === 'result');
}

export const s2s: ModuleDefinition = {
  manifest: {
    id: 's2s',
    global: true,
    description: 'Server-to-server streams (RFC 6120, SASL EXTERNAL with certificates per XEP-0178, XEP-0220 dialback, XEP-0368): federation with other XMPP servers; the s2s and s2s_direct_tls listeners.',
  },
  load,
};
