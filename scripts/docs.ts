// npm run docs: rewrite the configuration reference in README.md from the code and the manifests.
import { readFileSync, writeFileSync } from 'node:fs';
import { configReference, withConfigReference } from '../lib/host/config-reference.js';
import { discoverModules } from '../lib/host/module-manager.js';

const readme = readFileSync('README.md', 'utf8');
writeFileSync('README.md', withConfigReference(readme, configReference(discoverModules().manifests.values())));
console.log('README.md: configuration reference updated');
