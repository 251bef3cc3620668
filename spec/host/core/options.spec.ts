// The option vocabulary: types, formats (each accepts and refuses), normalised values, resolution host > global > default.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkOptionValue, expectedText, parseDuration, parseOptionValue, resolveOptions, typeText } from '../../../lib/host/core/options.js';
import type { Manifest, OptionFormat, OptionSpec, OptionValue } from '../../../lib/host/api.js';

function accepted(spec: OptionSpec, value: unknown): OptionValue {
  const checked = parseOptionValue(spec, value);
  assert.ok(checked.ok, `${JSON.stringify(value)} should fit ${JSON.stringify(spec)}: ${checked.ok ? '' : checked.expected}`);
  return checked.value;
}

function refused(spec: OptionSpec, value: unknown): string {
  const checked = parseOptionValue(spec, value);
  assert.ok(!checked.ok, `${JSON.stringify(value)} should not fit ${JSON.stringify(spec)}`);
  return checked.expected;
}

const str = (format: OptionFormat): OptionSpec => ({ type: 'string', format, description: '' });

describe('Options', () => {
  describe('parseOptionValue()', () => {
    describe('types', () => {
      it('checks integers, numbers and their bounds', () => {
        const spec: OptionSpec = { type: 'integer', min: 1, max: 100, description: '' };
        assert.equal(accepted(spec, 5), 5);
        for (const bad of [0, 101, 1.5, '5', NaN, null]) refused(spec, bad);
        assert.equal(expectedText(spec), 'an integer from 1 to 100');
        assert.equal(accepted({ type: 'number', min: 0.001, description: '' }, 0.5), 0.5);
        refused({ type: 'number', description: '' }, Infinity);
      });

      it('checks booleans, non-empty strings and enums', () => {
        assert.equal(accepted({ type: 'boolean', description: '' }, false), false);
        refused({ type: 'boolean', description: '' }, 'yes');
        refused({ type: 'string', description: '' }, '');
        const level: OptionSpec = { type: 'string', enum: ['info', 'debug'], description: '' };
        assert.equal(accepted(level, 'debug'), 'debug');
        assert.equal(refused(level, 'loud'), 'one of info, debug');
      });

      it('checks every element of a list', () => {
        const spec: OptionSpec = { type: 'string[]', description: '' };
        assert.deepEqual(accepted(spec, ['a', 'b']), ['a', 'b']);
        refused(spec, ['a', 3]);
        refused(spec, 'a');
        refused({ type: 'integer[]', min: 1, description: '' }, [1, 0]);
      });

      it('checks maps, and their exact fields when declared', () => {
        const tls: OptionSpec = { type: 'map', fields: ['cert', 'key'], description: '' };
        assert.deepEqual(accepted(tls, { cert: 'c.pem', key: 'k.pem' }), { cert: 'c.pem', key: 'k.pem' });
        refused(tls, { cert: 'c.pem' });
        refused(tls, { cert: 'c.pem', key: 'k.pem', extra: 'x' });
        refused(tls, { cert: 'c.pem', key: 7 });
        refused(tls, ['c.pem', 'k.pem']);
      });
    });

    describe('formats', () => {
      it('origin: scheme://host[:port], normalised; refuses paths, bare hosts and text', () => {
        assert.equal(accepted(str('origin'), 'HTTPS://Dash.Example.org:443'), 'https://dash.example.org');
        assert.equal(accepted(str('origin'), 'http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
        for (const bad of ['not an origin', 'dash.example.org', 'https://example.org/app', 'https://user@example.org', '', 3]) refused(str('origin'), bad);
        assert.match(refused({ type: 'string[]', format: 'origin', description: '' }, ['https://ok.example', 'not an origin']), /^a list of web origins, scheme:\/\/host\[:port\] without a path, such as https:\/\/example\.org$/);
      });

      it('url: absolute http or https', () => {
        assert.equal(accepted(str('url'), 'https://upload.example.org/put?x=1'), 'https://upload.example.org/put?x=1');
        for (const bad of ['/relative', 'ftp://example.org/', 'https://', 'example.org']) refused(str('url'), bad);
      });

      it('path: an HTTP path from "/", trailing slash dropped', () => {
        assert.equal(accepted(str('path'), '/msg/'), '/msg');
        assert.equal(accepted(str('path'), '/'), '/');
        for (const bad of ['msg', '/a b', '/a?b', '/a#b']) refused(str('path'), bad);
      });

      it('port: 0 to 65535', () => {
        const ports: OptionSpec = { type: 'integer[]', format: 'port', description: '' };
        assert.deepEqual(accepted(ports, [0, 5280, 65535]), [0, 5280, 65535]);
        for (const bad of [[65536], [-1], [52.8], ['5280']]) refused(ports, bad);
        assert.equal(expectedText(ports), 'a list of port numbers from 0 to 65535, e.g. [5280]');
      });

      it('domain: a domain name, lowercased; refuses JIDs with a local part or resource', () => {
        assert.equal(accepted(str('domain'), 'Conference.Example.ORG'), 'conference.example.org');
        for (const bad of ['user@example.org', 'example.org/res', '', 'a b']) refused(str('domain'), bad);
      });

      it('duration: seconds or 30s, 15m, 12h, 90d, 1w, resolved to seconds', () => {
        const spec: OptionSpec = { type: 'integer', format: 'duration', description: '' };
        const cases: Array<[unknown, number]> = [[30, 30], ['30s', 30], ['15m', 900], ['12h', 43200], ['90d', 7776000], ['1w', 604800], ['45', 45], ['1.5m', 90]];
        for (const [input, seconds] of cases) assert.equal(accepted(spec, input), seconds, String(input));
        for (const bad of ['soon', '1y', '-5s', 'm', '1.5s', -1, true]) refused(spec, bad);
        assert.equal(accepted({ type: 'number', format: 'duration', description: '' }, '0.5s'), 0.5);
      });

      it('duration: bounds apply to the seconds', () => {
        const spec: OptionSpec = { type: 'integer', format: 'duration', min: 1, max: 86400, description: '' };
        assert.equal(accepted(spec, '1d'), 86400);
        refused(spec, '2d');
        refused(spec, '0s');
        assert.match(expectedText(spec), /^an integer number of seconds from 1 to 86400, or a duration such as 30s, 15m/);
      });

      it('address: an IP address or a CIDR range', () => {
        const spec: OptionSpec = { type: 'string[]', format: 'address', description: '' };
        assert.deepEqual(accepted(spec, ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8']), ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8']);
        for (const bad of [['proxy.example'], ['10.0.0.0/33'], ['::1/129'], ['1.2.3.4/x'], ['1.2.3.4/8/8']]) refused(spec, bad);
      });
    });
  });

  describe('checkOptionValue()', () => {
    it('is undefined for a fitting value, else what was expected', () => {
      assert.equal(checkOptionValue({ type: 'integer', description: '' }, 3), undefined);
      assert.equal(checkOptionValue({ type: 'boolean', description: '' }, 3), 'true or false');
    });
  });

  describe('parseDuration()', () => {
    it('reads units case-insensitively and refuses what it cannot read', () => {
      assert.equal(parseDuration('2H'), 7200);
      assert.equal(parseDuration(' 10 m '), 600);
      assert.equal(parseDuration('10 minutes'), undefined);
    });
  });

  describe('typeText()', () => {
    it('names the format where there is one', () => {
      assert.equal(typeText({ type: 'string[]', format: 'origin', description: '' }), 'origin[]');
      assert.equal(typeText({ type: 'integer[]', format: 'port', description: '' }), 'port[]');
      assert.equal(typeText({ type: 'integer', format: 'duration', description: '' }), 'duration');
      assert.equal(typeText({ type: 'map', format: 'path', description: '' }), 'map of path');
      assert.equal(typeText({ type: 'string', enum: ['a'], description: '' }), 'enum');
      assert.equal(typeText({ type: 'number', description: '' }), 'number');
    });
  });

  describe('resolveOptions()', () => {
    const manifest: Manifest = {
      id: 'demo',
      description: '',
      options: { size: { type: 'integer', default: 10, description: '' }, mode: { type: 'string', default: 'a', description: '' } },
    };
    const config = {
      module_options: { demo: { size: 20, mode: 'g' } },
      virtual_hosts: { a: { module_options: { demo: { size: 30 } } }, b: { module_options: {} } },
      components: { 'c.a': { module: 'demo', options: { size: 40 } }, 'other.a': { module: 'else', options: {} } },
    };

    it('takes the host setting, then the global one, then the default', () => {
      assert.deepEqual(resolveOptions(config, 'a', manifest), { size: 30, mode: 'g' });
      assert.deepEqual(resolveOptions(config, 'b', manifest), { size: 20, mode: 'g' });
      assert.deepEqual(resolveOptions({ ...config, module_options: {} }, 'b', manifest), { size: 10, mode: 'a' });
    });

    it('gives a component\'s module the component\'s section, then the default; other modules there the global section', () => {
      assert.deepEqual(resolveOptions(config, 'c.a', manifest), { size: 40, mode: 'a' });
      assert.deepEqual(resolveOptions(config, 'other.a', manifest), { size: 20, mode: 'g' });
    });

    it('freezes the result', () => {
      assert.ok(Object.isFrozen(resolveOptions(config, 'a', manifest)));
    });
  });
});
