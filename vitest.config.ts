import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // DuckDB files and throwaway servers are heavy on a 2-core machine.
    maxWorkers: 2,
    // A fixed test-only vault key (never a production key): demo copies tokenize with it.
    env: { TSFORM_VAULT_KEY: '5f3c7a1e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a' },
  },
});
