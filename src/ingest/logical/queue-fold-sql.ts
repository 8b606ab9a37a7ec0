import type { ColumnInfo } from '../../adapters/adapter.ts';
import type { FoldDialect } from '../../adapters/fold-dialect.ts';
import { LOGICAL_QUEUE } from '../../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { canonicalType } from '../source-columns.ts';

/** One row per touched key: its final operation and, for an upsert, raw's row as it will be. */
export const FOLD_TABLE = '__tsf_lq_fold';

/**
 * The statements of one apply (apply-queue.ts runs them in one warehouse transaction), rendered
 * once per raw table shape; each names its parameters (PostgreSQL refuses an unused one).
 *
 * The fold is set-based: the queue's JSON rows are read by the engine, not by JavaScript. Per key,
 * in commit order: everything before a practice's last TRUNCATE is dropped; the final operation
 * is the last one's; an upsert's columns come from the last upsert after the key's last delete
 * that carries them (pgoutput leaves an unchanged TOASTed value out), else from raw's row
 * unless the key was deleted (or truncated) first, else NULL.
 */
export interface FoldStatements {
  /**
   * The last of the first `batchRows` queue rows of the practices in commit order (lsn, seq) and
   * how many there are: $1 source table label, $2 the practices (VARCHAR[]), $3 the highest LSN sort key to take.
   */
  cutoff: string;
  /** SELECT for FOLD_TABLE from the practices' queue rows up to a position: $1, $2 as `cutoff`, $3 lsn and $4 seq of the last row taken. */
  fold: string;
  /** Per practice: changes, truncated, upserted, deleted, final rows carrying a column raw lacks ($1–$4 as `fold`). */
  stats: string;
  /** Removes from raw every touched key raw holds: $1 the practices. */
  deleteRaw: string;
  /** Writes the upserted keys' final rows. */
  insertRaw: string;
  /** Removes the rows taken from the queue ($1–$4 as `fold`). */
  deleteQueue: string;
  /** Positions (`lsn`, `seq`) of the rows taken, per practice, for tests' audit hooks ($1–$4). */
  positions: string;
  /** The JSON rows taken, to name a column raw lacks ($1–$4). */
  otherRows: string;
  /** Column names of raw as the fold was rendered for them. */
  rawColumns: readonly string[];
}

