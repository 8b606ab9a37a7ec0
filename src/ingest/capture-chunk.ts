import type { Adapter, ColumnInfo, Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { loadChunk, type ChunkLoad, type ChunkSource } from './chunk-load.ts';
import { chunkTransaction } from './chunk-transaction.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import { CAPTURE_APPLICATION_NAME, type OltpReadSession, type OltpSource } from './oltp-source.ts';
import { addRawColumns, planDrift, readSourceColumns, type SourceColumn } from './source-columns.ts';
import { type Watermark } from './watermarks.ts';

// The spec and the loader contract live below this file, so the loaders need not import it.
export { resolveSpec, type CaptureSpec, type ResolvedSpec } from './capture-spec.ts';
export type { ChunkLoad, ChunkSource } from './chunk-load.ts';

export interface ChunkRequest {
  tenant: string;
  /** `steady`, or a backfill's own stream name. */
  stream: string;
  after: Watermark | undefined;
  /** Backfill range on the updated column: `from` inclusive, `to` exclusive (ISO dates or timestamps). */
  range?: { from?: string; to?: string };
  chunkRows: number;
  timeoutMs?: number;
  /** Delete the stream's watermark row when this chunk finds the range exhausted (backfill). */
  dropWatermarkWhenDone?: boolean;
}

export interface ChunkResult {
  /** Rows read from the OLTP (live and soft-deleted). */
  read: number;
  /** Live rows written to raw. */
  loaded: number;
  /** Soft-deleted rows seen (their keys are removed from raw). */
  deleted: number;
  /** Position after this chunk (unchanged when nothing was read). */
  watermark: Watermark | undefined;
  /** Fewer rows than a chunk: the practice is caught up (or the range exhausted). */
  done: boolean;
  /** Columns added to raw by this chunk. */
  added: string[];
  /** Added columns that need a backfill (the OLTP filled earlier rows with a default). */
  needsBackfill: string[];
  /** Other practices whose slices lost rows that moved to this one (their models built earlier are stale). */
  movedOutOf: string[];
}

/** Shared state of one table's capture: raw's columns as last seen (refreshed on drift). */
export interface RawState {
  columns: ColumnInfo[];
}

/**
 * Captures the next chunk of one practice in ONE warehouse transaction (chunkTransaction): the
 * practice's lock row, the OLTP read (COPY, at most `chunkRows` rows in (updated_at, key) order after the
 * watermark), the upsert of the rows into raw and the new watermark. Either all of it commits
 * or none of it does, so a crash anywhere re-reads the same chunk and never skips one.
 */
export async function captureChunk(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  req: ChunkRequest,
): Promise<ChunkResult> {
  const { result, movedOutOf } = await chunkTransaction(wh, oltp, spec, metaSchema, raw, { tenants: [req.tenant], stream: req.stream }, async (s) => {
    // Read before the chunk's snapshot: every transaction open then, or begun since, writes
    // updated_at at or after the horizon, so nothing below it can still appear.
    const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
    const read = await oltp.readTransaction((r) => readChunk(wh, s, r, spec, metaSchema, raw, { ...req, horizon }), { timeoutMs: req.timeoutMs });
    // After the OLTP read has ended: what is left of the warehouse side (the upsert on PostgreSQL).
    const { loaded, elsewhere } = await read.load.finish();
    const { rows, deleted, last } = read.load;
    const done = rows < req.chunkRows;
    const base = { added: read.added, needsBackfill: read.needsBackfill };
    const writes = { elsewhere, columns: read.columns, lostRows: deleted > 0 ? [req.tenant] : [], dropWatermarks: done && req.dropWatermarkWhenDone ? [req.tenant] : [] };
    if (rows === 0) return { ...writes, watermarks: [], result: { read: 0, loaded: 0, deleted: 0, watermark: req.after, done: true, ...base } };
    return {
      ...writes,
      watermarks: done && req.dropWatermarkWhenDone ? [] : [{ tenant: req.tenant, wm: last!, rows }],
      result: { read: rows, loaded, deleted, watermark: last, done, ...base },
    };
  });
  return { ...result, movedOutOf };
}

interface ReadOutcome {
  load: ChunkLoad;
  added: string[];
  needsBackfill: string[];
  /** Raw's columns once this chunk commits (undefined: unchanged). */
  columns?: RawState['columns'];
}

async function readChunk(
  wh: Pick<Adapter, 'copyStaging'>,
  s: Session,
  r: OltpReadSession,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  req: ChunkRequest & { horizon: string },
): Promise<ReadOutcome> {
  const shape = await readSourceShape(r, spec);
  const { rel, selected, order } = shape;
  const drift = planDrift(spec.label, shape.columns, raw.columns);
  const added = await addRawColumns(s, { schema: spec.rawSchema, table: spec.table }, drift.add);
  const columns = drift.add.length > 0 ? [...raw.columns, ...drift.add.map((c) => ({ name: c.name, type: c.rawType }))] : undefined;

  const source: ChunkSource = {
    s,
    spec,
    metaSchema,
    tenants: req.tenant,
    columns: selected,
    positionIndexes: shape.positionIndexes,
    deletedIndex: shape.deletedIndex,
    after: req.after,
    chunkRows: Math.max(1, Math.floor(req.chunkRows)),
    copy: async (after, limit, format) => r.copyOut(await bindChunkSelect(r, rel, spec, selected, order, req, after, limit), format),
  };
  const load = await loadChunk(wh, source);
  return { load, added: added.map((c) => c.name), needsBackfill: drift.needsBackfill, columns };
}

/** The source table as one chunk reads it, checked inside the chunk's read transaction. */
export interface SourceShape {
  rel: string;
  /** The source's columns without the soft-delete column (what raw holds). */
  columns: SourceColumn[];
  /** COPY order: `columns`, then the soft-delete column when the source has one. */
  selected: SourceColumn[];
  /** The position: the updated column, then the key columns. */
  order: SourceColumn[];
  positionIndexes: number[];
  deletedIndex: number;
}

export async function readSourceShape(r: OltpReadSession, spec: ResolvedSpec): Promise<SourceShape> {
  // The table lock (ACCESS SHARE) is held until this read transaction ends, so the columns
  // read next cannot change under the COPY (ALTER TABLE waits for us).
  await r.query(`SELECT 1 FROM ${quoteRelation(spec.sourceSchema, spec.table)} LIMIT 0`);
  return shapeOf(spec, await readSourceColumns(r, spec.sourceSchema, spec.table));
}

/** The shape of a source table with these columns (readSourceColumns); a missing needed column is an error naming it. */
export function shapeOf(spec: ResolvedSpec, all: readonly SourceColumn[]): SourceShape {
  const rel = quoteRelation(spec.sourceSchema, spec.table);
  if (all.length === 0) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: the source table does not exist`);
  const byName = new Map(all.map((c) => [c.name, c]));
  for (const needed of [spec.tenantColumn, spec.updatedColumn, ...spec.key]) {
    if (!byName.has(needed)) throw new TsformError(Codes.schemaChanged, `capture ${spec.label}: column "${needed}" is missing in the source`);
  }
  const columns = all.filter((c) => c.name !== spec.deletedColumn);
  const deleted = byName.get(spec.deletedColumn);
  const selected = deleted ? [...columns, deleted] : columns;
  const order = [byName.get(spec.updatedColumn)!, ...spec.key.map((k) => byName.get(k)!)];
  return { rel, columns, selected, order, positionIndexes: order.map((c) => selected.indexOf(c)), deletedIndex: deleted ? selected.length - 1 : -1 };
}

const GUC = {
  tenant: 'tsform.capture_tenant',
  wmTs: 'tsform.capture_wm_ts',
  wmKey: (i: number) => `tsform.capture_wm_k${i}`,
  from: 'tsform.capture_from',
  to: 'tsform.capture_to',
  horizon: 'tsform.capture_horizon',
};

/**
 * The commit horizon of the OLTP: rows with `updated_at` below it are committed for good. A
 * transaction still open has `updated_at` ≥ its start (now() or clock_timestamp()), so a row it
 * commits later can never land behind a watermark already written: the horizon is the start of
 * the oldest open transaction (pg_stat_activity; a role without pg_read_all_stats sees only its
 * own sessions there, which capture reports), and at most now() − settle. Every open
 * transaction counts, written yet or not: one that began with a SELECT holds no xid until its
 * first write, and its rows still carry its start time. Capture's own sessions only read.
 */
export async function readCommitHorizon(oltp: OltpSource, settleSeconds: number): Promise<string> {
  const { rows } = await oltp.query(
    `SELECT least(now() - make_interval(secs => $1::float8),
                  (SELECT min(a.xact_start) FROM pg_catalog.pg_stat_activity a
                    WHERE a.xact_start IS NOT NULL AND a.backend_type = 'client backend'
                      AND a.pid <> pg_catalog.pg_backend_pid() AND a.application_name IS DISTINCT FROM $2))::text AS horizon`,
    [settleSeconds, CAPTURE_APPLICATION_NAME],
  );
  return String(rows[0]!.horizon);
}

/**
 * Why the commit horizon cannot fully protect this table's capture, for the run's notices: the
 * capture role does not see every session's transaction in pg_stat_activity (only the settle
 * lag protects), or the updated column is not a timestamptz (neither the horizon nor the settle
 * lag applies: a local timestamp cannot be compared with the OLTP's clock).
 */
export async function horizonGaps(oltp: OltpSource, spec: ResolvedSpec): Promise<string[]> {
  const gaps: string[] = [];
  const { rows } = await oltp.query(
    `SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  );
  if (rows[0]?.sees !== true) {
    gaps.push(
      `the OLTP role cannot see other sessions' open transactions (grant it pg_read_all_stats): a row committed late by a transaction longer than settle_seconds (${spec.settleSeconds}) could be missed`,
    );
  }
  const updated = (await oltp.readTransaction((r) => readSourceColumns(r, spec.sourceSchema, spec.table))).find((c) => c.name === spec.updatedColumn);
  if (updated && updated.sourceType !== 'timestamp with time zone') {
    gaps.push(
      `column "${spec.updatedColumn}" is ${updated.sourceType}, not timestamptz: capture cannot hold back behind open OLTP transactions or settle_seconds, so a row committed late by a long transaction could be missed`,
    );
  }
  return gaps;
}

