import { createHash } from 'node:crypto';
import type { Adapter, Session } from '../adapters/adapter.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { Codes, TsformError } from '../errors.ts';
import { migrateMeta } from '../warehouse/meta-schema.ts';
import { createTenantTable } from '../warehouse/tenant-table.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { horizonGaps, resolveSpec, type CaptureSpec, type ChunkResult, type RawState, type ResolvedSpec } from './capture-chunk.ts';
import type { OltpSource } from './oltp-source.ts';
import { checkCaptureKey } from './capture-key.ts';
import { planDrift, readSourceColumns, type SourceColumn } from './source-columns.ts';
import { withRetry } from './retry.ts';
import { movedAwayNotice, sweepFailedNotice, sweepIndexGap, sweepMovedRows } from './move-sweep.ts';
import { captureTenant } from './steady-capture.ts';
import { countUnknownTenantRows } from './unknown-practices.ts';
import { countUnplacedRows, unplacedNotice } from './unplaced-rows.ts';
import { ensureLockRows, readWatermarks, STEADY, type Watermark } from './watermarks.ts';

export type { CaptureSpec } from './capture-chunk.ts';
export type { Watermark } from './watermarks.ts';
export { withRetry } from './retry.ts';

/** Applies the relation's row-level security inside the caller's transaction (execute/ renders it). */
export type ProtectRelation = (s: Session) => Promise<void>;

export interface CaptureOptions {
  /** Schema of tsform's own tables (watermarks, locks, load tables); default `tsform_meta`. */
  metaSchema?: string;
  /** Every practice in tenants.yml; rows of any other practice id are counted, never loaded. Default: `tenants`. */
  knownTenants?: readonly string[];
  /** Rows per chunk, i.e. per warehouse transaction (default: defaultChunkRows of the warehouse's engine). */
  chunkRows?: number;
  /** Statement timeout of each OLTP read. */
  timeoutMs?: number;
  /** Practices captured at once (default 1). */
  concurrency?: number;
  /** DuckDB: read a practice's next chunk while the current one loads once chunks reach this many bytes (steady-capture.ts). */
  readAheadBytes?: number;
  /** Called, and awaited, after every committed chunk, before the practice's next chunk commits. */
  onChunk?: (tenant: string, chunk: ChunkResult) => void | Promise<void>;
  /** Stops between chunks (a started chunk finishes or rolls back). */
  signal?: AbortSignal;
}

export interface TenantFailure {
  tenant: string;
  code?: string;
  /** Safe to log: no row values. */
  message: string;
}

export interface CaptureResult {
  /** Live rows written to raw per practice in this call. */
  rowsByTenant: Map<string, number>;
  /** Soft-deleted rows seen per practice (their keys were removed from raw). */
  deleted: Map<string, number>;
  /** Watermark per practice after this call (practices that never had a row are absent). */
  newWatermarks: Map<string, Watermark>;
  /** Practices whose capture failed; the others committed. */
  failures: TenantFailure[];
  /** Rows in the source whose practice id is not a known practice: never loaded. */
  unknownTenantRows: number;
  /** Counted problems that are not failures, safe to log. */
  notes: string[];
}

/**
 * Rows per chunk unless the source says otherwise. DuckDB: 491,520 (four row groups; from
 * 122,880 rows a transaction writes straight to the database file instead of its log, and
 * fewer, larger commits pipeline better: bench:capture, one large practice, 143k rows/s at
 * 50,000, 235k at 245,760, 263k at 491,520; the temp file is ~170 MB); PostgreSQL: 50,000.
 */
export function defaultChunkRows(wh: Pick<Adapter, 'kind'>): number {
  return wh.kind === 'duckdb' ? 491_520 : 50_000;
}

/** Temp table giving a new raw table its columns (createTenantTable copies its shape). */
const RAW_SHAPE = '__tsf_raw_shape';

