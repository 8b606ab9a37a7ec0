import type pg from 'pg';
import { Codes, TsformError } from '../../errors.ts';

/**
 * The fence PostgresAdapter checks before every COMMIT while it holds practice locks: the lock
 * connection (backend `pid`) must still hold all `locks` of them, else another process may be
 * writing these practices and this transaction must not commit (TSF412).
 */
export async function checkOneFence(client: pg.PoolClient, fence: { pid: number; locks: number }): Promise<void> {
  const { rows } = await client.query(
    "SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND classid::int = hashtext('tsform.tenant') AND granted",
    [fence.pid],
  );
  if (Number(rows[0]?.n ?? 0) < fence.locks) {
    throw new TsformError(
      Codes.tenantLocked,
      `this run lost its practice locks (their connection, backend ${fence.pid}, ended): nothing was written, since another process may now be writing these practices`,
    );
  }
}
