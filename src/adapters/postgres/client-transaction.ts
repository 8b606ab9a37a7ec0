import type pg from 'pg';
import { Codes, TsformError } from '../../errors.ts';

/**
 * One transaction on one pooled connection: `begin`, an optional statement timeout for this
 * transaction only, `fn`, then COMMIT, or ROLLBACK when `fn` throws (its error is rethrown).
 * Shared by the warehouse adapter and the OLTP source.
 */
export async function inClientTransaction<T>(pool: pg.Pool, begin: string, timeoutMs: number | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client that loses its connection between two statements emits 'error';
  // the next statement fails with it instead of the process crashing, and the client is
  // released as broken (not reused).
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query(begin);
    if (timeoutMs !== undefined) {
      // Per statement, for this transaction only (is_local = true); bound, not spliced.
      await client.query("SELECT set_config('statement_timeout', $1, true)", [String(Math.max(1, Math.round(timeoutMs)))]);
    }
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken ??= rollbackErr;
      });
      throw err;
    }
    const commit = await client.query('COMMIT');
    // When a statement failed and fn swallowed the error, PostgreSQL answers COMMIT with a
    // ROLLBACK tag and no error: nothing was written (or read consistently), so this must not
    // look like success.
    if (commit.command !== 'COMMIT') {
      throw new TsformError(Codes.sqlError, `transaction was rolled back at COMMIT (server answered ${commit.command}): a statement inside it had failed`);
    }
    return result;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
