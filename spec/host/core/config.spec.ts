// Configuration: defaults, validation against module manifests, messages naming file and key, freezing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST_KEYS, loadConfig, validateConfig, normaliseHttpPath } from '../../../lib/host/core/config.js';
import type { ModuleCatalog } from '../../../lib/host/core/config.js';
import { HostError } from '../../../lib/host/util/errors.js';
import type { Manifest } from '../../../lib/host/api.js';

const demo: Manifest = {
  id: 'demo',
  description: 'a module for config specs',
  main: 'x.js',
  options: {
    size: { type: 'integer', default: 10, min: 1, max: 100, description: 'a size' },
    origins: { type: 'string[]', default: [], description: 'origins' },
    mode: { type: 'string', default: 'a', enum: ['a', 'b'], description: 'a mode' },
  },
};
const catalog: ModuleCatalog = { manifests: new Map([['demo', demo], ['core_thing', { id: 'core_thing', description: 'core' }]]), core: new Set(['core_thing']) };
const where = { source: 'test.yaml', baseDir: '/srv/xmppd' };

function problem(raw: unknown): string {
  try {
    validateConfig(raw, catalog, where);
  } catch (err) {
    assert.ok(err instanceof HostError);
    assert.equal(err.code, 'HOST_ERR_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected the config to be rejected');
}

describe('Config', () => {
  describe('validateConfig()', () => {
    it('fills every host key with its default', () => {
      const c = validateConfig({ virtual_hosts: { localhost: {} }, modules_enabled: [] }, catalog, where);
      assert.deepEqual(c.http_ports, [5280]);
      assert.deepEqual(c.c2s_ports, [5222]);
      assert.deepEqual(c.http_interfaces, ['127.0.0.1']);
      assert.equal(c.c2s_require_encryption, true);
      assert.equal(c.pbkdf2_iterations, 10000);
      assert.equal(c.auth_failures_per_minute, 10);
      assert.equal(c.data_dir, '/srv/xmppd/data');
    });

    it('freezes the result, deeply', () => {
      const c = validateConfig({ virtual_hosts: { localhost: { demo: { size: 5 } } }, modules_enabled: ['demo'] }, catalog, where);
      assert.ok(Object.isFrozen(c));
      assert.ok(Object.isFrozen(c.virtual_hosts.localhost!.module_options.demo));
      assert.throws(() => {
        (c.http_ports as number[]).push(1);
      }, TypeError);
    });

    it('names the file, the key and what was expected for a wrong type', () => {
      assert.match(problem({ http_ports: 'x' }), /^test\.yaml: http_ports: expected a list of port numbers .* got string "x"/);
    });

    it('rejects an unknown key and suggests the close one', () => {
      assert.match(problem({ http_port: [1] }), /test\.yaml: http_port: unknown key \(did you mean "http_ports"\?\)/);
    });

    it('rejects an unknown module in modules_enabled, globally and per host', () => {
      assert.match(problem({ modules_enabled: ['nope'] }), /modules_enabled: unknown module "nope"/);
      assert.match(problem({ modules_enabled: [], virtual_hosts: { localhost: { modules_enabled: ['nope'] } } }), /virtual_hosts\.localhost\.modules_enabled: unknown module "nope"/);
    });

    it('validates module options against the manifest: bounds, types, enum, unknown keys', () => {
      assert.match(problem({ modules_enabled: [], demo: { size: 0 } }), /demo\.size: expected an integer from 1 to 100 \(module demo\), got number 0/);
      assert.match(problem({ modules_enabled: [], demo: { size: '5' } }), /demo\.size: expected an integer/);
      assert.match(problem({ modules_enabled: [], demo: { mode: 'c' } }), /demo\.mode: expected one of a, b/);
      assert.match(problem({ modules_enabled: [], virtual_hosts: { localhost: { demo: { colour: 1 } } } }), /virtual_hosts\.localhost\.demo\.colour: expected one of the options of module demo/);
    });

    it('reports every problem, one line each', () => {
      const lines = problem({ modules_enabled: [], http_ports: 'x', c2s_ports: [70000], log_level: 'loud' }).split('\n');
      assert.equal(lines.length, 3);
      for (const line of lines) assert.match(line, /^test\.yaml: /);
    });

    it('lowercases virtual host names and rejects ones that are not domains', () => {
      const c = validateConfig({ modules_enabled: [], virtual_hosts: { 'Example.ORG': {} } }, catalog, where);
      assert.deepEqual(Object.keys(c.virtual_hosts), ['example.org']);
      assert.match(problem({ virtual_hosts: { 'a@b': {} } }), /virtual_hosts\.a@b: expected a domain name/);
    });

    it('requires http_default_host to be a virtual host', () => {
      assert.match(problem({ modules_enabled: [], http_default_host: 'other' }), /http_default_host: expected one of the virtual hosts/);
    });

    it('keeps options per host apart from the global section', () => {
      const c = validateConfig(
        { modules_enabled: ['demo'], demo: { size: 20 }, virtual_hosts: { a: { demo: { size: 30 } }, b: {} } },
        catalog,
        where,
      );
      assert.deepEqual(c.module_options.demo, { size: 20 });
      assert.deepEqual(c.virtual_hosts.a!.module_options.demo, { size: 30 });
      assert.deepEqual(c.virtual_hosts.b!.module_options, {});
    });

    it('normalises http_paths (a trailing slash is the same path)', () => {
      const c = validateConfig({ modules_enabled: [], http_paths: { demo: '/send/' } }, catalog, where);
      assert.equal(c.http_paths.demo, '/send');
      assert.equal(normaliseHttpPath('/'), '/');
      assert.match(problem({ http_paths: { demo: 'send' } }), /http_paths: expected a mapping of names to HTTP paths that start with "\/"/);
    });
  });

  describe('components, modules_disabled, storage, trusted_proxies', () => {
    it('default to none, none, sqlite and the loopback addresses', () => {
      const c = validateConfig({ modules_enabled: [] }, catalog, where);
      assert.deepEqual(c.components, {});
      assert.deepEqual(c.modules_disabled, []);
      assert.equal(c.storage, 'sqlite');
      assert.deepEqual(c.trusted_proxies, ['127.0.0.1', '::1']);
    });

    it('give a component its module and that module\'s options, validated', () => {
      const c = validateConfig({ modules_enabled: [], components: { 'Conference.Localhost': { module: 'demo', size: 7 } } }, catalog, where);
      assert.deepEqual(c.components, { 'conference.localhost': { module: 'demo', options: { size: 7 } } });
      assert.ok(Object.isFrozen(c.components['conference.localhost']!.options));
    });

    it('refuse a component with an unknown module, a bad option, no module or a bad domain', () => {
      assert.match(problem({ components: { 'c.localhost': { module: 'nope' } } }), /^test\.yaml: components\.c\.localhost\.module: unknown module "nope"; known modules are demo, core_thing/m);
      assert.match(problem({ components: { 'c.localhost': { module: 'demo', size: 0 } } }), /^test\.yaml: components\.c\.localhost\.size: expected an integer from 1 to 100 \(module demo\), got number 0/m);
      assert.match(problem({ components: { 'c.localhost': { module: 'demo', colour: 'red' } } }), /^test\.yaml: components\.c\.localhost\.colour: expected one of the options of module demo/m);
      assert.match(problem({ components: { 'c.localhost': {} } }), /^test\.yaml: components\.c\.localhost: expected a mapping with the module serving this domain/m);
      assert.match(problem({ components: { 'a@b': { module: 'demo' } } }), /^test\.yaml: components\.a@b: expected a domain name/m);
      assert.match(problem({ components: ['x'] }), /^test\.yaml: components: expected a mapping of domains/m);
    });

    it('refuse a domain that is both a virtual host and a component', () => {
      assert.match(problem({ virtual_hosts: { localhost: {} }, components: { localhost: { module: 'demo' } } }), /components\.localhost: localhost is also a virtual host/);
    });

    it('refuse unknown modules in modules_disabled', () => {
      assert.deepEqual(validateConfig({ modules_enabled: [], modules_disabled: ['core_thing'] }, catalog, where).modules_disabled, ['core_thing']);
      assert.match(problem({ modules_disabled: ['s2z'] }), /^test\.yaml: modules_disabled: unknown module "s2z"/m);
    });

    it('refuse a storage that is not a string', () => {
      assert.match(problem({ storage: 3 }), /^test\.yaml: storage: expected a non-empty string, got number 3/m);
    });

    it('take addresses and CIDR ranges as trusted_proxies, and refuse host names', () => {
      const c = validateConfig({ modules_enabled: [], trusted_proxies: ['10.0.0.0/8', 'fd00::/8', '192.0.2.1'] }, catalog, where);
      assert.deepEqual(c.trusted_proxies, ['10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
      for (const bad of ['proxy.example', '10.0.0.0/33', '::1/129', '1.2.3.4/x']) {
        assert.match(problem({ trusted_proxies: [bad] }), /^test\.yaml: trusted_proxies: expected a list of IP addresses or CIDR ranges/m, bad);
      }
    });
  });

  describe('loadConfig()', () => {
    it('runs the embedded default when the default file is absent', () => {
      // Every module the default modules_enabled and components name must be known.
      const enabled = [...(HOST_KEYS.modules_enabled!.default as string[]), 'muc', 'http_file_share'].map((id): [string, Manifest] => [id, { id, description: '' }]);
      const c = loadConfig(join(mkdtempSync(join(tmpdir(), 'cfg-')), 'xmppd.yaml'), { ...catalog, manifests: new Map([...catalog.manifests, ...enabled]) }, { isDefaultPath: true });
      assert.equal(c.source, '(embedded default)');
      assert.deepEqual(Object.keys(c.virtual_hosts), ['localhost']);
      assert.equal(c.components['conference.localhost']?.module, 'muc');
      assert.equal(c.components['upload.localhost']?.module, 'http_file_share');
      assert.equal(c.http_default_host, 'localhost');
    });

    it('refuses a named file that does not exist', () => {
      assert.throws(() => loadConfig('/nonexistent/xmppd.yaml', catalog, { isDefaultPath: false }), { code: 'HOST_ERR_CONFIG_UNREADABLE' });
    });

    it('reports YAML syntax errors with the file name', () => {
      const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'bad.yaml');
      writeFileSync(file, 'http_ports: [5280\n');
      assert.throws(() => loadConfig(file, catalog, { isDefaultPath: false }), (err: HostError) => err.message.startsWith(`${file}: not valid YAML`));
    });

    it('resolves data_dir and tls paths relative to the config file', () => {
      const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
      const file = join(dir, 'xmppd.yaml');
      writeFileSync(file, 'modules_enabled: []\ndata_dir: ./state\ntls: { cert: c.pem, key: k.pem }\n');
      const c = loadConfig(file, catalog, { isDefaultPath: false });
      assert.equal(c.data_dir, join(dir, 'state'));
      assert.equal(c.tls?.cert, join(dir, 'c.pem'));
    });
  });
});
