// Configuration: one YAML file with Prosody's key names, validated once at start-up and frozen.
// Host keys are checked here; each module's section against the options its manifest declares.

import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { HostError } from '../util/errors.js';
import { parseJid } from '../util/jid.js';
import type { Manifest, OptionSpec, OptionValue } from '../api.js';
import { isPlainObject, parseOptionValue } from './options.js';

export { checkOptionValue, isPlainObject, normaliseHttpPath } from './options.js';

export type ModuleOptions = Readonly<Record<string, OptionValue>>;

export interface VirtualHostConfig {
  readonly modules_enabled: readonly string[];
  readonly http_paths: Readonly<Record<string, string>>;
  /** Module option sections given on this host, validated. */
  readonly module_options: Readonly<Record<string, ModuleOptions>>;
}

export interface HostConfig {
  /** The file the config came from, or `(embedded default)`. */
  readonly source: string;
  readonly data_dir: string;
  readonly log_level: LogLevel;
  readonly http_ports: readonly number[];
  readonly http_interfaces: readonly string[];
  readonly https_ports: readonly number[];
  readonly http_external_url: string | undefined;
  readonly http_default_host: string | undefined;
  readonly c2s_ports: readonly number[];
  readonly c2s_direct_tls_ports: readonly number[];
  readonly c2s_interfaces: readonly string[];
  readonly c2s_require_encryption: boolean;
  readonly c2s_stanza_size_limit: number;
  readonly c2s_timeout: number;
  readonly c2s_max_unauthenticated_per_ip: number;
  readonly s2s_ports: readonly number[];
  readonly s2s_direct_tls_ports: readonly number[];
  readonly s2s_interfaces: readonly string[];
  readonly s2s_require_encryption: boolean;
  readonly s2s_secure_auth: boolean;
  readonly s2s_ca_file: string | undefined;
  readonly s2s_timeout: number;
  readonly s2s_stanza_size_limit: number;
  readonly dns_servers: readonly string[];
  readonly tls: Readonly<{ cert: string; key: string }> | undefined;
  readonly auth_failures_per_minute: number;
  readonly pbkdf2_iterations: number;
  readonly modules_enabled: readonly string[];
  readonly http_paths: Readonly<Record<string, string>>;
  readonly plugin_paths: readonly string[];
  readonly virtual_hosts: Readonly<Record<string, VirtualHostConfig>>;
  /** Global module option sections, validated. */
  readonly module_options: Readonly<Record<string, ModuleOptions>>;
  /** Component hosts: a domain served by one module (Prosody's Component "domain" "module"). */
  readonly components: Readonly<Record<string, ComponentConfig>>;
  /** Modules never loaded, even those loaded automatically (Prosody's modules_disabled). */
  readonly modules_disabled: readonly string[];
  /** Storage backend name. */
  readonly storage: string;
  /** Addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For is believed. */
  readonly trusted_proxies: readonly string[];
}

