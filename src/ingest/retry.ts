import type { Adapter } from '../adapters/adapter.ts';
import { CAPTURE_CHUNK_RETRY_POLICY, retrying } from '../schedule/index.ts';

/** One capture step (a chunk, its commit, the lock rows): write conflicts and lost connections, as the warehouse classifies them, are retried. */
export async function withRetry<T>(wh: Adapter, run: () => Promise<T>): Promise<T> {
  return retrying(run, { policy: CAPTURE_CHUNK_RETRY_POLICY, classify: (err) => wh.classifyError(err) });
}
