import { randomBytes } from 'node:crypto';
import type { Adapter, Session, SqlParam } from '../adapters/adapter.ts';
import type { StagedCopy } from '../adapters/copy-staging.ts';
import { unloadableValueError } from '../adapters/unloadable-value.ts';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent } from '../sql/quote.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import { deleteChunkKeys, insertLiveRows, keysHeldElsewhere, type ChunkRows, type ChunkTenants, type HeldElsewhere } from './slice-upsert.ts';
import type { SourceColumn } from './source-columns.ts';
import { positionOf, type Watermark } from './watermarks.ts';

/**
 * The OLTP side of one chunk: the selected columns (the soft-delete column last) and the COPY of
 * the rows after a position, inside the chunk's REPEATABLE READ read transaction.
 */
export interface ChunkSource {
  s: Session;
  spec: ResolvedSpec;
  metaSchema: string;
  /** The practice of the chunk, or the practices of a batch read together (every row is one of theirs). */
  tenants: ChunkTenants;
  /** Selected columns in COPY order; the soft-delete column, when the source has one, is last. */
  columns: SourceColumn[];
  /** Indexes in `columns` of the updated column and the key columns: a row's position. */
  positionIndexes: number[];
  /** Index of the soft-delete column in `columns`, or -1. */
  deletedIndex: number;
  /** The chunk's starting position and size. */
  after: Watermark | undefined;
  chunkRows: number;
  /** `COPY (SELECT ... after `after` ORDER BY position LIMIT limit) TO STDOUT` (a batch: its own select; `after` and `limit` are not read). */
  copy(after: Watermark | undefined, limit: number, format: 'text' | 'csv'): Promise<AsyncIterable<Buffer>>;
}

/** Rows a chunk read per practice, and how many of them were soft-deleted. */
export type ChunkCounts = Map<string, { rows: number; deleted: number }>;

/** What a load did: the rows read, and the warehouse work left for after the OLTP read. */
export interface ChunkLoad {
  rows: number;
  deleted: number;
  /** `rows` and `deleted` per practice. */
  byTenant: ChunkCounts;
  last: Watermark | undefined;
  /** Finishes the upsert into raw (if not done already): the live rows written, and their keys other practices hold. */
  finish(): Promise<{ loaded: number; elsewhere: HeldElsewhere[] }>;
}

/** What the upsert of a staged chunk did to raw. */
export interface StagedUpsert {
  rows: number;
  deleted: number;
  loaded: number;
  elsewhere: HeldElsewhere[];
  byTenant: ChunkCounts;
}

/** The chunk's position: its last row's (the OLTP read orders by position). */
export function stagedPosition(src: Pick<ChunkSource, 'spec' | 'columns' | 'positionIndexes'>, staged: StagedCopy): Watermark | undefined {
  if (staged.lastRow === undefined) return undefined;
  if (staged.lastRow.length !== src.columns.length) {
    throw new TsformError(Codes.sqlError, `capture ${src.spec.label}: COPY returned ${staged.lastRow.length} fields for ${src.columns.length} columns`);
  }
  return positionOf(src, staged.lastRow);
}

/**
 * One chunk, read by `src.copy` inside its OLTP read transaction, staged the engine's way
 * (Adapter.copyStaging). Data that is costly to read again (DuckDB's file) is upserted at once;
 * a temp table is only counted now, and upserted by `finish` once the OLTP read has ended.
 */
export async function loadChunk(wh: Pick<Adapter, 'copyStaging'>, src: ChunkSource): Promise<ChunkLoad> {
  const data = await src.copy(src.after, src.chunkRows, wh.copyStaging.format);
  const staged = wh.copyStaging.ahead ? await wh.copyStaging.ahead(src.columns, data) : await src.s.stageCopy(src.columns, data);
  let kept = false;
  try {
    const last = stagedPosition(src, staged);
    if (staged.costlyToRead) {
      const r = await upsertStaged(src.s, src.spec, src.tenants, src.columns, src.deletedIndex, staged);
      return { rows: r.rows, deleted: r.deleted, byTenant: r.byTenant, last, finish: async () => ({ loaded: r.loaded, elsewhere: r.elsewhere }) };
    }
    const rows = asChunkRows(staged, 2);
    const byTenant: ChunkCounts = staged.bytes === 0 ? new Map() : await countByTenant(src.s, src.spec, staged.relation(1), deletedName(src.columns, src.deletedIndex));
    const sum = sumCounts(byTenant);
    kept = true;
    return {
      ...sum,
      byTenant,
      last,
      finish: async () => {
        try {
          if (sum.rows === 0) return { loaded: 0, elsewhere: [] };
          return await replaceKeys(src.s, src.spec, src.tenants, src.columns, rows, rows);
        } finally {
          await staged.dispose();
        }
      },
    };
  } finally {
    if (!kept) await staged.dispose();
  }
}

/**
 * The upsert of a staged chunk into the practices' slices of raw, in the chunk's transaction.
 * When its data is costly to read again, only the practice, the keys (and the soft-delete
 * column) go into a temp table, for the counts, the DELETE and the keys held elsewhere; the
 * live rows go from the staged data straight into raw.
 */
