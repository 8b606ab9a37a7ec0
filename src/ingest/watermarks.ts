import type { Adapter, Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { CAPTURE_LOCKS, CAPTURE_WATERMARKS } from '../warehouse/meta-schema.ts';
import { insertRows } from '../warehouse/table-def.ts';
import { quoteRelation } from '../sql/quote.ts';

const WATERMARK_TABLE = CAPTURE_WATERMARKS.name;
const LOCK_TABLE = CAPTURE_LOCKS.name;

/** The steady stream; a backfill keeps its own rows under `backfill:<from>|<to>`. */
export const STEADY = 'steady';

/**
 * Position up to which one (source table, practice, stream) has been captured: the last row's
 * `updated_at` exactly as the OLTP printed it, and its key values. Rows are read in
 * `(updated_at, key)` order, so everything at or before this position is in raw.
 */
export interface Watermark {
  updatedAt: string;
  key: string[];
}

/**
 * A chunk's position: its last row's values at `positionIndexes` (the updated column, then the
 * key columns), as the OLTP printed them.
 */
export function positionOf(src: { spec: { label: string }; positionIndexes: readonly number[] }, row: readonly (string | null)[]): Watermark {
  const values = src.positionIndexes.map((i) => row[i]);
  if (values.some((v) => v === null || v === undefined)) {
    throw new TsformError(Codes.sqlError, `capture ${src.spec.label}: the updated column or a key column is NULL in the source; capture needs them set`);
  }
  const [updatedAt, ...key] = values as string[];
  return { updatedAt: updatedAt!, key };
}

/**
 * The `tenant` of a position that belongs to a whole table, not to one practice (move-sweep.ts):
 * no practice id can be it (tenants.yml ids are lower-case letters, digits and underscores).
 */
export const TABLE_WIDE = '*';

export async function ensureLockRows(s: Session, metaSchema: string, table: string, tenants: readonly string[]): Promise<void> {
  const rel = quoteRelation(metaSchema, LOCK_TABLE);
  await s.query(
    `INSERT INTO ${rel} (source_table, tenant, chunks)
     SELECT CAST($1 AS VARCHAR), u.t, 0 FROM unnest($2::VARCHAR[]) AS u(t)
      WHERE NOT EXISTS (SELECT 1 FROM ${rel} AS l WHERE l.source_table = CAST($1 AS VARCHAR) AND l.tenant = u.t)`,
    [table, [...tenants]],
  );
}

/** Takes the practice's capture lock for the rest of the transaction (a row lock / write conflict). */
export async function lockTenant(s: Session, metaSchema: string, table: string, tenant: string): Promise<void> {
  const r = await s.query(
    `UPDATE ${quoteRelation(metaSchema, LOCK_TABLE)} SET chunks = chunks + 1 WHERE source_table = $1 AND tenant = $2`,
    [table, tenant],
  );
  if (r.rowsChanged === 0) {
    await insertRows(s, metaSchema, CAPTURE_LOCKS, [{ source_table: table, tenant, chunks: 1 }]);
  }
}

export async function readWatermarks(
  wh: Adapter | Session,
  metaSchema: string,
  table: string,
  stream: string,
  tenants: readonly string[],
): Promise<Map<string, Watermark>> {
  const { rows } = await wh.query(
    `SELECT tenant, updated_at, key_json FROM ${quoteRelation(metaSchema, WATERMARK_TABLE)}
      WHERE source_table = $1 AND stream = $2 AND tenant = ANY($3::VARCHAR[])`,
    [table, stream, [...tenants]],
  );
  return new Map(rows.map((r) => [String(r.tenant), { updatedAt: String(r.updated_at), key: JSON.parse(String(r.key_json)) as string[] }]));
}

/** Replaces the watermark row; call it in the transaction that wrote the rows it covers. */
export async function writeWatermark(s: Session, metaSchema: string, table: string, tenant: string, stream: string, wm: Watermark, rows: number): Promise<void> {
  const rel = quoteRelation(metaSchema, WATERMARK_TABLE);
  const prev = await s.query(
    `DELETE FROM ${rel} WHERE source_table = $1 AND tenant = $2 AND stream = $3 RETURNING rows_captured`,
    [table, tenant, stream],
  );
  const before = Number(prev.rows[0]?.rows_captured ?? 0);
  await s.query(
    `INSERT INTO ${rel} (source_table, tenant, stream, updated_at, key_json, rows_captured, captured_at) VALUES ($1, $2, $3, $4, $5, $6, now())`,
    [table, tenant, stream, wm.updatedAt, JSON.stringify(wm.key), before + rows],
  );
}

export async function deleteWatermark(s: Session, metaSchema: string, table: string, tenant: string, stream: string): Promise<void> {
  await s.query(`DELETE FROM ${quoteRelation(metaSchema, WATERMARK_TABLE)} WHERE source_table = $1 AND tenant = $2 AND stream = $3`, [table, tenant, stream]);
}

/** lockTenant for several practices at once (a batch captured together): one statement when their rows exist (a run creates them first). */
export async function lockTenants(s: Session, metaSchema: string, table: string, tenants: readonly string[]): Promise<void> {
  const lock = () => s.query(`UPDATE ${quoteRelation(metaSchema, LOCK_TABLE)} SET chunks = chunks + 1 WHERE source_table = $1 AND tenant = ANY($2::VARCHAR[])`, [table, [...tenants]]);
  const r = await lock();
  if (r.rowsChanged === new Set(tenants).size) return;
  // a row was missing (the table was prepared for other practices): undo, create the rows, lock them all once
  await s.query(`UPDATE ${quoteRelation(metaSchema, LOCK_TABLE)} SET chunks = chunks - 1 WHERE source_table = $1 AND tenant = ANY($2::VARCHAR[])`, [table, [...tenants]]);
  await ensureLockRows(s, metaSchema, table, tenants);
  await lock();
}

/** writeWatermark for several practices of one stream, in two statements. */
export async function writeWatermarks(s: Session, metaSchema: string, table: string, stream: string, entries: readonly { tenant: string; wm: Watermark; rows: number }[]): Promise<void> {
  if (entries.length === 0) return;
  const rel = quoteRelation(metaSchema, WATERMARK_TABLE);
  const prev = await s.query(
    `DELETE FROM ${rel} WHERE source_table = $1 AND stream = $2 AND tenant = ANY($3::VARCHAR[]) RETURNING tenant, rows_captured`,
    [table, stream, entries.map((e) => e.tenant)],
  );
  const before = new Map(prev.rows.map((r) => [String(r.tenant), Number(r.rows_captured ?? 0)]));
  await s.query(
    `INSERT INTO ${rel} (source_table, tenant, stream, updated_at, key_json, rows_captured, captured_at)
     SELECT CAST($1 AS VARCHAR), u.t, CAST($2 AS VARCHAR), u.ts, u.k, CAST(u.n AS BIGINT), now()
       FROM (SELECT unnest($3::VARCHAR[]) AS t, unnest($4::VARCHAR[]) AS ts, unnest($5::VARCHAR[]) AS k, unnest($6::VARCHAR[]) AS n) AS u`,
    [table, stream, entries.map((e) => e.tenant), entries.map((e) => e.wm.updatedAt), entries.map((e) => JSON.stringify(e.wm.key)), entries.map((e) => String((before.get(e.tenant) ?? 0) + e.rows))],
  );
}
