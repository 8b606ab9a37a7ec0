import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // DuckDB files and throwaway servers are heavy on a 2-core machine.
    maxWorkers: 2,
  },
});