function captureIndexName(table: string, suffix: string): string {
  const name = `${table}__${suffix}`;
  return name.length <= 63 ? name : `${name.slice(0, 50)}_${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}

/**
 * Steady capture of one source table for `tenants`: one extract per practice from its own
 * watermark, in chunks that each commit rows + watermark together. A practice that fails is
 * reported by id and the others go on.
 */
export async function captureTenantSlice(
  wh: Adapter,
  oltp: OltpSource,
  specIn: CaptureSpec,
  tenants: readonly string[],
  opts: CaptureOptions = {},
): Promise<CaptureResult> {
  const spec = resolveSpec(specIn);
  const metaSchema = opts.metaSchema ?? 'tsform_meta';
  const result: CaptureResult = { rowsByTenant: new Map(), deleted: new Map(), newWatermarks: new Map(), failures: [], unknownTenantRows: 0, notes: [] };
  const raw = await prepareCapture(wh, oltp, spec, metaSchema, tenants);
  result.unknownTenantRows = await countUnknownTenantRowsInto(oltp, spec, opts.knownTenants ?? tenants, result.notes);
  // as in a run (run-capture.ts): a failed sweep is a note, its position unmoved, and the practices' captures go on
  const swept = await withRetry(wh, () => sweepMovedRows(wh, oltp, spec, metaSchema, opts.knownTenants ?? tenants), oltp).catch((err: unknown) => {
    result.notes.push(`${spec.label}: ${sweepFailedNotice(err)}`);
    return undefined;
  });
  if (swept && swept.away.rows > 0) result.notes.push(movedAwayNotice(spec.label, swept.away));
  for (const gap of await horizonGaps(oltp, spec)) result.notes.push(`${spec.label}: ${gap}`);
  const unplaced = unplacedNotice(spec.label, spec, await countUnplacedRows(oltp, spec, raw.source.find((c) => c.name === spec.updatedColumn)?.sourceType));
  if (unplaced) result.notes.push(unplaced);
  const indexGap = await sweepIndexGap(oltp, spec);
  if (indexGap) result.notes.push(`${spec.label}: ${indexGap}`);
  const watermarks = await readWatermarks(wh, metaSchema, spec.label, STEADY, tenants);
  const chunkRows = opts.chunkRows ?? defaultChunkRows(wh);
  await forEachLimited(tenants, opts.concurrency ?? 1, async (tenant) => {
    let after = watermarks.get(tenant);
    let loaded = 0;
    let deleted = 0;
    try {
      await captureTenant(wh, oltp, spec, metaSchema, raw, {
        tenant,
        after,
        chunkRows,
        timeoutMs: opts.timeoutMs,
        readAheadBytes: opts.readAheadBytes,
        signal: opts.signal,
        onChunk: async (chunk) => {
          // counted as chunks commit: a practice that fails later keeps what it committed
          loaded += chunk.loaded;
          deleted += chunk.deleted;
          after = chunk.watermark ?? after;
          for (const c of chunk.added) result.notes.push(`${spec.label}: new source column "${c}" added to ${spec.rawSchema}.${spec.table}`);
          for (const c of chunk.needsBackfill) result.notes.push(`${spec.label}: column "${c}" was added with values capture cannot know for earlier rows: backfill every practice (tsform backfill --all-tenants)`);
          await opts.onChunk?.(tenant, chunk);
        },
      });
    } catch (err) {
      result.failures.push(failureOf(wh, tenant, err));
    }
    result.rowsByTenant.set(tenant, loaded);
    result.deleted.set(tenant, deleted);
    if (after) result.newWatermarks.set(tenant, after);
  });
  return result;
}

/**
 * Meta tables, lock rows and the raw table (created from the source's columns when missing;
 * drift is checked here for the whole table, and again in every chunk).
 */
export async function prepareCapture(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  tenants: readonly string[],
  /** Row-level security of the raw table, in the transaction that creates it (PostgreSQL). */
  protect?: ProtectRelation,
): Promise<RawState & { source: SourceColumn[] }> {
  await migrateMeta(wh, metaSchema);
  await withRetry(wh, () => wh.transaction((s) => ensureLockRows(s, metaSchema, spec.label, tenants)));
  const existing = await wh.describe(spec.rawSchema, spec.table);
  const source = await oltp.readTransaction(async (r) => {
    const columns = await readSourceColumns(r, spec.sourceSchema, spec.table);
    if (columns.length === 0) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: the source table does not exist`);
    // a key that does not identify a row would let rows replace each other in raw (capture-key.ts)
    await checkCaptureKey(r, spec, columns);
    return columns;
  });
  const columns = source.filter((c) => c.name !== spec.deletedColumn);
  if (existing) {
    // An incompatible change fails the whole table once, before any practice starts.
    planDrift(spec.label, columns, existing.columns);
    return { columns: existing.columns, source };
  }
  await wh.ensureSchema(spec.rawSchema);
  // IF NOT EXISTS: another capture of the same table may have created it since we looked.
  // Protected in the same transaction: no practice ever sees the table without its policy.
  await withRetry(wh, () =>
    wh.transaction(async (s) => {
      await s.createTempTableAs(RAW_SHAPE, `SELECT ${columns.map((c) => `CAST(NULL AS ${c.rawType}) AS ${quoteIdent(c.name)}`).join(', ')} WHERE 1 = 0`, []);
      // Partitioned by practice where the target partitions tenant-scoped tables, as models' are.
      await createTenantTable(s, spec.rawSchema, spec.table, RAW_SHAPE, spec.tenantColumn);
      await s.query(`DROP TABLE ${quoteIdent(RAW_SHAPE)}`);
      // Every chunk deletes its keys from the practice's slice: on PostgreSQL without this index
      // that is a scan of the whole table per chunk. (DuckDB scans by zone maps; an ART index
      // would only slow its bulk inserts.)
      if (wh.kind === 'postgres') {
        const cols = [spec.tenantColumn, ...spec.key].map(quoteIdent).join(', ');
        await s.query(`CREATE INDEX IF NOT EXISTS ${quoteIdent(captureIndexName(spec.table, 'capture_key_idx'))} ON ${quoteRelation(spec.rawSchema, spec.table)} (${cols})`);
        // The key alone: each chunk looks up whether other practices hold its keys (moved-rows.ts).
        const key = spec.key.map(quoteIdent).join(', ');
        await s.query(`CREATE INDEX IF NOT EXISTS ${quoteIdent(captureIndexName(spec.table, 'moved_key_idx'))} ON ${quoteRelation(spec.rawSchema, spec.table)} (${key})`);
      }
      await protect?.(s);
    }),
  );
  return { columns: (await wh.describe(spec.rawSchema, spec.table))!.columns, source };
}

async function countUnknownTenantRowsInto(oltp: OltpSource, spec: ResolvedSpec, known: readonly string[], notes: string[]): Promise<number> {
  const { total, shown } = await countUnknownTenantRows(oltp, spec, known);
  if (total > 0) notes.push(`${spec.label}: ${total} row(s) carry a ${spec.tenantColumn} that is not a known practice, not loaded: ${shown}`);
  return total;
}

/**
 * A practice's capture failure as a line: the OLTP's or the warehouse's error, told apart by the
 * one redactor (safeDbMessage), never by the warehouse adapter (it may not be the engine that raised it).
 */
export function failureOf(_warehouse: Adapter, tenant: string, err: unknown): TenantFailure {
  if (err instanceof TsformError) return { tenant, code: err.code, message: `${tenant}: ${err.message}` };
  const sqlstate = (err as { code?: unknown }).code;
  return { tenant, code: typeof sqlstate === 'string' ? sqlstate : undefined, message: `${tenant}: ${safeDbMessage(err)}` };
}

export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