export async function upsertStaged(
  s: Session,
  spec: ResolvedSpec,
  tenants: ChunkTenants,
  columns: readonly SourceColumn[],
  deletedIndex: number,
  staged: StagedCopy,
  /**
   * The chunk's row count when none of its keys can be in raw (a stream read in one snapshot
   * into a slice that held none of them; one practice): its rows are only inserted.
   */
  newKeysRows?: number,
): Promise<StagedUpsert> {
  try {
    return await upsertStagedRows(s, spec, tenants, columns, deletedIndex, staged, newKeysRows);
  } catch (err) {
    // DuckDB's strict cast of a value it cannot hold (adapters/unloadable-value.ts): TSF422 naming the column
    throw unloadableValueError(err, spec.label) ?? err;
  }
}

async function upsertStagedRows(
  s: Session,
  spec: ResolvedSpec,
  tenants: ChunkTenants,
  columns: readonly SourceColumn[],
  deletedIndex: number,
  staged: StagedCopy,
  newKeysRows: number | undefined,
): Promise<StagedUpsert> {
  if (staged.bytes === 0) return { rows: 0, deleted: 0, loaded: 0, elsewhere: [], byTenant: new Map() };
  const all = asChunkRows(staged, 2);
  if (newKeysRows !== undefined && typeof tenants === 'string') {
    const loaded = await insertLiveRows(s, spec, tenants, columns, all);
    const elsewhere = await keysHeldElsewhere(s, spec, tenants, columns, all);
    // every row is the practice's (the OLTP read selects it): the rest were soft-deleted
    const deleted = newKeysRows - loaded;
    return { rows: newKeysRows, deleted, loaded, elsewhere, byTenant: new Map([[tenants, { rows: newKeysRows, deleted }]]) };
  }
  let keys = all;
  let keyTable: string | undefined;
  if (staged.costlyToRead) {
    keyTable = `__tsf_capture_${randomBytes(6).toString('hex')}`;
    const deleted = deletedName(columns, deletedIndex);
    const deletedCol = deleted === undefined ? 'NULL AS "__tsf_no_deleted"' : quoteIdent(deleted);
    const from = staged.relation(1);
    await s.createTempTableAs(keyTable, `SELECT ${[spec.tenantColumn, ...spec.key].map(quoteIdent).join(', ')}, ${deletedCol} FROM ${from.sql}`, from.params);
    keys = { from: quoteIdent(keyTable), params: [], typed: true };
  }
  const byTenant = await countByTenant(s, spec, keyTable === undefined ? staged.relation(1) : { sql: keys.from, params: [] }, deletedName(columns, deletedIndex));
  const { loaded, elsewhere } = await replaceKeys(s, spec, tenants, columns, keys, all);
  if (keyTable !== undefined) await s.dropTempTable(keyTable);
  return { ...sumCounts(byTenant), loaded, elsewhere, byTenant };
}

/**
 * The practices' rows of the chunk's keys in raw replaced by the chunk's live rows (`keys` may be
 * a narrower relation of the same rows); returns the rows written and the keys other practices hold.
 */
async function replaceKeys(s: Session, spec: ResolvedSpec, tenants: ChunkTenants, columns: readonly SourceColumn[], keys: ChunkRows, all: ChunkRows): Promise<{ loaded: number; elsewhere: HeldElsewhere[] }> {
  await deleteChunkKeys(s, spec, tenants, columns, keys);
  const loaded = await insertLiveRows(s, spec, tenants, columns, all);
  return { loaded, elsewhere: await keysHeldElsewhere(s, spec, tenants, columns, keys) };
}

function deletedName(columns: readonly SourceColumn[], deletedIndex: number): string | undefined {
  return deletedIndex >= 0 ? columns[deletedIndex]!.name : undefined;
}

function asChunkRows(staged: StagedCopy, first: number): ChunkRows {
  const r = staged.relation(first);
  return { from: r.sql, params: r.params, typed: true };
}

/** Rows and soft-deleted rows per practice of a relation of the chunk (its parameters, if any, from $1). */
async function countByTenant(s: Session, spec: ResolvedSpec, from: { sql: string; params: readonly SqlParam[] }, deletedColumn: string | undefined): Promise<ChunkCounts> {
  const stats = await s.query(
    `SELECT CAST(${quoteIdent(spec.tenantColumn)} AS VARCHAR) AS t, count(*) AS n, ${deletedColumn ? `count(${quoteIdent(deletedColumn)})` : '0'} AS d FROM ${from.sql} GROUP BY 1`,
    from.params,
  );
  return new Map(stats.rows.map((r) => [String(r.t), { rows: Number(r.n), deleted: Number(r.d) }]));
}

function sumCounts(byTenant: ChunkCounts): { rows: number; deleted: number } {
  let rows = 0;
  let deleted = 0;
  for (const c of byTenant.values()) {
    rows += c.rows;
    deleted += c.deleted;
  }
  return { rows, deleted };
}
