// post_msg's small parsers: Content-Type, Basic credentials, the token bucket (origins: spec/host/util/origin.spec.ts).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMediaType } from '../../lib/post_msg/media-type.js';
import { parseBasicAuthorization, basicChallenge } from '../../lib/post_msg/credentials.js';
import { TokenBucketLimiter } from '../../lib/post_msg/rate-limit.js';
import { parseForm } from '../../lib/post_msg/payload.js';

const b64 = (s: string, enc: BufferEncoding = 'utf8'): string => Buffer.from(s, enc).toString('base64');

describe('post_msg parsers', () => {
  describe('#parseMediaType()', () => {
    it('maps the three media types, case-insensitively, with parameters', () => {
      assert.deepEqual(parseMediaType('text/plain'), { ok: true, value: { format: 'text', charset: undefined } });
      assert.deepEqual(parseMediaType('Application/X-WWW-Form-Urlencoded; charset=UTF-8'), { ok: true, value: { format: 'form', charset: 'utf-8' } });
      assert.deepEqual(parseMediaType('application/json;charset="us-ascii"'), { ok: true, value: { format: 'json', charset: 'us-ascii' } });
      assert.deepEqual(parseMediaType('  text/plain ;  ; foo=bar '), { ok: true, value: { format: 'text', charset: undefined } });
    });

    it('refuses others with 415 naming what is expected', () => {
      for (const ct of [undefined, ' ', 'text/plainx', 'application/json-patch+json', 'text/plain; charset=utf-16', '/plain', 'text/', 'text/plain;charset="utf-8']) {
        const r = parseMediaType(ct);
        assert.equal(r.ok, false, String(ct));
        if (!r.ok) {
          assert.equal(r.problem.status, 415);
          assert.ok(r.problem.headers?.['Accept-Post']);
        }
      }
    });
  });

  describe('#parseBasicAuthorization()', () => {
    it('splits at the first colon and decodes UTF-8', () => {
      assert.deepEqual(parseBasicAuthorization(`Basic ${b64('bob@localhost:pa:ss:')}`), { ok: true, credentials: { username: 'bob@localhost', password: 'pa:ss:' } });
      assert.deepEqual(parseBasicAuthorization(`basic   ${b64('jürgen:€uro')}`), { ok: true, credentials: { username: 'jürgen', password: '€uro' } });
      assert.deepEqual(parseBasicAuthorization(`BASIC ${b64('bob@localhost/ci:x').replace(/=+$/, '')}`), { ok: true, credentials: { username: 'bob@localhost/ci', password: 'x' } });
    });

    it('says why it failed (for the log), for every kind of bad header', () => {
      const cases: Array<[string | undefined, string]> = [
        [undefined, 'missing'],
        ['', 'missing'],
        [`Bearer ${b64('bob:secret')}`, 'scheme'],
        ['Basic', 'scheme'],
        [`Basic ${b64('bob:secret')} extra`, 'scheme'],
        ['Basic !!!!', 'base64'],
        ['Basic Ym9iOnNlY3JldA=', 'base64'],
        ['Basic Y', 'base64'],
        [`Basic ${b64('bob')}`, 'colon'],
        [`Basic ${b64('jürgen:x', 'latin1')}`, 'utf8'],
        [`Basic ${b64(':secret')}`, 'empty'],
        [`Basic ${b64('bob:')}`, 'empty'],
      ];
      for (const [header, reason] of cases) assert.deepEqual(parseBasicAuthorization(header), { ok: false, reason }, String(header));
    });

    it('builds the challenge with realm <host>/post_msg and charset UTF-8', () => {
      assert.equal(basicChallenge('example.org'), 'Basic realm="example.org/post_msg", charset="UTF-8"');
    });
  });

  describe('TokenBucketLimiter', () => {
    it('allows a burst, then rate_per_second, per key, and says how long to wait', () => {
      let now = 0;
      const limiter = new TokenBucketLimiter({ ratePerSecond: 2, burst: 3, now: () => now });
      assert.deepEqual([limiter.take('a'), limiter.take('a'), limiter.take('a')], [0, 0, 0]);
      assert.equal(limiter.take('a'), 1);
      assert.equal(limiter.take('b'), 0, 'other keys have their own bucket');
      now = 500;
      assert.equal(limiter.take('a'), 0, 'one token after 0.5 s at 2/s');
      assert.equal(limiter.take('a'), 1);
      now = 60_000;
      assert.deepEqual([limiter.take('a'), limiter.take('a'), limiter.take('a'), limiter.take('a')], [0, 0, 0, 1], 'refills to the burst, not beyond');
    });

    it('rounds the wait up to whole seconds for slow rates', () => {
      const limiter = new TokenBucketLimiter({ ratePerSecond: 0.1, burst: 1, now: () => 0 });
      assert.equal(limiter.take('a'), 0);
      assert.equal(limiter.take('a'), 10);
    });

    it('keeps memory bounded by forgetting full buckets', () => {
      let now = 0;
      const limiter = new TokenBucketLimiter({ ratePerSecond: 1, burst: 1, now: () => now, maxKeys: 10 });
      for (let i = 0; i < 10; i++) limiter.take(`k${i}`);
      now = 5000;
      for (let i = 10; i < 100; i++) assert.equal(limiter.take(`k${i}`), 0);
    });
  });

  describe('#parseForm()', () => {
    it('decodes + as space and %XX as UTF-8, names too; skips empty pairs', () => {
      assert.deepEqual(parseForm('b%6Fdy=caf%C3%A9+au+lait&&to=x'), { ok: true, value: { body: 'café au lait', to: 'x' } });
    });
  });
});
