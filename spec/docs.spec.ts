// README.md stays true: its configuration reference is the generated one, its test command is .ci/run's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configReference } from '../lib/host/core/config-reference.js';
import { moduleCatalog } from '../lib/host/core/server.js';

describe('README.md', () => {
  it('holds the configuration reference generated from the code and the manifests (run `npm run docs`)', () => {
    const readme = readFileSync('README.md', 'utf8');
    assert.ok(readme.includes(configReference(moduleCatalog().manifests.values())), 'README.md is out of date: run `npm run docs`');
  });

  it('names the same test command as .ci/run', () => {
    const readme = readFileSync('README.md', 'utf8');
    const ci = readFileSync('.ci/run', 'utf8');
    assert.match(readme, /```sh\nnpm test\n```/);
    assert.match(ci, /^npm test$/m);
  });
});
