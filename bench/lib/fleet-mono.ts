import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { Workspace } from '../../src/cli/api.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';

/**
 * The monolithic baseline: each tenant-scoped table model once over every practice, as one
 * `CREATE OR REPLACE TABLE … AS <compiled SQL>` per model in DAG order, with the tenant filter
 * that tsform binds (`"practice_id" = ANY($1::VARCHAR[])`) replaced by TRUE. It runs in its own
 * copy of the warehouse, where the staging relations are replaced in place, so the compiled
 * refs read the monolithic upstream tables. Same adapter, DuckDB settings and thread count as
 * the tsform run.
 */

export interface MonoStatement {
  id: string;
  schema: string;
  identifier: string;
  sql: string;
}

export function monolithicStatements(ws: Workspace): MonoStatement[] {
  const tenantFilter = `${quoteIdent(ws.manifest.tenant_column)} = ANY($1::VARCHAR[])`;
  const out: MonoStatement[] = [];
  for (const id of ws.dag.order) {
    const node = ws.manifest.models[id];
    if (!node || node.scope !== 'tenant' || node.materialized === 'ephemeral' || node.materialized === 'view') continue;
    const compiled = node.compiled_sql ?? '';
    if (!compiled.includes(tenantFilter)) throw new Error(`${id}: compiled SQL has no tenant filter ${tenantFilter} to remove`);
    const sql = compiled.split(tenantFilter).join('TRUE');
    if (/\$\d+\b/.test(sql)) throw new Error(`${id}: monolithic SQL still has a bound parameter`);
    out.push({ id, schema: node.schema, identifier: node.identifier, sql });
  }
  return out;
}

export interface MonoRun {
  seconds: number;
  /** CPU seconds of this process (DuckDB runs in it). */
  cpuSeconds: number;
  perModel: Record<string, number>;
}

/** Opens the warehouse, runs every statement (autocommit, as a CTAS would be run), closes it. */
export async function runMonolithic(
  path: string,
  statements: readonly MonoStatement[],
  opts: { threads: number; setup?: string[]; attachReadOnly?: Record<string, string> },
): Promise<MonoRun> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // Attached at open: the adapter switches DuckDB's external access off once its files are attached.
  const adapter = await DuckDBAdapter.open({ path, connections: opts.threads, attachReadOnly: opts.attachReadOnly });
  const perModel: Record<string, number> = {};
  try {
    for (const sql of opts.setup ?? []) await adapter.query(sql);
    const schemas = new Set(statements.map((s) => s.schema));
    for (const schema of schemas) await adapter.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    for (const st of statements) {
      const s0 = performance.now();
      await adapter.query(`CREATE OR REPLACE TABLE ${quoteRelation(st.schema, st.identifier)} AS\n${st.sql}`);
      perModel[st.id] = (performance.now() - s0) / 1000;
    }
  } finally {
    await adapter.close();
  }
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, perModel };
}
