// One option vocabulary for host keys and module options: an OptionSpec checks, normalises and resolves a value
// (ejabberd's econf validators and mod_options defaults; Prosody's config types and util.human.io.parse_duration).

import { isIP } from 'node:net';
import type { Manifest, OptionFormat, OptionSpec, OptionValue } from '../api.js';
import { parseJid } from '../util/jid.js';
import { normaliseOrigin } from '../util/origin.js';

/** A checked value (normalised: origins lowercased, paths without a trailing slash, durations in seconds), or what was expected. */
export type CheckedOption = { ok: true; value: OptionValue } | { ok: false; expected: string };

type ParsedFormat = { ok: true; value: string | number } | { ok: false };

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** What each format accepts, in the words the error messages and the README use. */
const FORMAT_TEXT: Readonly<Record<OptionFormat, { one: string; many: string }>> = {
  origin: { one: 'a web origin, scheme://host[:port] without a path, such as https://example.org', many: 'web origins, scheme://host[:port] without a path, such as https://example.org' },
  url: { one: 'an absolute http:// or https:// URL', many: 'absolute http:// or https:// URLs' },
  path: { one: 'an HTTP path that starts with "/", e.g. /msg', many: 'HTTP paths that start with "/", e.g. /msg' },
  port: { one: 'a port number from 0 to 65535', many: 'port numbers from 0 to 65535, e.g. [5280]' },
  domain: { one: 'a domain name such as example.org', many: 'domain names such as example.org' },
  duration: { one: 'a duration: seconds, or a number with s, m, h, d or w (30s, 15m, 12h, 90d, 1w)', many: 'durations (30s, 15m, 12h, 90d, 1w or seconds)' },
  address: { one: 'an IP address or CIDR range, e.g. 10.0.0.0/8', many: 'IP addresses or CIDR ranges, e.g. ["127.0.0.1", "::1", "10.0.0.0/8"]' },
};

/** undefined when the value fits the spec, else what was expected. */
export function checkOptionValue(spec: OptionSpec, value: unknown): string | undefined {
  const checked = parseOptionValue(spec, value);
  return checked.ok ? undefined : checked.expected;
}

/** Check a value against its spec and return it normalised (durations become seconds), or what was expected. */
export function parseOptionValue(spec: OptionSpec, value: unknown): CheckedOption {
  const fail = (): CheckedOption => ({ ok: false, expected: expectedText(spec) });
  if (spec.orBoolean && typeof value === 'boolean') return { ok: true, value };
  switch (spec.type) {
    case 'boolean':
      return typeof value === 'boolean' ? { ok: true, value } : fail();
    case 'string':
    case 'integer':
    case 'number': {
      const one = parseScalar(spec, value);
      return one.ok ? one : fail();
    }
    case 'string[]':
    case 'integer[]': {
      if (!Array.isArray(value)) return fail();
      const element: OptionSpec = { ...spec, type: spec.type === 'string[]' ? 'string' : 'integer' };
      const out: (string | number)[] = [];
      for (const item of value) {
        const one = parseScalar(element, item);
        if (!one.ok) return fail();
        out.push(one.value);
      }
      return { ok: true, value: out as string[] | number[] };
    }
    case 'map': {
      if (!isPlainObject(value)) return fail();
      if (spec.fields && (Object.keys(value).length !== spec.fields.length || !spec.fields.every((f) => f in value))) return fail();
      const out: Record<string, string> = {};
      for (const [key, item] of Object.entries(value)) {
        const one = parseScalar({ ...spec, type: 'string' }, item);
        if (!one.ok) return fail();
        out[key] = one.value as string;
      }
      return { ok: true, value: out };
    }
  }
}

/** One string or number: type, format, enum and bounds. */
function parseScalar(spec: OptionSpec, value: unknown): ParsedFormat {
  // A duration may also be one of its declared words (`never`), kept as it is.
  if (spec.format === 'duration' && typeof value === 'string' && spec.enum?.includes(value)) return { ok: true, value };
  let v: unknown = value;
  if (spec.format) {
    const formatted = parseFormat(spec.format, value);
    if (!formatted.ok) return formatted;
    v = formatted.value;
  }
  if (spec.type === 'string') {
    if (typeof v !== 'string' || v.length === 0) return { ok: false };
    return spec.enum && !spec.enum.includes(v) ? { ok: false } : { ok: true, value: v };
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) return { ok: false };
  if (spec.type === 'integer' && !Number.isInteger(v)) return { ok: false };
  if (v < (spec.min ?? -Infinity) || v > (spec.max ?? Infinity)) return { ok: false };
  return { ok: true, value: v };
}

