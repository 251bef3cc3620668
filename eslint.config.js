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
);
