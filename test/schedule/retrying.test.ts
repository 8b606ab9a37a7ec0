import { describe, expect, it } from 'vitest';
import { CancelledError, Codes, errorClassOf, TransientError, TsformError, type ErrorClass } from '../../src/errors.ts';
import {
  CAPTURE_CHUNK_RETRY_POLICY,
  DEFAULT_RETRY_POLICY,
  LOCK_WAIT_POLICY,
  nextDelayMs,
  retrying,
  WEBHOOK_RETRY_POLICY,
  type RetryPolicy,
} from '../../src/schedule/retry-policy.ts';
import { prng } from '../support/prng.ts';

/** A sleep that only records what it was asked to wait, so nothing here waits for real. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

/** Fails with `errors[i]` on attempt i+1, then succeeds with the attempt number. */
function failing(...errors: unknown[]): { run: (attempt: number) => Promise<number>; attempts: () => number } {
  let n = 0;
  return {
    attempts: () => n,
    run: async (attempt) => {
      n++;
      expect(attempt).toBe(n);
      if (n <= errors.length) throw errors[n - 1];
      return attempt;
    },
  };
}

const byOwnClass = (err: unknown): ErrorClass => errorClassOf(err) ?? 'permanent';

describe('retrying', () => {
  const policy: RetryPolicy = { maxRetries: 3, baseMs: 10, capMs: 25 };

  it('retries a transient failure up to maxRetries, waiting the policy’s full-jitter delays', async () => {
    const { sleep, delays } = recordingSleep();
    const job = failing(new TransientError('conflict'), new TransientError('conflict'), new TransientError('conflict'));
    const seen: [number, number][] = [];
    const result = await retrying(job.run, { classify: byOwnClass, policy, rng: prng(3), sleep, onRetry: (_e, retry, ms) => seen.push([retry, ms]) });
    expect(result).toBe(4);
    expect(job.attempts()).toBe(4);
    // The same seeded source gives the same delays as nextDelayMs itself: one policy, no second formula.
    const expected = (r => [1, 2, 3].map((n) => nextDelayMs(n, r, policy)))(prng(3));
    expect(delays).toEqual(expected);
    expect(seen).toEqual(expected.map((ms, i) => [i + 1, ms]));
    delays.forEach((ms, i) => expect(ms).toBeLessThan(Math.min(policy.capMs, policy.baseMs * 2 ** i)));
  });

  it('gives up after maxRetries and rethrows the last failure unchanged', async () => {
    const { sleep, delays } = recordingSleep();
    const last = new TransientError('still locked', Codes.tenantLocked);
    const job = failing(new TransientError('a'), new TransientError('b'), new TransientError('c'), last, new TransientError('never reached'));
    await expect(retrying(job.run, { classify: byOwnClass, policy, rng: prng(1), sleep })).rejects.toBe(last);
    expect(job.attempts()).toBe(policy.maxRetries + 1);
    expect(delays).toHaveLength(policy.maxRetries);
    expect(last.code).toBe('TSF412');
  });

  it('never retries a permanent or a cancelled failure', async () => {
    for (const err of [new TsformError(Codes.sqlError, 'Binder Error'), new CancelledError('node timeout'), new Error('a bug')]) {
      const { sleep, delays } = recordingSleep();
      const job = failing(err);
      await expect(retrying(job.run, { classify: byOwnClass, policy, rng: prng(1), sleep })).rejects.toBe(err);
      expect(job.attempts()).toBe(1);
      expect(delays).toEqual([]);
    }
  });

  it('asks the classifier about every failure: a raw engine error it calls transient is retried', async () => {
    const { sleep } = recordingSleep();
    const conflict = new Error('TransactionContext Error: Conflict on tuple deletion!');
    const classified: unknown[] = [];
    const job = failing(conflict);
    const classify = (err: unknown): ErrorClass => (classified.push(err), /Conflict on/.test((err as Error).message) ? 'transient' : 'permanent');
    await expect(retrying(job.run, { classify, policy, rng: prng(1), sleep })).resolves.toBe(2);
    expect(classified).toEqual([conflict]);
  });

  it('maxRetries 0 means one attempt', async () => {
    const { sleep, delays } = recordingSleep();
    const job = failing(new TransientError('x'));
    await expect(retrying(job.run, { classify: byOwnClass, policy: { ...policy, maxRetries: 0 }, sleep })).rejects.toThrow('x');
    expect(job.attempts()).toBe(1);
    expect(delays).toEqual([]);
  });

  it('a wait bounded by time (lock waits) stops once maxElapsedMs has passed on the monotonic clock', async () => {
    let now = 1_000;
    const delays: number[] = [];
    const sleep = async (ms: number) => {
      delays.push(ms);
      now += 400; // each poll and wait takes 400 ms of "time"
    };
    const held = new TransientError('held', Codes.tenantLocked);
    const job = failing(...Array.from({ length: 100 }, () => held));
    await expect(retrying(job.run, { classify: byOwnClass, policy: { ...LOCK_WAIT_POLICY, maxElapsedMs: 1_000 }, rng: () => 0.5, sleep, now: () => now })).rejects.toBe(held);
    // Failures at t=0, 400, 800 are retried; the one at 1200 is past the bound.
    expect(job.attempts()).toBe(4);
    expect(delays).toHaveLength(3);
    expect(Math.max(...delays)).toBeLessThanOrEqual(LOCK_WAIT_POLICY.capMs);
  });

  it('named policies differ only by their numbers', () => {
    for (const p of [DEFAULT_RETRY_POLICY, CAPTURE_CHUNK_RETRY_POLICY, LOCK_WAIT_POLICY, WEBHOOK_RETRY_POLICY]) {
      expect(Object.keys(p).every((k) => ['maxRetries', 'baseMs', 'capMs', 'maxElapsedMs'].includes(k))).toBe(true);
      expect(p.baseMs).toBeGreaterThan(0);
      expect(p.capMs).toBeGreaterThanOrEqual(p.baseMs);
    }
    // A lock wait is bounded by time, not by count.
    expect(LOCK_WAIT_POLICY.maxRetries).toBe(Infinity);
    expect(LOCK_WAIT_POLICY.maxElapsedMs).toBe(600_000);
  });
});

describe('error classes', () => {
  it('a TsformError is permanent unless it is a TransientError or a CancelledError; codes stay what they say', () => {
    expect(errorClassOf(new TsformError(Codes.sqlError, 'x'))).toBe('permanent');
    expect(errorClassOf(new TransientError('x'))).toBe('transient');
    expect(new TransientError('x').code).toBe('TSF404');
    expect(new TransientError('x', Codes.connection).code).toBe('TSF409');
    expect(errorClassOf(new CancelledError('x'))).toBe('cancelled');
    expect(new CancelledError('x').code).toBe('TSF411');
    expect(new CancelledError('x')).toBeInstanceOf(TsformError);
    expect(errorClassOf(new Error('x'))).toBeUndefined();
    // The class is not a field: it stays out of JSON.
    expect(JSON.stringify(new TransientError('x'))).not.toContain('transient');
  });
});
