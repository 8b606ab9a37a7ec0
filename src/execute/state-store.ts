import type { Adapter } from '../adapters/adapter.ts';
import type { RunResults } from '../artifacts/run-results.ts';
import { isoBefore, type Clock } from '../clock.ts';
import { quoteRelation } from '../sql/quote.ts';
import { migrateMeta, NODE_RUNS, TENANT_STATE, type NodeRunRow } from '../warehouse/meta-schema.ts';
import { insertRows } from '../warehouse/table-def.ts';

/**
 * Run history in the warehouse (DESIGN §6): one row per node and practice per run. Freshness,
 * SLA prediction and alerts read it; run_results.json is only the last run.
 */
export async function recordRunHistory(adapter: Adapter, metaSchema: string, run: RunResults): Promise<void> {
  await migrateMeta(adapter, metaSchema);
  const rows = run.results.map(
    (r): NodeRunRow => ({
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
      finished_at: run.finished_at,
    }),
  );
  await insertRows(adapter, metaSchema, NODE_RUNS, rows);
}

export interface HistoryRecord {
  run_id: string;
  tenant: string | null;
  node: string;
  model: string;
  status: string;
  duration_ms: number;
  finished_at: string;
}

/** Run history of the `days` before the clock's now, for prediction (empty before the first run). */
export async function readRunHistory(adapter: Adapter, metaSchema: string, clock: Clock, days = 30): Promise<HistoryRecord[]> {
  if (!(await adapter.describe(metaSchema, NODE_RUNS.name))) return [];
  const { rows } = await adapter.query(
    `SELECT run_id, tenant, node, model, status, duration_ms, CAST(finished_at AS VARCHAR) AS finished_at
       FROM ${quoteRelation(metaSchema, NODE_RUNS.name)}
      WHERE kind = 'build' AND finished_at > CAST($1 AS TIMESTAMPTZ) AND finished_at <= CAST($2 AS TIMESTAMPTZ)`,
    // Bounded on both sides: rows after the clock's now are not history at that instant.
    [isoBefore(clock, days * 86_400_000), clock.now().toISOString()],
  );
  return rows.map((r) => ({
    run_id: String(r.run_id),
    tenant: r.tenant === null ? null : String(r.tenant),
    node: String(r.node),
    model: String(r.model),
    status: String(r.status),
    duration_ms: Number(r.duration_ms),
    finished_at: String(r.finished_at),
  }));
}

export interface TenantStateRecord {
  tenant: string;
  loadedThrough: string;
  lastSuccessAt: string;
  runId: string;
}

/** Each practice's loaded-through date and last success. */
export async function readTenantState(adapter: Adapter, metaSchema: string): Promise<Map<string, { loadedThrough: string; lastSuccessAt: string }>> {
  if (!(await adapter.describe(metaSchema, TENANT_STATE.name))) return new Map();
  const { rows } = await adapter.query(
    `SELECT tenant, CAST(loaded_through AS VARCHAR) AS loaded_through, CAST(last_success_at AS VARCHAR) AS last_success_at FROM ${quoteRelation(metaSchema, TENANT_STATE.name)}`,
  );
  return new Map(rows.map((r) => [String(r.tenant), { loadedThrough: String(r.loaded_through), lastSuccessAt: new Date(String(r.last_success_at).replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString() }]));
}

/** Records the practices a full run brought up to date (one statement per table, bound arrays). */
export async function writeTenantState(adapter: Adapter, metaSchema: string, records: readonly TenantStateRecord[]): Promise<void> {
  if (records.length === 0) return;
  await migrateMeta(adapter, metaSchema);
  const table = quoteRelation(metaSchema, TENANT_STATE.name);
  await adapter.transaction(async (s) => {
    await s.query(`DELETE FROM ${table} WHERE tenant = ANY($1::VARCHAR[])`, [records.map((r) => r.tenant)]);
    await s.query(
      `INSERT INTO ${table} (tenant, loaded_through, last_success_at, last_run_id)
       SELECT t, CAST(d AS DATE), CAST(a AS TIMESTAMPTZ), r
         FROM (SELECT unnest($1::VARCHAR[]) AS t, unnest($2::VARCHAR[]) AS d, unnest($3::VARCHAR[]) AS a, unnest($4::VARCHAR[]) AS r) AS u`,
      [records.map((r) => r.tenant), records.map((r) => r.loadedThrough), records.map((r) => r.lastSuccessAt), records.map((r) => r.runId)],
    );
  });
}

/** Every model this warehouse has a successful build of on record, by name (purge: which leftover tables are tsform's). */
export async function modelsEverBuilt(adapter: Adapter, metaSchema: string): Promise<Set<string>> {
  if (!(await adapter.describe(metaSchema, NODE_RUNS.name))) return new Set();
  const { rows } = await adapter.query(`SELECT DISTINCT model FROM ${quoteRelation(metaSchema, NODE_RUNS.name)} WHERE kind = 'build' AND status = 'success'`);
  return new Set(rows.map((r) => String(r.model)));
}
