import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Caches go to dist/ (a build output): sources and node_modules may be read-only.
  cacheDir: 'dist/.vitest',
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
