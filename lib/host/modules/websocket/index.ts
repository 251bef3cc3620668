// XMPP over WebSocket (RFC 7395), Prosody's plugins/mod_websocket.lua: an HTTP upgrade at /xmpp-websocket starts the
// same client session as TCP (c2s: stream, SASL, bind, limits), framed one element per message; announced in
// host-meta (XEP-0156) through http_altconnect.

import Router from 'koa-router';
import { isIPv4, isIPv6 } from 'node:net';
import { WebSocketServer } from 'ws';
import type { HttpUpgrade, ModuleApi, ModuleDefinition } from '../../api.js';
import { sendProblem } from '../../api.js';
import { refuseUpgrade as refuse, WebSocketConnection } from '../../net/ws-connection.js';
import { normaliseOrigin } from '../../util/origin.js';

export interface WebsocketOptions {
  cross_domain_websocket: boolean | string[];
  consider_websocket_secure: boolean;
}

const DEFAULT_PATH = '/xmpp-websocket';
/** RFC 7395 §3.1: the WebSocket subprotocol a client must ask for. */
const SUBPROTOCOL = 'xmpp';
/** RFC 6455 §7.4.1: try again later (the address holds too many unauthenticated connections). */
const CLOSE_TRY_LATER = 1013;

/** A peer on this machine: its traffic never crosses a network (a local browser, or a reverse proxy terminating TLS). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return isIPv6(address) && address === '::1';
}

/**
 * Prosody's cross_domain_websocket: true lets any page connect; false only pages of this server (the Host the
 * request was sent to, http or https); a list adds those origins. Clients that are not browsers send no Origin.
 */
export function isOriginAllowed(origin: string | undefined, host: string | undefined, setting: boolean | readonly string[]): boolean {
  if (origin === undefined || setting === true) return true;
  const normalised = normaliseOrigin(origin);
  if (normalised === undefined) return false;
  if (host !== undefined && [`http://${host}`, `https://${host}`].some((self) => normaliseOrigin(self) === normalised)) return true;
  return Array.isArray(setting) && setting.some((o) => normaliseOrigin(o) === normalised);
}

function load(module: ModuleApi<WebsocketOptions>): void {
  const c2s = module.depends('c2s');
  const http = module.depends('http');
  const crossDomain = module.options.cross_domain_websocket;
  const considerSecure = module.options.consider_websocket_secure;
  // Frames over the stanza limit get the stream error from the frame parser (policy-violation, as on TCP); the
  // WebSocket layer itself drops anything far beyond (1009) without reading it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * c2s.stanzaSizeLimit, perMessageDeflate: false, clientTracking: false });
  wss.on('error', (err) => module.log.debug({ err: err.message }, 'websocket server error'));

  const upgrade = ({ req, socket, head, clientAddress, isTls }: HttpUpgrade): void => {
    const origin = req.headers.origin;
    if (!isOriginAllowed(origin, req.headers.host, crossDomain)) {
      module.log.info({ origin, address: clientAddress }, 'websocket refused: origin not allowed (cross_domain_websocket)');
      return refuse(socket, 403, `Pages from ${origin} may not connect here; see the websocket module's cross_domain_websocket option.`);
    }
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes(SUBPROTOCOL)) {
      return refuse(socket, 400, `Ask for the WebSocket subprotocol "${SUBPROTOCOL}" (RFC 7395 §3.1).`);
    }
    // Secure: TLS to us, a peer on this machine, or a TLS-terminating proxy vouched for by consider_websocket_secure.
    const isSecure = isTls || considerSecure || isLoopback(req.socket.remoteAddress);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new WebSocketConnection(ws, clientAddress, isSecure);
      if (!c2s.open(connection)) {
        module.log.debug({ address: clientAddress }, 'too many unauthenticated connections from this address; websocket closed');
        ws.close(CLOSE_TRY_LATER, 'Too many unauthenticated connections from your address.');
      }
    });
  };

  const router = new Router();
  router.get('/', (ctx) => {
    ctx.set('Upgrade', 'websocket');
    sendProblem(ctx, { status: 426, detail: 'This is an XMPP WebSocket endpoint (RFC 7395): connect a WebSocket client asking for the "xmpp" subprotocol.' });
  });
  const basePath = http.path(module.host, module.name, DEFAULT_PATH);
  module.provides('http', { defaultPath: DEFAULT_PATH, router, methods: ['GET', 'HEAD'], upgrade, title: 'XMPP over WebSocket (RFC 7395)' });
  module.provides('alt_connection', {
    rel: 'urn:xmpp:alt-connections:websocket',
    href: ({ host, isTls }) => `${isTls || considerSecure ? 'wss' : 'ws'}://${host}${basePath}`,
  });
  module.setService({ path: basePath });
  module.onUnload(() => wss.close());
}

declare module '../../api.js' {
  interface Services {
    /** Where this host's WebSocket endpoint is mounted (conversejs points its client there). */
    websocket: { readonly path: string };
  }
}

export const websocket: ModuleDefinition = {
  manifest: {
    id: 'websocket',
    description: 'XMPP over WebSocket (RFC 7395) at /xmpp-websocket: the same client sessions as c2s, announced in host-meta (XEP-0156).',
    depends: ['c2s', 'http', 'http_altconnect'],
    options: {
      cross_domain_websocket: {
        type: 'string[]',
        format: 'origin',
        orBoolean: true,
        default: false,
        description: "Web pages of other origins that may connect: false, only pages served by this server (the Host asked for); true, any page; or a list of origins.",
      },
      consider_websocket_secure: {
        type: 'boolean',
        default: false,
        description: 'Treat ws:// as encrypted (a reverse proxy terminates TLS in front). Otherwise only wss:// and peers on loopback are, and c2s_require_encryption refuses login elsewhere.',
      },
    },
  },
  load: load as ModuleDefinition['load'],
};

export { httpAltconnect } from './altconnect.js';
