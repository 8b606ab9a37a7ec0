import type { Adapter, SqlParam } from '../adapters/adapter.ts';
import { CAPTURE_LOCKS } from '../warehouse/meta-schema.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { shapeOf, type RawState, type ResolvedSpec, type SourceShape } from './capture-chunk.ts';
import type { OltpSource } from './oltp-source.ts';
import { planDrift, type SourceColumn } from './source-columns.ts';
import { readWatermarks, STEADY, type Watermark } from './watermarks.ts';

/**
 * What the OLTP holds for a batch of practices of one table, asked in one query for the whole
 * batch: a practice with nothing after its watermark below the commit horizon has nothing a
 * chunk could read, so its extract can end without a chunk of its own.
 */
export interface BatchCheck {
  /** Rows after each practice's watermark below the horizon, counted up to `cap + 1`. */
  pending: Map<string, number>;
  /** The practices' steady watermarks as the check used them. */
  watermarks: ReadonlyMap<string, Watermark>;
  /** The commit horizon the pending rows were counted below. */
  horizon: string;
  /** Practices with a committed chunk of this table (an empty one counts): onboarding no longer. */
  captured: ReadonlySet<string>;
  /**
   * The source's columns differ from raw's (added, dropped, retyped): nothing is skipped, so
   * every practice's chunk adds the columns, fills them or fails on them as it always did.
   */
  drift: boolean;
}

/** The table's capture state in the warehouse, read once per run for all its practices. */
export interface CaptureState {
  watermarks: ReadonlyMap<string, Watermark>;
  captured: ReadonlySet<string>;
}

/**
 * Steady watermarks and captured practices of one table. Read once per run: only the run that
 * holds a practice's lock writes its steady watermark, and each practice's batch is checked
 * before any of its extracts of the table ran.
 */
export async function readCaptureState(wh: Adapter, metaSchema: string, spec: ResolvedSpec, tenants: readonly string[]): Promise<CaptureState> {
  const watermarks = await readWatermarks(wh, metaSchema, spec.label, STEADY, tenants);
  const locks = await wh.query(
    `SELECT tenant FROM ${quoteRelation(metaSchema, CAPTURE_LOCKS.name)} WHERE source_table = $1 AND chunks > 0 AND tenant = ANY($2::VARCHAR[])`,
    [spec.label, [...tenants]],
  );
  return { watermarks, captured: new Set(locks.rows.map((r) => String(r.tenant))) };
}

/**
 * Skipping a practice the check found empty is exact: rows below the horizon are committed for
 * good (readCommitHorizon: `horizon` must have been read before this check's snapshot), so the
 * chunk skipped now would have read nothing, and skipping writes nothing (no watermark moves).
 * Whatever arrives later is above the horizon and waits for the next capture, as it would have
 * after an empty chunk. What the OLTP never shows through updated_at (a hard delete, an update
 * that leaves it alone) is missed either way; a row that moved to another practice bumps its
 * updated_at there, so that practice is not skipped and its chunk removes the old practice's
 * copy (moved-rows.ts). `source` is the table's columns as this run read them: a column added
 * since waits for the next run's check, or for a practice that has rows.
 */
export async function checkBatch(
  oltp: OltpSource,
  spec: ResolvedSpec,
  source: readonly SourceColumn[],
  raw: RawState,
  state: CaptureState,
  tenants: readonly string[],
  opts: { horizon: string; cap: number },
): Promise<BatchCheck> {
  const base = { watermarks: state.watermarks, captured: state.captured, horizon: opts.horizon };
  if (tenants.length === 0) return { ...base, pending: new Map(), drift: false };
  const shape = shapeOf(spec, source);
  if (drifted(spec, shape, raw)) return { ...base, pending: new Map(), drift: true };
  const { sql, params } = pendingQuery(spec, shape, tenants, state.watermarks, opts.horizon, opts.cap);
  const { rows } = await oltp.query(sql, params);
  return { ...base, pending: new Map(rows.map((row) => [String(row.tenant), Number(row.n)])), drift: false };
}

function drifted(spec: ResolvedSpec, shape: SourceShape, raw: RawState): boolean {
  try {
    return planDrift(spec.label, shape.columns, raw.columns).add.length > 0;
  } catch {
    return true;
  }
}

/**
 * Per practice, its rows after its watermark (keyset order, as a chunk reads them) and below the
 * horizon, up to cap + 1 of them: an index range scan per practice on (practice, updated_at, key).
 * Practices without a watermark are asked for any row below the horizon.
 */
function pendingQuery(
  spec: ResolvedSpec,
  shape: SourceShape,
  tenants: readonly string[],
  watermarks: ReadonlyMap<string, { updatedAt: string; key: string[] }>,
  horizon: string,
  cap: number,
): { sql: string; params: SqlParam[] } {
  const rel = shape.rel;
  const tc = quoteIdent(spec.tenantColumn);
  const upd = shape.order[0]!;
  const limit = Math.max(0, Math.floor(cap)) + 1;
  const params: SqlParam[] = [];
  const bind = (v: SqlParam): string => {
    params.push(v);
    return `$${params.length}`;
  };
  // The horizon is a timestamptz: compared only with a timestamptz column, as bindChunkSelect does.
  const below = upd.sourceType === 'timestamp with time zone' ? ` AND t.${quoteIdent(upd.name)} < CAST(${bind(horizon)} AS timestamptz)` : '';
  const count = (after: string) => `(SELECT count(*) FROM (SELECT 1 FROM ${rel} AS t WHERE t.${tc} = w.p${after}${below} LIMIT ${limit}) AS x)`;
  const parts: string[] = [];
  const known = tenants.filter((t) => watermarks.has(t));
  if (known.length > 0) {
    const cols = ['p', 'ts', ...spec.key.map((_, i) => `k${i}`)];
    const arrays = [known, known.map((t) => watermarks.get(t)!.updatedAt), ...spec.key.map((_, i) => known.map((t) => watermarks.get(t)!.key[i]!))];
    const unnest = `unnest(${arrays.map((a) => `${bind(a)}::text[]`).join(', ')}) AS w(${cols.join(', ')})`;
    const bounds = shape.order.map((c, i) => `CAST(w.${i === 0 ? 'ts' : `k${i - 1}`} AS ${safeType(c.sourceType)})`);
    const after = ` AND (${shape.order.map((c) => `t.${quoteIdent(c.name)}`).join(', ')}) > (${bounds.join(', ')})`;
    parts.push(`SELECT w.p AS tenant, ${count(after)} AS n FROM ${unnest}`);
  }
  const fresh = tenants.filter((t) => !watermarks.has(t));
  if (fresh.length > 0) parts.push(`SELECT w.p AS tenant, ${count('')} AS n FROM unnest(${bind(fresh)}::text[]) AS w(p)`);
  return { sql: parts.join(' UNION ALL '), params };
}
