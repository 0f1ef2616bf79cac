import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Keep caches inside the project: node_modules may be read-only.
  cacheDir: '.vitest-cache',
  test: {
    environment: 'node',
    include: ['__tests__/**/*.test.ts'],
    restoreMocks: true,
  },
});
