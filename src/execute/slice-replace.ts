import type { Session, SqlParam } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { createTenantTable } from '../warehouse/tenant-table.ts';

export const STAGE_TABLE = '__tsf_stage';

export interface Target {
  schema: string;
  identifier: string;
  /** Node id, for messages. */
  name: string;
}

/** Rows written per practice (`null` key: a relation without practices). */
export type RowsByTenant = Map<string | null, number>;

/**
 * Stages `select` into a temporary table, checks that every row carries one of the bound
 * practice ids, and returns the per-practice row counts. Nothing in the target changes here.
 */
export async function stageTenantRows(
  s: Session,
  target: Target,
  select: string,
  tenants: readonly string[],
  tenantColumn: string,
): Promise<{ columns: string[]; rows: RowsByTenant }> {
  // A model that reads no tenant-scoped input has no `$1`; its rows are still checked below.
  const params: SqlParam[] = /\$1\b/.test(select) ? [[...tenants]] : [];
  await s.createTempTableAs(STAGE_TABLE, select, params);
  const probe = await s.query(`SELECT * FROM ${quoteIdent(STAGE_TABLE)} LIMIT 0`);
  if (!probe.columns.includes(tenantColumn)) {
    throw new TsformError(Codes.tenantLeak, `${target.name}: a tenant-scoped model must output the tenant column '${tenantColumn}'`);
  }
  const counts = await s.query(
    `SELECT ${quoteIdent(tenantColumn)} AS tenant, count(*) AS n FROM ${quoteIdent(STAGE_TABLE)} GROUP BY 1`,
  );
  const bound = new Set(tenants);
  const rows: RowsByTenant = new Map(tenants.map((t) => [t, 0]));
  const foreign: { id: string | null; n: number }[] = [];
  for (const r of counts.rows) {
    const id = r.tenant === null ? null : String(r.tenant);
    const n = Number(r.n);
    if (id !== null && bound.has(id)) rows.set(id, n);
    else foreign.push({ id, n });
  }
  if (foreign.length > 0) {
    const total = foreign.reduce((a, f) => a + f.n, 0);
    const shown = foreign
      .slice(0, 5)
      .map((f) => (f.id === null ? `NULL (${f.n})` : `${JSON.stringify(f.id)} (${f.n})`))
      .join(', ');
    throw new TsformError(
      Codes.tenantLeak,
      `${target.name}: refused to write ${total} row(s) whose ${tenantColumn} was not bound for this run: ${shown}. A tenant-scoped model must only read its practice's rows (use ref/source, not schema-qualified names).`,
    );
  }
  return { columns: probe.columns, rows };
}

/**
 * Makes sure the target exists with the staged columns. A changed column list is an error (the
 * other practices' slices were built with the old one) unless the table is being rebuilt whole.
 * `partitionBy` (a tenant-scoped table's tenant column) partitions a new table by practice
 * where the target is configured to (warehouse/tenant-table.ts).
 */
export async function ensureTargetTable(
  s: Session,
  target: Target,
  columns: string[],
  existing: string[] | undefined,
  rebuild: boolean,
  partitionBy?: string,
): Promise<void> {
  const rel = quoteRelation(target.schema, target.identifier);
  if (existing && rebuild) {
    await s.query(`DROP TABLE ${rel}`);
    existing = undefined;
  }
  if (!existing && partitionBy !== undefined) {
    await createTenantTable(s, target.schema, target.identifier, STAGE_TABLE, partitionBy);
    return;
  }
  if (!existing) {
    // IF NOT EXISTS: another batch of the same model may have created it since we looked.
    await s.query(`CREATE TABLE IF NOT EXISTS ${rel} AS SELECT * FROM ${quoteIdent(STAGE_TABLE)} LIMIT 0`);
    return;
  }
  const same = existing.length === columns.length && existing.every((c, i) => c === columns[i]);
  if (!same) {
    const added = columns.filter((c) => !existing!.includes(c));
    const removed = existing.filter((c) => !columns.includes(c));
    throw new TsformError(
      Codes.schemaChanged,
      `${target.name}: columns changed (added: ${added.join(', ') || '-'}; removed: ${removed.join(', ') || '-'}; or reordered). Run with --full-refresh for every practice to rebuild it.`,
    );
  }
  const retyped = await s.columnTypeChanges(target.schema, target.identifier, STAGE_TABLE);
  if (retyped.length > 0) {
    throw new TsformError(
      Codes.schemaChanged,
      `${target.name}: column type changed (${retyped.map((c) => `${c.column}: ${c.from} → ${c.to}`).join('; ')}); nothing was written, as the table's type would cast the new values. Run with --full-refresh for every practice to rebuild it.`,
    );
  }
}

/** Replaces exactly the bound practices' slice with the staged rows. */
export async function replaceSlice(s: Session, target: Target, columns: string[], tenants: readonly string[], tenantColumn: string): Promise<void> {
  const rel = quoteRelation(target.schema, target.identifier);
  const cols = columns.map(quoteIdent).join(', ');
  await s.query(`DELETE FROM ${rel} WHERE ${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[])`, [[...tenants]]);
  await s.query(`INSERT INTO ${rel} (${cols}) SELECT ${cols} FROM ${quoteIdent(STAGE_TABLE)}`);
}

/**
 * The columns a merge matches rows on (and unique-key.ts checks are a key of the staged rows).
 * Within a slice the key is matched per practice: an id two practices share is two rows (the
 * OLTP's key is (practice, id)), and one practice's row never replaces another's.
 */
export function mergeKeyColumns(uniqueKey: readonly string[], inSlice: boolean, tenantColumn: string): string[] {
  return inSlice && !uniqueKey.includes(tenantColumn) ? [tenantColumn, ...uniqueKey] : [...uniqueKey];
}

/** Incremental merge within the bound slice: staged rows replace rows with the same key. */
export async function mergeSlice(
  s: Session,
  target: Target,
  columns: string[],
  uniqueKey: string[],
  tenants: readonly string[] | undefined,
  tenantColumn: string,
): Promise<void> {
  const rel = quoteRelation(target.schema, target.identifier);
  const cols = columns.map(quoteIdent).join(', ');
  const keyColumns = mergeKeyColumns(uniqueKey, tenants !== undefined, tenantColumn);
  const match = keyColumns.map((k) => `st.${quoteIdent(k)} = ${rel}.${quoteIdent(k)}`).join(' AND ');
  const slice = tenants ? `${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[]) AND ` : '';
  await s.query(
    `DELETE FROM ${rel} WHERE ${slice}EXISTS (SELECT 1 FROM ${quoteIdent(STAGE_TABLE)} AS st WHERE ${match})`,
    tenants ? [[...tenants]] : [],
  );
  await s.query(`INSERT INTO ${rel} (${cols}) SELECT ${cols} FROM ${quoteIdent(STAGE_TABLE)}`);
}

export async function dropStage(s: Session): Promise<void> {
  await s.query(`DROP TABLE IF EXISTS ${quoteIdent(STAGE_TABLE)}`);
}
