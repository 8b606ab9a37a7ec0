import type { Adapter } from '../adapters/adapter.ts';

const RETRIES = 8;

/** DuckDB write conflicts (two chunks of one practice) and lost connections are retried. */
export async function withRetry<T>(wh: Adapter, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= RETRIES || wh.classifyError(err) !== 'transient') throw err;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 20 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}