export interface ComponentConfig {
  readonly module: string;
  /** The component's options for its module, validated. */
  readonly options: ModuleOptions;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Every host-level key, declared with the same OptionSpec as module options (the README's reference is generated from this). */
export const HOST_KEYS: Readonly<Record<string, OptionSpec>> = {
  data_dir: { type: 'string', default: './data', description: 'Where the SQLite database and the generated TLS pair live (relative to the config file).' },
  log_level: { type: 'string', enum: [...LOG_LEVELS], default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace or silent.' },
  http_ports: { type: 'integer[]', format: 'port', default: [5280], description: 'Plain HTTP ports.' },
  http_interfaces: { type: 'string[]', default: ['127.0.0.1'], description: 'Addresses the HTTP and HTTPS ports listen on.' },
  https_ports: { type: 'integer[]', format: 'port', default: [], description: 'HTTPS ports (use the `tls` pair or the generated one).' },
  http_external_url: { type: 'string', format: 'url', description: 'The public URL of the HTTP server when a reverse proxy is in front (https://chat.example.org/); links the server hands out (upload slots) start with it. Absent: http(s)://<domain>:<port> of this server.' },
  http_default_host: { type: 'string', format: 'domain', description: 'Virtual host for HTTP requests whose Host header names none.' },
  c2s_ports: { type: 'integer[]', format: 'port', default: [5222], description: 'Client ports with STARTTLS (RFC 6120).' },
  c2s_direct_tls_ports: { type: 'integer[]', format: 'port', default: [], description: 'Client ports with direct TLS (XEP-0368).' },
  c2s_interfaces: { type: 'string[]', default: ['127.0.0.1'], description: 'Addresses the client ports listen on.' },
  c2s_require_encryption: { type: 'boolean', default: true, description: 'Refuse authentication before TLS. Set false only for loopback development.' },
  c2s_stanza_size_limit: { type: 'integer', default: 262144, min: 10000, max: 104857600, description: 'Largest stanza a client may send, in bytes; larger ones end the stream with policy-violation.' },
  c2s_timeout: { type: 'integer', format: 'duration', default: 60, min: 1, max: 86400, description: 'How long an unauthenticated client stream may stay open, in seconds.' },
  c2s_max_unauthenticated_per_ip: { type: 'integer', default: 64, min: 1, max: 1000000, description: 'Client connections one address may hold before authenticating (TLS handshake included); one more is closed at once.' },
  s2s_ports: { type: 'integer[]', format: 'port', default: [5269], description: 'Server-to-server ports with STARTTLS (RFC 6120); [] for no incoming federation.' },
  s2s_direct_tls_ports: { type: 'integer[]', format: 'port', default: [], description: 'Server-to-server ports with direct TLS (XEP-0368).' },
  s2s_interfaces: { type: 'string[]', default: ['127.0.0.1'], description: 'Addresses the server-to-server ports listen on (0.0.0.0 and :: to federate with the Internet).' },
  s2s_require_encryption: { type: 'boolean', default: true, description: 'Server-to-server streams must use TLS before authentication, both ways.' },
  s2s_secure_auth: { type: 'boolean', default: false, description: 'Accept only peers whose certificate is valid for their domain (no dialback).' },
  s2s_ca_file: { type: 'string', description: "PEM trust anchors for peers' certificates (e.g. /etc/ssl/certs/ca-certificates.crt); absent: Node's bundled roots." },
  s2s_timeout: { type: 'integer', format: 'duration', default: 90, min: 1, max: 3600, description: 'How long a server-to-server stream may take to be set up and authenticated, in seconds.' },
  s2s_stanza_size_limit: { type: 'integer', default: 524288, min: 10000, max: 104857600, description: 'Largest stanza a remote server may send, in bytes; larger ones end its stream with policy-violation.' },
  dns_servers: { type: 'string[]', default: [], description: 'DNS servers (address or address:port) for finding remote servers (SRV, A, AAAA); [] uses the system resolver.' },
  tls: { type: 'map', fields: ['cert', 'key'], description: '`{ cert: path, key: path }` (PEM). Absent: a self-signed pair is generated under data_dir on first start.' },
  auth_failures_per_minute: { type: 'integer', default: 10, min: 1, max: 100000, description: 'Failed credential checks allowed per client address per 60 s, HTTP and c2s together; then 429 / delayed failure.' },
  pbkdf2_iterations: { type: 'integer', default: 10000, min: 4096, max: 10000000, description: 'PBKDF2 iteration count for new and changed passwords (SCRAM, RFC 5802).' },
  // DIFF: mam is on by default (Prosody leaves it off): an alert must reach every device of its reader.
  // DIFF: so are websocket and the web chat (Prosody's config leaves them commented out): a newcomer opens http://localhost:5280/.
  modules_enabled: { type: 'string[]', default: ['tokenauth', 'post_msg', 'carbons', 'csi_simple', 'smacks', 'mam', 'pep', 'bookmarks', 'private', 'blocklist', 'vcard_legacy', 'version', 'uptime', 'time', 'websocket', 'http_altconnect', 'conversejs', 'http_index'], description: 'Optional modules to load on every virtual host (merged with each host\'s own list).' },
  http_paths: { type: 'map', format: 'path', default: {}, description: 'Base path per HTTP app, e.g. `{ post_msg: /msg }` (a virtual host\'s own map wins).' },
  plugin_paths: { type: 'string[]', default: [], description: 'Extra folders holding a plugin.json manifest each.' },
  modules_disabled: { type: 'string[]', default: [], description: 'Modules never loaded, even those loaded automatically (e.g. c2s).' },
  storage: { type: 'string', default: 'sqlite', description: 'Storage backend: `sqlite` (bundled), or `<name>` from a plugin module storage_<name>.' },
  trusted_proxies: { type: 'string[]', format: 'address', default: ['127.0.0.1', '::1'], description: 'Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For header is believed.' },
};

/** Keys holding sections of their own, checked apart from HOST_KEYS. */
const SECTION_KEYS = ['virtual_hosts', 'components'];

const VHOST_KEYS = new Set(['modules_enabled', 'http_paths']);

/** What validation needs to know about modules: every manifest by id, and which are core (always loaded). */
export interface ModuleCatalog {
  manifests: ReadonlyMap<string, Manifest>;
  core: ReadonlySet<string>;
}

const EMBEDDED_DEFAULT = { virtual_hosts: { localhost: {} }, components: { 'conference.localhost': { module: 'muc' }, 'upload.localhost': { module: 'http_file_share' } }, http_default_host: 'localhost' };

/** A config as read, before validation: what it came from and how to resolve its relative paths. */
export interface RawConfig {
  raw: unknown;
  source: string;
  baseDir: string;
}

/** Read a config file; a missing file at the default path means the embedded default. */
export function readRawConfig(path: string, opts: { isDefaultPath: boolean }): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (opts.isDefaultPath && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { raw: EMBEDDED_DEFAULT, source: '(embedded default)', baseDir: process.cwd() };
    }
    throw new HostError('HOST_ERR_CONFIG_UNREADABLE', `${path}: cannot read the config file (${(err as Error).message}).`);
  }
  try {
    return { raw: parseYaml(text) ?? {}, source: path, baseDir: dirname(resolve(path)) };
  } catch (err) {
    throw new HostError('HOST_ERR_CONFIG_INVALID', `${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * The plugin folders a raw config names, resolved: needed before validation, since the modules
 * found there decide which module names and option sections are valid.
 */
export function pluginPathsOf(config: RawConfig): string[] {
  const paths = isPlainObject(config.raw) ? config.raw.plugin_paths : undefined;
  if (!Array.isArray(paths)) return [];
  return paths.filter((p): p is string => typeof p === 'string' && p.length > 0).map((p) => resolve(config.baseDir, p));
}

/** Read and validate a config file in one step (when the catalog is known already). */
export function loadConfig(path: string, catalog: ModuleCatalog, opts: { isDefaultPath: boolean }): HostConfig {
  const config = readRawConfig(path, opts);
  return validateConfig(config.raw, catalog, config);
}

/** Validate a parsed config object; throws one HostError listing every problem, each naming file and key. */
export function validateConfig(raw: unknown, catalog: ModuleCatalog, where: { source: string; baseDir: string }): HostConfig {
  const problems: string[] = [];
  const fail = (key: string, expected: string, got: unknown): void => {
    problems.push(`${key}: expected ${expected}, got ${describe(got)}`);
  };
  if (!isPlainObject(raw)) {
    throw new HostError('HOST_ERR_CONFIG_INVALID', `${where.source}: the top level must be a mapping of keys to values, got ${describe(raw)}.`);
  }

  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(HOST_KEYS)) {
    out[key] = key in raw ? checkHostValue(key, raw[key], spec, fail) : structuredClone(spec.default);
  }

  const moduleOptions: Record<string, ModuleOptions> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key in HOST_KEYS || SECTION_KEYS.includes(key)) continue;
    if (catalog.manifests.has(key)) {
      moduleOptions[key] = checkModuleSection(key, key, value, catalog.manifests.get(key)!, fail);
      continue;
    }
    problems.push(`${key}: unknown key${suggest(key, [...Object.keys(HOST_KEYS), ...SECTION_KEYS, ...catalog.manifests.keys()])}; the keys are listed in README.md (Configuration)`);
  }

  checkModuleNames('modules_enabled', out.modules_enabled as string[], catalog, problems);
  checkModuleNames('modules_disabled', out.modules_disabled as string[], catalog, problems);
  checkPathMapNames('http_paths', out.http_paths as Record<string, string>, catalog, problems);
  // The default's module is bundled: only a configured backend can be missing (a spec's made-up catalog has none).
  if ('storage' in raw) checkStorage(out.storage as string, catalog, problems);

  const vhosts: Record<string, VirtualHostConfig> = {};
  const rawHosts = raw.virtual_hosts ?? EMBEDDED_DEFAULT.virtual_hosts;
  if (!isPlainObject(rawHosts) || Object.keys(rawHosts).length === 0) {
    fail('virtual_hosts', 'a mapping with at least one host name, e.g. { localhost: {} }', rawHosts);
  } else {
    for (const [name, value] of Object.entries(rawHosts)) {
      const host = checkVirtualHost(name, value ?? {}, catalog, fail, problems);
      if (host) vhosts[host.name] = host.config;
    }
  }

  const components: Record<string, ComponentConfig> = {};
  const rawComponents = raw.components ?? {};
  if (!isPlainObject(rawComponents)) {
    fail('components', 'a mapping of domains to { module: <id>, ...its options }, e.g. { conference.localhost: { module: muc } }', rawComponents);
  } else {
    for (const [name, value] of Object.entries(rawComponents)) {
      const component = checkComponent(name, value, catalog, fail, problems);
      if (!component) continue;
      if (component.name in vhosts) problems.push(`components.${name}: ${component.name} is also a virtual host; a domain is one or the other`);
      else components[component.name] = component.config;
    }
  }

  const defaultHost = out.http_default_host as string | undefined;
  if (defaultHost !== undefined && Object.keys(vhosts).length > 0 && !(defaultHost.toLowerCase() in vhosts)) {
    problems.push(`http_default_host: expected one of the virtual hosts (${Object.keys(vhosts).join(', ')}), got ${describe(defaultHost)}`);
  }

  if (problems.length > 0) {
    const lines = problems.map((p) => `${where.source}: ${p}`);
    throw new HostError('HOST_ERR_CONFIG_INVALID', lines.join('\n'));
  }

  const tls = out.tls as { cert: string; key: string } | undefined;
  return deepFreeze({
    ...(out as Omit<HostConfig, 'source' | 'virtual_hosts' | 'module_options'>),
    source: where.source,
    data_dir: resolve(where.baseDir, out.data_dir as string),
    http_default_host: defaultHost?.toLowerCase(),
    tls: tls && { cert: resolve(where.baseDir, tls.cert), key: resolve(where.baseDir, tls.key) },
    plugin_paths: (out.plugin_paths as string[]).map((p) => resolve(where.baseDir, p)),
    virtual_hosts: vhosts,
    module_options: moduleOptions,
    components,
  });
}

function checkComponent(
  name: string,
  value: unknown,
  catalog: ModuleCatalog,
  fail: (key: string, expected: string, got: unknown) => void,
  problems: string[],
): { name: string; config: ComponentConfig } | undefined {
  const prefix = `components.${name}`;
  const parsed = parseJid(name);
  if (!parsed.ok || parsed.jid.local !== null || parsed.jid.resource !== null) {
    fail(prefix, 'a domain name such as conference.localhost', name);
    return undefined;
  }
  if (!isPlainObject(value) || typeof value.module !== 'string') {
    fail(prefix, 'a mapping with the module serving this domain, e.g. { module: muc }', value);
    return undefined;
  }
  const manifest = catalog.manifests.get(value.module);
  if (!manifest) {
    problems.push(`${prefix}.module: unknown module ${JSON.stringify(value.module)}; known modules are ${[...catalog.manifests.keys()].join(', ')}`);
    return undefined;
  }
  const { module, ...rest } = value;
  const options = checkModuleSection(prefix, module as string, rest, manifest, fail);
  return { name: parsed.jid.domain, config: { module: module as string, options } };
}

function checkVirtualHost(
  name: string,
  value: unknown,
  catalog: ModuleCatalog,
  fail: (key: string, expected: string, got: unknown) => void,
  problems: string[],
): { name: string; config: VirtualHostConfig } | undefined {
  const prefix = `virtual_hosts.${name}`;
  const parsed = parseJid(name);
  if (!parsed.ok || parsed.jid.local !== null || parsed.jid.resource !== null) {
    fail(prefix, 'a domain name such as localhost or example.org', name);
    return undefined;
  }
  if (!isPlainObject(value)) {
    fail(prefix, 'a mapping (use {} for a host with no settings of its own)', value);
    return undefined;
  }
  let modules: string[] = [];
  let paths: Record<string, string> = {};
  const moduleOptions: Record<string, ModuleOptions> = {};
  for (const [key, v] of Object.entries(value)) {
    const keyPath = `${prefix}.${key}`;
    if (key === 'modules_enabled') {
      modules = checkHostValue(keyPath, v, HOST_KEYS.modules_enabled!, fail) as string[];
      checkModuleNames(keyPath, modules, catalog, problems);
    } else if (key === 'http_paths') {
      paths = checkHostValue(keyPath, v, HOST_KEYS.http_paths!, fail) as Record<string, string>;
      checkPathMapNames(keyPath, paths, catalog, problems);
    } else if (catalog.manifests.has(key)) {
      moduleOptions[key] = checkModuleSection(keyPath, key, v, catalog.manifests.get(key)!, fail);
    } else {
      const known = [...VHOST_KEYS, ...[...catalog.manifests.values()].filter((m) => m.options).map((m) => m.id)];
      problems.push(`${keyPath}: unknown key${suggest(key, [...known, ...Object.keys(HOST_KEYS)])}; a virtual host takes ${known.join(', ')}`);
    }
  }
  return { name: parsed.jid.domain, config: { modules_enabled: modules ?? [], http_paths: paths ?? {}, module_options: moduleOptions } };
}

function checkModuleNames(key: string, names: string[] | undefined, catalog: ModuleCatalog, problems: string[]): void {
  for (const name of names ?? []) {
    if (!catalog.manifests.has(name)) {
      problems.push(`${key}: unknown module ${JSON.stringify(name)}; known modules are ${[...catalog.manifests.keys()].join(', ')}`);
    }
  }
}

/** The module that provides storage backend `name` (Prosody's storage drivers: mod_storage_<name>). */
export function storageModuleId(name: string): string {
  return `storage_${name}`;
}

/** `storage` names a backend some module of the catalog provides (bundled or in plugin_paths). */
function checkStorage(name: string, catalog: ModuleCatalog, problems: string[]): void {
  if (catalog.manifests.has(storageModuleId(name))) return;
  const known = [...catalog.manifests.keys()].filter((id) => id.startsWith('storage_')).map((id) => id.slice('storage_'.length));
  problems.push(`storage: unknown storage backend ${JSON.stringify(name)}; known backends are ${known.join(', ')} (a backend <name> is the module storage_<name>)`);
}

function checkPathMapNames(key: string, paths: Record<string, string> | undefined, catalog: ModuleCatalog, problems: string[]): void {
  for (const name of Object.keys(paths ?? {})) {
    if (!catalog.manifests.has(name)) problems.push(`${key}.${name}: unknown module ${JSON.stringify(name)}`);
  }
}

function checkHostValue(key: string, value: unknown, spec: OptionSpec, fail: (key: string, expected: string, got: unknown) => void): unknown {
  const checked = parseOptionValue(spec, value);
  return checked.ok ? checked.value : fail(key, checked.expected, value);
}

function checkModuleSection(
  key: string,
  moduleId: string,
  value: unknown,
  manifest: Manifest,
  fail: (key: string, expected: string, got: unknown) => void,
): ModuleOptions {
  const out: Record<string, OptionValue> = {};
  const declared = manifest.options ?? {};
  if (!isPlainObject(value)) {
    fail(key, `a mapping of ${moduleId} options (${Object.keys(declared).join(', ') || 'none declared'})`, value);
    return out;
  }
  for (const [name, v] of Object.entries(value)) {
    const spec = declared[name];
    if (!spec) {
      fail(`${key}.${name}`, `one of the options of module ${moduleId} (${Object.keys(declared).join(', ') || 'none'})`, name);
      continue;
    }
    const checked = parseOptionValue(spec, v);
    if (checked.ok) out[name] = checked.value;
    else fail(`${key}.${name}`, `${checked.expected} (module ${moduleId})`, v);
  }
  return out;
}

/** ` (did you mean "x"?)` when a known key is within two edits of the unknown one. */
function suggest(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return `a list ${JSON.stringify(v)}`;
  if (isPlainObject(v)) return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
