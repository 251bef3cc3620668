// dependency-cruiser: the import graph of lib/ has no cycles and no bundled module imports another's files, type-only
// imports included (../shared/design/layout.md; the other per-folder import rules are eslint's no-restricted-imports).
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle ties its files into one unit: they can only be loaded, tested and moved together.',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'module-in-its-folder',
      severity: 'error',
      comment: 'A bundled module (a folder under modules/) reaches another through events, items and depends(), never its files.',
      from: { path: '^lib/host/modules/([^/]+)/' },
      to: { path: '^lib/host/modules/', pathNot: '^lib/host/modules/$1/' },
    },
    {
      name: 'single-file-module',
      severity: 'error',
      comment: 'A single-file module imports no other module; the catalog (modules/index.ts) is the one file that knows them all.',
      from: { path: '^lib/host/modules/[^/]+[.]ts$', pathNot: '^lib/host/modules/index[.]ts$' },
      to: { path: '^lib/host/modules/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle through types still ties the layers together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
