// npm run docs: rewrite the configuration reference in README.md from the code and the manifests.
import { readFileSync, writeFileSync } from 'node:fs';
import { configReference, withConfigReference } from '../lib/host/core/config-reference.js';
import { moduleCatalog } from '../lib/host/core/server.js';

const readme = readFileSync('README.md', 'utf8');
writeFileSync('README.md', withConfigReference(readme, configReference(moduleCatalog().manifests.values())));
console.log('README.md: configuration reference updated');
