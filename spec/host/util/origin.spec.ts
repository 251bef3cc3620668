// Origins and the cross-site decision the http module makes for every app (moved with lib/host/util/origin.ts).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkOrigin, normaliseOrigin } from '../../../lib/host/util/origin.js';

describe('#checkOrigin()', () => {
  const self = 'http://localhost:5280';
  const allowed = ['https://dash.example.org'];
  it('lets requests without Origin through (curl, scripts), unless Sec-Fetch-Site says cross-site', () => {
    assert.deepEqual(checkOrigin({ origin: undefined, secFetchSite: undefined, selfOrigin: self, allowedOrigins: [] }), { allowed: true, corsOrigin: undefined });
    assert.deepEqual(checkOrigin({ origin: undefined, secFetchSite: 'cross-site', selfOrigin: self, allowedOrigins: [] }), { allowed: false });
    assert.deepEqual(checkOrigin({ origin: undefined, secFetchSite: 'same-origin', selfOrigin: self, allowedOrigins: [] }), { allowed: true, corsOrigin: undefined });
  });

  it('accepts its own origin (scheme and Host), case-insensitively', () => {
    assert.deepEqual(checkOrigin({ origin: 'HTTP://LocalHost:5280', secFetchSite: undefined, selfOrigin: self, allowedOrigins: [] }), { allowed: true, corsOrigin: undefined });
    assert.deepEqual(checkOrigin({ origin: 'https://localhost:5280', secFetchSite: undefined, selfOrigin: self, allowedOrigins: [] }), { allowed: false });
    assert.deepEqual(checkOrigin({ origin: 'http://localhost:5281', secFetchSite: undefined, selfOrigin: self, allowedOrigins: [] }), { allowed: false });
  });

  it('accepts cors_origins and echoes the origin', () => {
    assert.deepEqual(checkOrigin({ origin: 'https://dash.example.org', secFetchSite: 'cross-site', selfOrigin: self, allowedOrigins: allowed }), { allowed: true, corsOrigin: 'https://dash.example.org' });
    assert.deepEqual(checkOrigin({ origin: 'https://dash.example.org:443', secFetchSite: 'cross-site', selfOrigin: self, allowedOrigins: allowed }), { allowed: true, corsOrigin: 'https://dash.example.org:443' });
    assert.deepEqual(checkOrigin({ origin: 'https://evil.dash.example.org', secFetchSite: undefined, selfOrigin: self, allowedOrigins: allowed }), { allowed: false });
    assert.deepEqual(checkOrigin({ origin: 'null', secFetchSite: undefined, selfOrigin: self, allowedOrigins: ['null'] }), { allowed: false });
  });

  it('normalises origins', () => {
    assert.equal(normaliseOrigin('HTTPS://Example.ORG:443/'), 'https://example.org');
    assert.equal(normaliseOrigin('http://[::1]:5280'), 'http://[::1]:5280');
    assert.equal(normaliseOrigin('example.org'), undefined);
    assert.equal(normaliseOrigin('https://example.org/path'), undefined);
    assert.equal(normaliseOrigin('https://user@example.org'), undefined);
  });
});
