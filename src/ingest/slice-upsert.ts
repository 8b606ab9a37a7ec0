import type { Session, SqlParam } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { SourceColumn } from './source-columns.ts';

/**
 * Where a chunk's rows wait before they go into raw: a relation (or table function) with the
 * source's column names. `typed`: its columns already have raw's types; otherwise they are text
 * and are cast on the way.
 */
export interface ChunkRows {
  /** SQL of the relation, e.g. `pg_temp."x"` or `read_csv($2, ...)`; it may use bound parameters from $2 on. */
  from: string;
  params: readonly SqlParam[];
  typed: boolean;
}

function castFrom(columns: readonly SourceColumn[], typed: boolean): (col: string) => string {
  const typeOf = new Map(columns.map((c) => [c.name, c.rawType]));
  return (col) => {
    const t = typeOf.get(col) ?? 'VARCHAR';
    return t === 'VARCHAR' || typed ? `l.${quoteIdent(col)}` : `CAST(l.${quoteIdent(col)} AS ${t})`;
  };
}

/**
 * The practices a chunk's rows belong to: one practice (its own chunk), or a batch captured
 * together (group-capture.ts). Every row of the chunk carries one of them.
 */
export type ChunkTenants = string | readonly string[];

/** `= $n` for one practice, `= ANY($n)` for several, and the parameter. */
function tenantIn(tenants: ChunkTenants, n: number): { sql: string; param: SqlParam } {
  return typeof tenants === 'string' ? { sql: `= $${n}`, param: tenants } : { sql: `= ANY($${n}::VARCHAR[])`, param: [...tenants] };
}

/** Rows of the practice's slice of raw. */
export async function countSliceRows(q: Pick<Session, 'query'>, spec: ResolvedSpec, tenant: string): Promise<number> {
  const r = await q.query(`SELECT count(*) AS n FROM ${quoteRelation(spec.rawSchema, spec.table)} WHERE ${quoteIdent(spec.tenantColumn)} = $1`, [tenant]);
  return Number(r.rows[0]!.n);
}

/**
 * Deletes from the practices' slices of raw every row whose (practice, key) is in `keys` (live
 * and soft-deleted rows of the chunk alike). A join, not a correlated EXISTS: DuckDB runs the
 * EXISTS form several times slower.
 */
export async function deleteChunkKeys(s: Session, spec: ResolvedSpec, tenants: ChunkTenants, columns: readonly SourceColumn[], keys: ChunkRows): Promise<number> {
  const target = quoteRelation(spec.rawSchema, spec.table);
  const cast = castFrom(columns, keys.typed);
  const tc = quoteIdent(spec.tenantColumn);
  const match = [spec.tenantColumn, ...spec.key].map((k) => `${cast(k)} = ${target}.${quoteIdent(k)}`).join(' AND ');
  const t = tenantIn(tenants, 1);
  const r = await s.query(`DELETE FROM ${target} USING ${keys.from} AS l WHERE ${target}.${tc} ${t.sql} AND ${match}`, [t.param, ...keys.params]);
  return r.rowsChanged;
}

/** Inserts the chunk's live rows (typed) into raw; soft-deleted rows only deleted. Returns the rows inserted. */
export async function insertLiveRows(s: Session, spec: ResolvedSpec, tenants: ChunkTenants, columns: readonly SourceColumn[], rows: ChunkRows): Promise<number> {
  const target = quoteRelation(spec.rawSchema, spec.table);
  const cast = castFrom(columns, rows.typed);
  const t = tenantIn(tenants, 1);
  const live = columns.filter((c) => c.name !== spec.deletedColumn);
  const hasDeleted = columns.some((c) => c.name === spec.deletedColumn);
  const insert = await s.query(
    `INSERT INTO ${target} (${live.map((c) => quoteIdent(c.name)).join(', ')})
     SELECT ${live.map((c) => cast(c.name)).join(', ')} FROM ${rows.from} AS l
      WHERE l.${quoteIdent(spec.tenantColumn)} ${t.sql}${hasDeleted ? ` AND l.${quoteIdent(spec.deletedColumn)} IS NULL` : ''}`,
    [t.param, ...rows.params],
  );
  return insert.rowsChanged;
}

/** A row of another practice's slice that has the key of a row just captured. */
export interface HeldElsewhere {
  tenant: string;
  /** The key values as text, in spec.key order. */
  key: string[];
}

/**
 * Rows of other practices' slices with the key of one of the chunk's rows. The OLTP keys rows by
 * (practice, id): such a row is either the same id at another practice, or a row that moved here
 * and is stale there; moved-rows.ts asks the OLTP which. Soft-deleted rows count too: a row that
 * moved here and was deleted before this practice captured it arrives only as a deletion, and is
 * the last chance to remove the old practice's copy.
 */
export async function keysHeldElsewhere(s: Session, spec: ResolvedSpec, tenants: ChunkTenants, columns: readonly SourceColumn[], keys: ChunkRows): Promise<HeldElsewhere[]> {
  const target = quoteRelation(spec.rawSchema, spec.table);
  const cast = castFrom(columns, keys.typed);
  const match = spec.key.map((k) => `${cast(k)} = t.${quoteIdent(k)}`).join(' AND ');
  const t = tenantIn(tenants, 1);
  const { rows } = await s.query(
    `SELECT DISTINCT CAST(t.${quoteIdent(spec.tenantColumn)} AS VARCHAR) AS __tsf_tenant, ${spec.key.map((k, i) => `CAST(t.${quoteIdent(k)} AS VARCHAR) AS __tsf_k${i}`).join(', ')}
       FROM ${target} AS t JOIN ${keys.from} AS l ON ${match}
      WHERE ${cast(spec.tenantColumn)} ${t.sql} AND t.${quoteIdent(spec.tenantColumn)} <> ${cast(spec.tenantColumn)}`,
    [t.param, ...keys.params],
  );
  return rows.map((r) => ({ tenant: String(r.__tsf_tenant), key: spec.key.map((_, i) => String(r[`__tsf_k${i}`])) }));
}
