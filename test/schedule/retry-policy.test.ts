import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, nextDelayMs, shouldRetry, type RetryPolicy } from '../../src/schedule/retry-policy.ts';
import { prng } from '../support/prng.ts';

describe('retry policy', () => {
  const policy: RetryPolicy = { maxRetries: 5, baseMs: 10, capMs: 100 };

  it('full jitter: each delay is in [0, min(cap, base·2^(n-1))), spread over the whole range', () => {
    const rand = prng(42);
    for (const [attempt, ceiling] of [[1, 10], [2, 20], [3, 40], [4, 80], [5, 100], [30, 100], [2_000, 100]] as const) {
      const delays = Array.from({ length: 2_000 }, () => nextDelayMs(attempt, rand, policy));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...delays)).toBeLessThan(ceiling);
      // Uniform: the mean sits near the middle, and both ends are reached.
      const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
      expect(mean).toBeGreaterThan(ceiling * 0.4);
      expect(mean).toBeLessThan(ceiling * 0.6);
      expect(Math.max(...delays)).toBeGreaterThanOrEqual(ceiling - 2);
    }
  });

  it('is deterministic for a given random source, and safe at its edges', () => {
    const a = prng(7);
    const b = prng(7);
    const seq = (r: () => number) => [1, 2, 3, 4].map((n) => nextDelayMs(n, r));
    expect(seq(a)).toEqual(seq(b));
    expect(nextDelayMs(1, () => 0, policy)).toBe(0);
    expect(nextDelayMs(3, () => 1, policy)).toBe(39);
    expect(() => nextDelayMs(0, prng(1))).toThrow(RangeError);
  });

  it('retries transient errors up to maxRetries and never permanent or cancelled ones', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => shouldRetry('transient', n, policy))).toEqual([true, true, true, true, true, false]);
    expect([1, 2].map((n) => shouldRetry('permanent', n, policy))).toEqual([false, false]);
    expect([1, 2].map((n) => shouldRetry('cancelled', n, policy))).toEqual([false, false]);
    expect(shouldRetry('transient', 1, { ...policy, maxRetries: 0 })).toBe(false);
    expect(shouldRetry('transient', DEFAULT_RETRY_POLICY.maxRetries)).toBe(true);
    expect(shouldRetry('transient', DEFAULT_RETRY_POLICY.maxRetries + 1)).toBe(false);
  });
});
