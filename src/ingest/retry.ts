import type { Adapter } from '../adapters/adapter.ts';
import type { OltpSource } from '../adapters/oltp-source.ts';
import { CAPTURE_CHUNK_RETRY_POLICY, retrying } from '../schedule/index.ts';

/**
 * One capture step (a chunk, its commit, the lock rows): write conflicts and lost connections
 * are retried. A failure of the OLTP's driver is classified by the OLTP (`oltp`, when the step
 * reads it), any other by the warehouse: on a DuckDB warehouse, a PostgreSQL OLTP's lost
 * connection is transient too.
 */
export async function withRetry<T>(wh: Adapter, run: () => Promise<T>, oltp?: Pick<OltpSource, 'classifyError'>): Promise<T> {
  return retrying(run, { policy: CAPTURE_CHUNK_RETRY_POLICY, classify: (err) => oltp?.classifyError(err) ?? wh.classifyError(err) });
}
