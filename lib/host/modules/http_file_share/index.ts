// http_file_share: HTTP File Upload (XEP-0363, urn:xmpp:http:upload:0) as a component, after Prosody's
// plugins/mod_http_file_share.lua: slot requests over XMPP, uploads and downloads over the host's HTTP, size limit,
// daily quota per account, expiry. `components: { upload.localhost: { module: http_file_share } }`.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { StanzaError, errorReply, parseJid, reply, xml, type Element, type ModuleApi, type ModuleDefinition, type StanzaEvent } from '../../api.js';
import { createFileShareRouter } from './http-app.js';
import { UploadStore } from './store.js';
import { signToken } from './token.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const NS_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_DATA = 'jabber:x:data';
const DEFAULT_PATH = '/file_share';
/** How long a slot's PUT may wait (Prosody: 300 s). */
const UPLOAD_WINDOW = 300;
const MAX_FILENAME_BYTES = 255;
/** Slots one account may ask for in 24 hours: tiny files must not fill the disk with records the byte quota misses. */
// DIFF: Prosody counts bytes only.
export const MAX_SLOTS_PER_DAY = 1000;
/** A media type without parameters (RFC 6838 §4.2), safe to echo in a header. */
const MEDIA_TYPE = /^[a-z0-9][\w!#$&^.+-]{0,126}\/[a-z0-9][\w!#$&^.+-]{0,126}$/i;

export interface HttpFileShareOptions {
  name: string;
  size_limit: number;
  daily_quota: number;
  expires_after: number;
  access: string[];
}

const now = (): number => Math.floor(Date.now() / 1000);

/** The filename a client asked for, or why not: a name, never a path (XEP-0363 §4; Prosody refuses / and NUL). */
export function checkFilename(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return 'Give the file a name (the filename attribute).';
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES) return `The file name is over ${MAX_FILENAME_BYTES} bytes.`;
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(name) || name === '.' || name === '..') return 'The file name may not contain / or \\ or control characters, nor be . or ..';
  return undefined;
}

