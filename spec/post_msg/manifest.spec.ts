// post_msg's manifest (plugin.json) and its boundary: options declared with types, defaults and bounds,
// validated by the host's config loader; the plugin imports nothing of the host but lib/host/api.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest, OptionSpec } from '../../lib/host/api.js';
import { checkOptionValue, validateConfig, type HostConfig } from '../../lib/host/core/config.js';
import { resolveOptions } from '../../lib/host/core/options.js';
import { moduleCatalog } from '../../lib/host/core/server.js';
import type { PostMsgOptions } from '../../lib/post_msg/index.js';

const ROOT = join(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'plugin.json'), 'utf8')) as Manifest;

/** plugin.json's option types, as the spec expects them; the two checks below tie them to the file and to PostMsgOptions. */
const DECLARED_TYPES = { max_body_bytes: 'integer', cors_origins: 'string[]', rate_per_second: 'number', idempotency_window: 'integer', max_recipients: 'integer', rate_burst: 'integer', remote_timeout: 'integer' } as const;

/** The TypeScript type the host hands over for a declared option type. */
type ValueOf<T extends OptionSpec['type']> = T extends 'integer' | 'number' ? number
  : T extends 'string' ? string
  : T extends 'boolean' ? boolean
  : T extends 'string[]' ? string[]
  : T extends 'integer[]' ? number[]
  : Record<string, string>;
type FromManifest = { -readonly [K in keyof typeof DECLARED_TYPES]: ValueOf<(typeof DECLARED_TYPES)[K]> };
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** Type-level: fails the typecheck when PostMsgOptions and the declared types name different keys or types. */
const typesMatch: Equal<PostMsgOptions, FromManifest> = true;

function validate(raw: Record<string, unknown>): HostConfig {
  return validateConfig({ virtual_hosts: { localhost: {} }, ...raw }, moduleCatalog(), { source: 'test.yaml', baseDir: ROOT });
}

describe('post_msg manifest', () => {
  it('names the module, its entry and a description', () => {
    assert.equal(manifest.id, 'post_msg');
    assert.equal(manifest.main, 'lib/post_msg/index.js');
    assert.ok(manifest.description.length > 20);
  });

  it('declares the options with types, defaults, bounds and descriptions', () => {
    const o = manifest.options!;
    assert.deepEqual(
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, [v.type, v.default]])),
      { max_body_bytes: ['integer', 262144], cors_origins: ['string[]', []], rate_per_second: ['number', 10], idempotency_window: ['integer', 86400], max_recipients: ['integer', 20], rate_burst: ['integer', 50], remote_timeout: ['integer', 10] },
    );
    for (const [key, spec] of Object.entries(o)) {
      assert.ok(spec.description.length > 20, key);
      assert.equal(checkOptionValue(spec, spec.default), undefined, `${key}: default fits its own spec`);
      if (spec.type === 'integer' || spec.type === 'number') assert.ok(spec.min !== undefined && spec.max !== undefined, `${key} has bounds`);
    }
  });

  it('declares the keys and types that PostMsgOptions names (load(module: ModuleApi<PostMsgOptions>))', () => {
    assert.equal(typesMatch, true);
    assert.deepEqual(Object.fromEntries(Object.entries(manifest.options!).map(([k, v]) => [k, v.type])), DECLARED_TYPES);
  });

  it('declares cors_origins as origins: the host refuses one that is not, naming file, key and module, and normalises the rest', () => {
    assert.equal(manifest.options!.cors_origins!.format, 'origin');
    assert.throws(
      () => validate({ virtual_hosts: { localhost: { post_msg: { cors_origins: ['https://ok.example', 'dash.example.org'] } } } }),
      (err: Error & { code?: string }) =>
        err.code === 'HOST_ERR_CONFIG_INVALID' &&
        err.message === 'test.yaml: virtual_hosts.localhost.post_msg.cors_origins: expected a list of web origins, scheme://host[:port] without a path, such as https://example.org (module post_msg), got a list ["https://ok.example","dash.example.org"]',
    );
    const config = validate({ post_msg: { cors_origins: ['HTTPS://Dash.Example.org:443/'] } });
    assert.deepEqual(resolveOptions(config, 'localhost', manifest).cors_origins, ['https://dash.example.org']);
  });

  it('is found by the host next to lib/', () => {
    assert.deepEqual(moduleCatalog().manifests.get('post_msg'), manifest);
  });

  it('has its options validated by the config loader, globally and per virtual host', () => {
    assert.doesNotThrow(() => validate({ post_msg: { max_body_bytes: 1024, cors_origins: ['https://x.example'], rate_per_second: 0.5, rate_burst: 1 } }));
    assert.doesNotThrow(() => validate({ virtual_hosts: { localhost: { post_msg: { rate_burst: 5 }, http_paths: { post_msg: '/send' } } } }));
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ post_msg: { max_body_bytes: 'big' } }, /post_msg\.max_body_bytes/],
      [{ post_msg: { max_body_bytes: 10 } }, /post_msg\.max_body_bytes/],
      [{ post_msg: { rate_per_second: 0 } }, /post_msg\.rate_per_second/],
      [{ post_msg: { rate_burst: 1.5 } }, /post_msg\.rate_burst/],
      [{ post_msg: { cors_origins: 'https://x' } }, /post_msg\.cors_origins/],
      [{ post_msg: { max_bytes: 1 } }, /post_msg\.max_bytes/],
      [{ virtual_hosts: { localhost: { post_msg: { rate_burst: -1 } } } }, /virtual_hosts\.localhost\.post_msg\.rate_burst/],
    ];
    for (const [raw, re] of bad) {
      assert.throws(() => validate(raw), (err: Error & { code?: string }) => err.code === 'HOST_ERR_CONFIG_INVALID' && re.test(err.message) && /test\.yaml/.test(err.message), JSON.stringify(raw));
    }
  });

  it('imports nothing of the host except lib/host/api.ts', () => {
    const dir = join(ROOT, 'lib/post_msg');
    for (const file of readdirSync(dir, { recursive: true }) as string[]) {
      if (!file.endsWith('.ts')) continue;
      const text = readFileSync(join(dir, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (!spec.startsWith('.')) continue;
        assert.ok(spec === '../host/api.js' || !spec.includes('/host/') && !spec.startsWith('../'), `${file} imports ${spec}`);
      }
    }
  });
});
