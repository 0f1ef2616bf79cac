import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Keep caches inside the project: node_modules may be read-only.
  cacheDir: '.vitest-cache',
  test: {
    environment: 'node',
    include: ['__tests__/**/*.test.ts'],
    restoreMocks: true,
    // The integration test starts PGlite and runs plugin-sql's migrations first.
    hookTimeout: 120_000,
    testTimeout: 30_000,
    env: { LOG_LEVEL: 'error' },
  },
});