function load(module: ModuleApi<HttpFileShareOptions>): void {
  const options = module.options;
  const http = module.depends('http');
  const store = new UploadStore(join(module.setting('data_dir') as string, 'http_file_share'));
  // Per process, as Prosody's default: a restart only voids slots not yet used (they last UPLOAD_WINDOW).
  const secret = randomBytes(32);
  const basePath = http.path(module.host, module.name, DEFAULT_PATH);

  const mayUpload = (bare: string): boolean => {
    const jid = parseJid(bare);
    if (!jid.ok) return false;
    return module.isLocalHost(jid.jid.domain) || options.access.some((a) => a.toLowerCase() === bare || a.toLowerCase() === jid.jid.domain);
  };

  const requestSlot = async (event: StanzaEvent): Promise<Element> => {
    const from = parseJid(event.stanza.attrs.from ?? '');
    if (!from.ok || from.jid.local === null) throw new StanzaError('forbidden', 'Only accounts may upload files.');
    const uploader = `${from.jid.local}@${from.jid.domain}`;
    if (!mayUpload(uploader)) throw new StanzaError('forbidden', `Accounts of this server may upload here; ${uploader} may not.`);
    const request = event.stanza.getChild('request', NS_UPLOAD)!;
    const filename = request.attrs.filename as string | undefined;
    const filenameProblem = checkFilename(filename);
    if (filenameProblem) throw new StanzaError('bad-request', filenameProblem);
    const sizeText = String(request.attrs.size ?? '');
    if (!/^[1-9]\d{0,15}$/.test(sizeText)) throw new StanzaError('bad-request', 'The size attribute must be the file size in bytes, at least 1.');
    const size = Number(sizeText);
    if (size > options.size_limit) throw new FileTooLarge(size, options.size_limit);
    const type = (request.attrs['content-type'] as string | undefined) ?? 'application/octet-stream';
    if (!MEDIA_TYPE.test(type)) throw new StanzaError('bad-request', 'The content-type attribute must be a media type such as image/jpeg, without parameters.');

    const t = now();
    const used = store.usedToday(uploader, t);
    if (used.bytes + size > options.daily_quota) {
      throw new StanzaError('resource-constraint', `Daily upload quota reached: ${used.bytes} of ${options.daily_quota} bytes used in the last 24 hours; this file needs ${size}.`);
    }
    if (used.slots >= MAX_SLOTS_PER_DAY) {
      throw new StanzaError('resource-constraint', `Daily upload quota reached: ${MAX_SLOTS_PER_DAY} files in the last 24 hours.`);
    }
    const slot = randomBytes(18).toString('base64url');
    await store.add({ slot, filename: filename!, size, type, uploader, time: t });
    const url = `${http.baseUrl(module.host)}${basePath === '/' ? '' : basePath}/${slot}/${encodeURIComponent(filename!)}`;
    const token = signToken(secret, { slot, size, expires: t + UPLOAD_WINDOW, uploader });
    module.log.info({ uploader, slot, size, type }, 'upload slot given');
    return xml('slot', { xmlns: NS_UPLOAD }, xml('put', { url }, xml('header', { name: 'Authorization' }, `Bearer ${token}`)), xml('get', { url }));
  };

  // Hooked directly rather than through handleIq: a file over the limit is answered with XEP-0363 §4's
  // <file-too-large/>, which carries the limit.
  module.hook(`iq-get/host/${NS_UPLOAD}:request`, async (event: StanzaEvent) => {
    let answer;
    try {
      answer = reply(event.stanza, await requestSlot(event));
    } catch (err) {
      if (!(err instanceof StanzaError)) module.log.error({ err }, 'upload slot request failed');
      const stanzaError = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
      answer = errorReply(event.stanza, stanzaError);
      if (err instanceof FileTooLarge) {
        answer.getChild('error')!.append(xml('file-too-large', { xmlns: NS_UPLOAD }, xml('max-file-size', {}, String(err.limit))));
      }
    }
    event.origin.send?.(answer);
    return true;
  });

  module.handleIq('get', NS_INFO, 'query', (event) => {
    if (event.stanza.getChild('query', NS_INFO)?.attrs.node) throw new StanzaError('item-not-found');
    return xml(
      'query',
      { xmlns: NS_INFO },
      xml('identity', { category: 'store', type: 'file', name: options.name }),
      xml('feature', { var: NS_INFO }),
      xml('feature', { var: NS_UPLOAD }),
      // XEP-0363 §3: the limit in a XEP-0128 form.
      xml(
        'x',
        { xmlns: NS_DATA, type: 'result' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_UPLOAD)),
        xml('field', { var: 'max-file-size' }, xml('value', {}, String(options.size_limit))),
      ),
    );
  });
  module.handleIq('get', NS_ITEMS, 'query', () => xml('query', { xmlns: NS_ITEMS }));

  module.provides('http', {
    defaultPath: DEFAULT_PATH,
    router: createFileShareRouter(store, { secret, now, log: module.log }),
    methods: ['GET', 'HEAD', 'PUT'],
    // Browser clients (Converse.js) upload from their own page's origin; the slot token is the only credential, and
    // Prosody's mod_http_file_share answers CORS for any origin too.
    corsAnyOrigin: true,
    title: 'File sharing (XEP-0363)',
  });

  const expire = (): void => {
    store.expire(now(), options.expires_after).then(
      (gone) => gone.length > 0 && module.log.info({ count: gone.length }, 'expired uploads removed'),
      (err: unknown) => module.log.error({ err }, 'removing expired uploads failed'),
    );
  };
  expire();

  // Deleting an account deletes its files (Prosody's user-deleted); the component's host is not the account's.
  const removeUploads = async (jid: string): Promise<void> => {
    const gone = await store.removeUploader(jid);
    if (gone.length > 0) module.log.info({ jid, count: gone.length }, 'uploads of a deleted account removed');
  };
  module.hookGlobal('user-deleted', ({ jid }) => removeUploads(jid));
  // Accounts deleted by another process (xmppd deluser), or while the server was down: their uploads go too.
  const sweep = async (): Promise<void> => {
    for (const jid of store.uploaders()) {
      const domain = jid.slice(jid.indexOf('@') + 1);
      if (module.isLocalHost(domain) && !(await module.users.exists(jid))) await removeUploads(jid);
    }
  };
  const swept = (err: unknown): void => module.log.error({ err }, 'removing the uploads of deleted accounts failed');
  sweep().catch(swept);
  module.hookGlobal('users-changed-elsewhere', () => void sweep().catch(swept));
  // Hourly, or sooner for short expiries; unref'd: it never keeps the process alive.
  const timer = setInterval(expire, Math.min(3600, Math.max(1, options.expires_after)) * 1000);
  timer.unref();
  module.onUnload(() => clearInterval(timer));
}

class FileTooLarge extends StanzaError {
  constructor(size: number, readonly limit: number) {
    super('not-acceptable', `The file is ${size} bytes; the limit is ${limit}.`);
  }
}

export const httpFileShare: ModuleDefinition = {
  manifest: {
    id: 'http_file_share',
    description: 'HTTP File Upload (XEP-0363) as a component: upload slots over XMPP, files over the HTTP server, size limit, daily quota per account, expiry (Prosody\'s mod_http_file_share).',
    component: true,
    depends: ['http'],
    options: {
      name: { type: 'string', default: 'HTTP File Upload', description: 'The service\'s name in service discovery.' },
      size_limit: { type: 'integer', default: 10 * 1024 * 1024, min: 1, max: 2 ** 40, description: 'Largest file, in bytes (announced in disco#info as max-file-size).' },
      daily_quota: { type: 'integer', default: 100 * 1024 * 1024, min: 1, max: 2 ** 50, description: 'Bytes one account may upload in 24 hours (counted at the slot request); past it: resource-constraint.' },
      expires_after: { type: 'integer', format: 'duration', default: 7 * 86400, min: 60, max: 10 * 365 * 86400, description: 'How long a file is kept after its upload slot was given; then it is deleted.' },
      access: { type: 'string[]', default: [], description: 'JIDs or domains that may upload besides the accounts of this server\'s virtual hosts.' },
    },
  },
  load: load as ModuleDefinition['load'],
};
