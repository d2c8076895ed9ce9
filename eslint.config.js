// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import n from 'eslint-plugin-n';

/** Lint rules: docs/../shared conventions — node: imports, no `any` in what we export, strict TS. */
export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { n },
    rules: {
      'n/prefer-node-protocol': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // One clock (src/clock.ts): every time read and timer in src/ goes through it, so tests can
    // drive it and the simulator shares it. bench/ and test/ measure real time on purpose.
    files: ['src/**/*.ts'],
    ignores: ['src/clock.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'read time through src/clock.ts (clock.now(), systemClock.now())' }],
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'].map((name) => ({ name, message: 'set timers through src/clock.ts (clock.setTimeout, every(), systemClock)' })),
      ],
    },
  },
);
