import { sql } from 'kysely';
import type { Adapter } from '../adapters/adapter.ts';
import type { RunResults } from '../artifacts/run-results.ts';
import { quoteRelation } from '../sql/quote.ts';

export const HISTORY_TABLE = 'node_runs';

/**
 * Run history in the warehouse (DESIGN §6): one row per node and practice per run. Freshness,
 * SLA prediction and alerts read it; run_results.json is only the last run.
 */
export async function recordRunHistory(adapter: Adapter, metaSchema: string, run: RunResults): Promise<void> {
  await adapter.query(
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(metaSchema, HISTORY_TABLE)} (
       run_id VARCHAR NOT NULL, command VARCHAR NOT NULL, node VARCHAR NOT NULL, model VARCHAR NOT NULL,
       tenant VARCHAR, kind VARCHAR NOT NULL, status VARCHAR NOT NULL, rows_affected BIGINT,
       duration_ms BIGINT NOT NULL, code VARCHAR, finished_at TIMESTAMPTZ NOT NULL)`,
  );
  const db = adapter.kysely.withSchema(metaSchema);
  const rows = run.results.map((r) => ({
    run_id: run.run_id,
    command: run.command,
    node: r.node,
    model: r.model,
    tenant: r.tenant,
    kind: r.kind,
    status: r.status,
    rows_affected: r.rows,
    duration_ms: r.duration_ms,
    code: r.code ?? null,
    finished_at: sql`CAST(${run.finished_at} AS TIMESTAMPTZ)`,
  }));
  for (let i = 0; i < rows.length; i += 500) {
    await db.insertInto(HISTORY_TABLE).values(rows.slice(i, i + 500)).execute();
  }
}
