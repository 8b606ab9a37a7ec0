import { DuckDBInstance } from '@duckdb/node-api';
import { Codes, TransientError, TsformError, type ErrorClass } from '../../errors.ts';
import { LOCK_WAIT_POLICY, retrying } from '../../schedule/retry-policy.ts';

/**
 * A DuckDB instance on `path`, waiting while another process holds the file (a TransientError
 * until the wait runs out, then TSF412 naming the holder). The adapter opens its warehouse this
 * way, and so does the rewrite of `tsform compact` and `tsform purge`, which failed at once
 * (uncoded) when a run held the file while runs, purge and retokenize wait (red-team, 2026-12-07).
 * A wait is a duration: LOCK_WAIT_POLICY measures it on the monotonic clock, not the time of day.
 */
export async function openWaiting(
  path: string,
  opts: { threads?: number; lockWaitMs?: number; onWait?: (holder: string) => void; classify: (err: unknown) => ErrorClass },
): Promise<DuckDBInstance> {
  let holder: string | undefined;
  return retrying(
    async () => {
      try {
        return await DuckDBInstance.create(path, opts.threads === undefined ? {} : { threads: String(opts.threads) });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        holder = /Conflicting lock is held in (.*)$/m.exec(message)?.[1]?.trim();
        const code = holder ? Codes.tenantLocked : Codes.connection;
        const what = holder ? `DuckDB database ${path} is held by another process (${holder}); gave up waiting` : `cannot open DuckDB database ${path}: ${message.split('\n')[0] ?? ''}`;
        throw opts.classify(err) === 'transient' ? new TransientError(what, code) : new TsformError(code, what);
      }
    },
    {
      policy: opts.lockWaitMs === undefined ? LOCK_WAIT_POLICY : { ...LOCK_WAIT_POLICY, maxElapsedMs: opts.lockWaitMs },
      classify: opts.classify,
      onRetry: (_err, retry) => {
        if (retry === 1) opts.onWait?.(holder ?? 'another process');
      },
    },
  );
}