function parseFormat(format: OptionFormat, value: unknown): ParsedFormat {
  switch (format) {
    case 'origin': {
      const origin = typeof value === 'string' ? normaliseOrigin(value) : undefined;
      return origin === undefined ? { ok: false } : { ok: true, value: origin };
    }
    case 'url':
      return typeof value === 'string' && /^https?:\/\//i.test(value) && URL.canParse(value) ? { ok: true, value } : { ok: false };
    case 'path':
      return typeof value === 'string' && value.startsWith('/') && !/[\s?#]/.test(value) ? { ok: true, value: normaliseHttpPath(value) } : { ok: false };
    case 'port':
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535 ? { ok: true, value: value as number } : { ok: false };
    case 'domain': {
      const parsed = typeof value === 'string' ? parseJid(value) : undefined;
      if (!parsed?.ok || parsed.jid.local !== null || parsed.jid.resource !== null) return { ok: false };
      return { ok: true, value: parsed.jid.domain };
    }
    case 'duration': {
      const seconds = parseDuration(value);
      return seconds === undefined ? { ok: false } : { ok: true, value: seconds };
    }
    case 'address':
      return isAddressOrRange(value) ? { ok: true, value: value as string } : { ok: false };
  }
}

/** Seconds from a number of seconds or `<n><unit>` with unit s, m, h, d or w (`90d`, `1.5h`); undefined if neither. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/i.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS[(m[2] || 's').toLowerCase()]!;
}

/** `/msg/` and `/msg` are the same base path; `/` stays `/`. */
export function normaliseHttpPath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** An IP address, or a CIDR range `address/bits`. */
function isAddressOrRange(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const [address = '', bits, ...more] = v.split('/');
  const family = isIP(address);
  if (family === 0 || more.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** What a spec accepts, as one phrase: `an integer from 1 to 100`, `a list of web origins such as …`. */
export function expectedText(spec: OptionSpec): string {
  if (spec.orBoolean) return `true, false or ${expectedText({ ...spec, orBoolean: false })}`;
  const format = spec.format && FORMAT_TEXT[spec.format];
  const bounds = spec.min !== undefined || spec.max !== undefined ? ` from ${spec.min ?? '-∞'} to ${spec.max ?? '∞'}` : '';
  const oneOf = spec.enum ? `one of ${spec.enum.join(', ')}` : undefined;
  switch (spec.type) {
    case 'boolean':
      return 'true or false';
    case 'string':
      return oneOf ?? format?.one ?? 'a non-empty string';
    case 'integer':
    case 'number': {
      const kind = spec.type === 'integer' ? 'an integer' : 'a number';
      if (spec.format === 'duration') return `${spec.type === 'integer' ? 'an integer number' : 'a number'} of seconds${bounds}, or a duration such as 30s, 15m, 12h, 90d, 1w${spec.enum ? `, or ${spec.enum.join(', ')}` : ''}`;
      return format && !bounds ? format.one : `${kind}${bounds}`;
    }
    case 'string[]':
      return `a list of ${oneOf ? `values, each ${oneOf}` : format?.many ?? 'non-empty strings'}`;
    case 'integer[]':
      return `a list of ${format?.many ?? `integers${bounds}`}`;
    case 'map':
      if (spec.fields) return `a mapping with exactly the keys ${spec.fields.join(', ')}, each ${format?.one ?? 'a non-empty string'}`;
      return `a mapping of names to ${format?.many ?? 'non-empty strings'}`;
  }
}

/** The type column of the README: `integer`, `port[]`, `duration`, `map of path`. */
export function typeText(spec: OptionSpec): string {
  if (spec.orBoolean) return `boolean or ${typeText({ ...spec, orBoolean: false })}`;
  if (spec.type === 'map') return spec.format ? `map of ${spec.format}` : 'map';
  if (spec.enum && spec.format !== 'duration') return spec.type.endsWith('[]') ? 'enum[]' : 'enum';
  if (!spec.format) return spec.type;
  return spec.type.endsWith('[]') ? `${spec.format}[]` : spec.format;
}

/** Where module option sections live in a validated config (core/config.ts HostConfig has this shape). */
export interface OptionSources {
  readonly module_options: Readonly<Record<string, Readonly<Record<string, OptionValue>>>>;
  readonly virtual_hosts: Readonly<Record<string, { readonly module_options: Readonly<Record<string, Readonly<Record<string, OptionValue>>>> }>>;
  readonly components: Readonly<Record<string, { readonly module: string; readonly options: Readonly<Record<string, OptionValue>> }>>;
}

/**
 * A module's options on a host, frozen (Prosody's module:get_option): the virtual host's section > the global
 * section > the manifest default. A component's own module reads the component's section > the default; the
 * modules it depends on read the global section. Sections are checked already (config.ts).
 */
export function resolveOptions(config: OptionSources, host: string, manifest: Manifest): Readonly<Record<string, OptionValue>> {
  // Own properties only: `constructor` is not a host.
  const component = Object.hasOwn(config.components, host) ? config.components[host] : undefined;
  if (component?.module === manifest.id) return firstSet(manifest, component.options);
  const own = Object.hasOwn(config.virtual_hosts, host) ? config.virtual_hosts[host] : undefined;
  return firstSet(manifest, own?.module_options[manifest.id], config.module_options[manifest.id]);
}

/** Each declared option from the first section that sets it, else its default. */
function firstSet(manifest: Manifest, ...sections: (Readonly<Record<string, OptionValue>> | undefined)[]): Readonly<Record<string, OptionValue>> {
  const out: Record<string, OptionValue> = {};
  for (const [key, spec] of Object.entries(manifest.options ?? {})) {
    const set = sections.find((section) => section?.[key] !== undefined)?.[key];
    // A declared option without a default stays present (as undefined) so reading it is not an unknown key.
    out[key] = (set ?? spec.default) as OptionValue;
  }
  return Object.freeze(out);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