export function renderFold(d: FoldDialect, spec: ResolvedSpec, metaSchema: string, raw: readonly ColumnInfo[], batchRows: number): FoldStatements {
  const queue = quoteRelation(metaSchema, LOGICAL_QUEUE.name);
  const rawRel = quoteRelation(spec.rawSchema, spec.table);
  const fold = quoteIdent(FOLD_TABLE);
  const typeOf = new Map(raw.map((c) => [c.name, canonicalType(c.type)]));
  const cast = (expr: string, col: string): string => (typeOf.get(col) === 'VARCHAR' ? expr : d.cast(expr, typeOf.get(col)!, col));
  const tc = spec.tenantColumn;
  // Carried columns: every raw column but the practice and the key, which come from the queue row itself.
  const carried = raw.map((c) => c.name).filter((n) => n !== tc && !spec.key.includes(n));
  const keyTyped = spec.key.map((k, i) => cast(`f.k${i}`, k));
  const valueOf = (c: string): string => {
    if (c === tc) return cast('f.t', tc);
    const k = spec.key.indexOf(c);
    if (k >= 0) return keyTyped[k]!;
    const i = carried.indexOf(c);
    // the last change's value; else the last one carried since the key's last delete (an unchanged
    // TOASTed value); else raw's, unless the key was deleted (or truncated) first
    return `CASE WHEN f.p${i} THEN ${cast(`f.v${i}`, c)} WHEN e.at${i} IS NOT NULL THEN ${cast(`e.v${i}`, c)} WHEN f.fresh THEN NULL ELSE r.${quoteIdent(c)} END`;
  };
  const mine = `source_table = $1 AND tenant = ANY($2::VARCHAR[])`;
  const taken = `${mine} AND (lsn < $3 OR (lsn = $3 AND seq <= $4))`;
  const allPresent = carried.length === 0 ? 'true' : carried.map((c, i) => `p${i}`).join(' AND ');
  // Most keys need only their last change: it is found by position (grouping keeps two numbers per
  // key), and only its JSON is read. One row per key even if a change is in the queue twice (same
  // table, lsn and seq: on DuckDB the same position), or raw would get the key twice. Keys whose last upsert lacks a column read their earlier
  // upserts (since the last delete) for it, a second, usually empty, pass.
  const foldSql = `WITH b AS (
  SELECT tenant, op, key_json, row_json, ${d.position} AS pos FROM ${queue} WHERE ${taken}
), tr AS (
  SELECT tenant, max(pos) AS tpos FROM b WHERE op = 'truncate' GROUP BY tenant
), live AS (
  SELECT b.*, tr.tpos IS NOT NULL AS truncated FROM b LEFT JOIN tr ON tr.tenant = b.tenant WHERE b.op <> 'truncate' AND b.pos > coalesce(tr.tpos, -1)
), g AS (
  SELECT tenant AS t, key_json, max(pos) AS last_pos, coalesce(max(pos) FILTER (WHERE op = 'delete'), -1) AS del_pos, bool_or(truncated) AS truncated
    FROM live GROUP BY tenant, key_json
), l AS (
  SELECT DISTINCT ON (g.t, g.key_json) g.*, x.op, ${d.parsedRow()} AS j FROM g JOIN live AS x ON x.pos = g.last_pos
), f AS (
  SELECT t, key_json, op, del_pos, truncated, ${d.carriesOther(raw.map((c) => c.name))} AS other, truncated OR del_pos >= 0 AS fresh, ${spec.key.map((_, i) => `${d.keyPart(i)} AS k${i}`).join(', ')}${carried
    .map((c, i) => `, ${d.present(c)} AS p${i}, ${d.value(c)} AS v${i}`)
    .join('')}
    FROM l
), partial AS (
  SELECT t, key_json, del_pos FROM f WHERE op = 'upsert' AND NOT (${allPresent})
), e AS (
  SELECT t, key_json${carried.map((c, i) => `, max(pos) FILTER (WHERE ${d.present(c)}) AS at${i}, ${d.last(d.value(c), d.present(c))} AS v${i}`).join('')}
    FROM (SELECT p.t, p.key_json, x.pos, ${d.parsedRow()} AS j FROM partial AS p JOIN live AS x ON x.tenant = p.t AND x.key_json = p.key_json AND x.op = 'upsert' AND x.pos > p.del_pos) AS y
   GROUP BY t, key_json
)
SELECT f.t, f.op, f.fresh, f.other, r.${quoteIdent(tc)} IS NOT NULL AND NOT f.truncated AS in_raw${raw.map((c, i) => `, ${valueOf(c.name)} AS c${i}`).join('')}
  FROM f LEFT JOIN e ON e.t = f.t AND e.key_json = f.key_json
  LEFT JOIN ${rawRel} AS r
    ON r.${quoteIdent(tc)} = ANY($2::VARCHAR[]) AND r.${quoteIdent(tc)} = ${cast('f.t', tc)}${spec.key.map((k, i) => ` AND r.${quoteIdent(k)} = ${keyTyped[i]!}`).join('')}`;
  const ti = raw.findIndex((c) => c.name === tc);
  const ki = spec.key.map((k) => raw.findIndex((c) => c.name === k));
  return {
    cutoff: `SELECT lsn, seq, n FROM (SELECT lsn, seq, count(*) OVER () AS n FROM (SELECT lsn, seq FROM ${queue} WHERE ${mine} AND lsn <= $3 ORDER BY lsn, seq LIMIT ${Math.max(1, Math.floor(batchRows))}) AS p) AS q ORDER BY lsn DESC, seq DESC LIMIT 1`,
    fold: foldSql,
    stats: `SELECT t, sum(changes) AS changes, bool_or(truncated) AS truncated, sum(upserted) AS upserted, sum(deleted) AS deleted, sum(other) AS other FROM (
  SELECT tenant AS t, count(*) AS changes, bool_or(op = 'truncate') AS truncated, 0 AS upserted, 0 AS deleted, 0 AS other FROM ${queue} WHERE ${taken} GROUP BY tenant
  UNION ALL
  SELECT t, 0, false, count(*) FILTER (WHERE op = 'upsert'), count(*) FILTER (WHERE in_raw AND (op = 'delete' OR fresh)), count(*) FILTER (WHERE other) FROM ${fold} GROUP BY t
) AS x GROUP BY t`,
    deleteRaw: `DELETE FROM ${rawRel} USING ${fold} AS f
 WHERE f.in_raw AND ${rawRel}.${quoteIdent(tc)} = ANY($1::VARCHAR[]) AND ${rawRel}.${quoteIdent(tc)} = f.c${ti}${ki.map((i, j) => ` AND ${rawRel}.${quoteIdent(spec.key[j]!)} = f.c${i}`).join('')}`,
    insertRaw: `INSERT INTO ${rawRel} (${raw.map((c) => quoteIdent(c.name)).join(', ')}) SELECT ${raw.map((_, i) => `c${i}`).join(', ')} FROM ${fold} WHERE op = 'upsert'`,
    deleteQueue: `DELETE FROM ${queue} WHERE ${taken}`,
    positions: `SELECT tenant, lsn, seq FROM ${queue} WHERE ${taken} ORDER BY tenant, lsn, seq`,
    otherRows: `SELECT row_json FROM ${queue} WHERE ${taken} AND row_json IS NOT NULL`,
    rawColumns: raw.map((c) => c.name),
  };
}