/**
 * Binds the chunk's values as transaction-local settings (COPY binds no parameters) and returns
 * the SELECT that reads them back with current_setting: no value is ever spliced into SQL.
 */
export async function bindChunkSelect(
  r: OltpReadSession,
  rel: string,
  spec: ResolvedSpec,
  selected: SourceColumn[],
  order: SourceColumn[],
  req: ChunkRequest & { horizon: string },
  after: Watermark | undefined,
  limit: number,
): Promise<string> {
  const settings: (string | null)[] = [req.tenant];
  const gucNames = [GUC.tenant];
  const where = [`${quoteIdent(spec.tenantColumn)} = current_setting('${GUC.tenant}')`];
  const upd = order[0]!;
  if (after) {
    gucNames.push(GUC.wmTs, ...spec.key.map((_, i) => GUC.wmKey(i)));
    settings.push(after.updatedAt, ...after.key);
    const bounds = order.map((c, i) => `CAST(current_setting('${i === 0 ? GUC.wmTs : GUC.wmKey(i - 1)}') AS ${safeType(c.sourceType)})`);
    where.push(`(${order.map((c) => quoteIdent(c.name)).join(', ')}) > (${bounds.join(', ')})`);
  }
  // The horizon is a timestamptz: compared only with a timestamptz column (a local timestamp
  // would be shifted by the writer's time zone); other types are not held back.
  if (upd.sourceType === 'timestamp with time zone') {
    gucNames.push(GUC.horizon);
    settings.push(req.horizon);
    where.push(`${quoteIdent(upd.name)} < CAST(current_setting('${GUC.horizon}') AS timestamptz)`);
  }
  if (req.range?.from !== undefined) {
    gucNames.push(GUC.from);
    settings.push(req.range.from);
    where.push(`${quoteIdent(upd.name)} >= CAST(current_setting('${GUC.from}') AS ${safeType(upd.sourceType)})`);
  }
  if (req.range?.to !== undefined) {
    gucNames.push(GUC.to);
    settings.push(req.range.to);
    where.push(`${quoteIdent(upd.name)} < CAST(current_setting('${GUC.to}') AS ${safeType(upd.sourceType)})`);
  }
  await r.query(`SELECT ${gucNames.map((g, i) => `set_config('${g}', $${i + 1}, true)`).join(', ')}`, settings);
  return (
    `SELECT ${selected.map((c) => quoteIdent(c.name)).join(', ')} FROM ${rel} WHERE ${where.join(' AND ')} ` +
    `ORDER BY ${order.map((c) => quoteIdent(c.name)).join(', ')} LIMIT ${Math.max(1, Math.floor(limit))}`
  );
}
