// Lint: typescript-eslint's recommended rules, plus the one boundary that matters most here:
// the plugin imports nothing from the host but its public API (conventions: "two rooms with one door").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // CommonJS in plain JavaScript where a worker thread must load without tsx (storage_sqlite's archive writer).
    files: ['lib/**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', Atomics: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['lib/post_msg/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: '^\\.\\./host/(?!api\\.js$)',
          message: 'The plugin may import only lib/host/api.ts from the host.',
        }, {
          regex: '^(\\.\\./)+lib/host/(?!api\\.js$)',
          message: 'The plugin may import only lib/host/api.ts from the host.',
        }],
      }],
    },
  },

  // The host's layers (../shared/design/layout.md): util/ is pure, net/ sits on util/, core/ on util/ net/ and the
  // door, bundled modules on the door, util/ and net/ only; the door itself imports only util/.
  ...[
    ['lib/host/util/*.ts', '^\\.\\./', 'util/ imports only node:* and npm packages.'],
    ['lib/host/util/*/*.ts', '^\\.\\./\\.\\./', 'util/ imports only node:* and npm packages.'],
    ['lib/host/net/*.ts', '^\\.\\./(?!util/)', 'net/ imports only util/.'],
    ['lib/host/core/*.ts', '^\\.\\./(?!util/|net/|api\\.js$)', 'core/ imports only util/, net/ and api.ts.'],
    ['lib/host/core/*/*.ts', '^\\.\\./\\.\\./(?!util/|net/|api\\.js$)', 'core/ imports only util/, net/ and api.ts.'],
    // A module is one file or one folder; it reaches another module through events, items and depends() only.
    ['lib/host/modules/*.ts', '^\\./|^\\.\\./(?!util/|net/|api\\.js$)', 'A single-file module imports only api.ts, util/ and net/ (no other module\'s files).'],
    ['lib/host/modules/*/*.ts', '^\\.\\./(?!\\.\\./(?:util/|net/|api\\.js$))', 'A module imports only its own folder, api.ts, util/ and net/ (no other module\'s files).'],
    ['lib/host/modules/*/*/*.ts', '^\\.\\./\\.\\./(?!\\.\\./(?:util/|net/|api\\.js$))', 'A module imports only its own folder, api.ts, util/ and net/ (no other module\'s files).'],
    ['lib/host/api.ts', '^\\./(?!util/)', 'The door imports only util/ (core/ implements its types).'],
    ['lib/host/cli.ts', '^\\./(?!core/|util/|api\\.js$)', 'The CLI imports only core/, util/ and api.ts (modules through core/).'],
    // net/ too: the kit builds what core/server.ts builds (the end-of-turn batcher), and net/ sits below core/.
    ['lib/host/testing.ts', '^\\./(?!core/|util/|net/|api\\.js$)', 'The test kit imports only core/, util/, net/ and api.ts.'],
  ].map(([files, regex, message]) => ({
    files: [files],
    ignores: ['lib/host/core/server.ts', 'lib/host/modules/index.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] },
  })),
  {
    // The composition root is the one core file that knows the bundled modules.
    files: ['lib/host/core/server.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./(?!util/|net/|api\\.js$|modules/index\\.js$)', message: 'server.ts imports util/, net/, api.ts and modules/index.ts only.' }] }] },
  },
  {
    // The bundled catalog: each module by its entry file (a single file, or a folder's index.ts), nothing inside one.
    files: ['lib/host/modules/index.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^\\./[^/]+/(?!index\\.js$)|^\\.\\./(?!api\\.js$)', message: 'The catalog imports each module by its entry file (x.js or x/index.js) and api.ts only.' }] }] },
  },
);
