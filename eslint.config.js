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
    ['lib/host/modules/*.ts', '^\\.\\./(?!util/|net/|api\\.js$)', 'A module imports only api.ts, util/ and net/.'],
    ['lib/host/modules/*/*.ts', '^\\.\\./\\.\\./(?!util/|net/|api\\.js$)', 'A module imports only api.ts, util/ and net/.'],
    ['lib/host/api.ts', '^\\./(?!util/)', 'The door imports only util/ (core/ implements its types).'],
  ].map(([files, regex, message]) => ({
    files: [files],
    ignores: ['lib/host/core/server.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] },
  })),
  {
    // The composition root is the one core file that knows the bundled modules.
    files: ['lib/host/core/server.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./(?!util/|net/|api\\.js$|modules/index\\.js$)', message: 'server.ts imports util/, net/, api.ts and modules/index.ts only.' }] }] },
  },
);
