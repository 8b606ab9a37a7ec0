import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteIdent, sqlLiteral } from '../sql/quote.ts';
import type { Session } from '../adapters/adapter.ts';
import { privateScratchDir } from '../adapters/scratch-dir.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { ChunkLoad, ChunkSource } from './chunk-load.ts';
import type { SourceColumn } from './source-columns.ts';
import { lastCsvRow } from './csv-tail.ts';
import { deleteChunkKeys, insertLiveRows, keysHeldElsewhere, type ChunkRows, type ChunkTenants, type HeldElsewhere } from './slice-upsert.ts';
import { positionOf, type Watermark } from './watermarks.ts';

/** Bytes kept from the end of the COPY output to read its last row; a longer row is read from the file. */
const TAIL_BYTES = 256 * 1024;

/**
 * DuckDB path: the chunk's COPY output (CSV, every value quoted, NULL as a bare \N) goes to a
 * temp file that DuckDB's own CSV reader loads, so rows never become JavaScript values (the
 * appender costs ~1 µs per value). The chunk's position is its last CSV row, read back from the
 * end of the bytes (no second OLTP query). Only the keys (and the soft-delete column) go into a
 * temp table, for the counts and the DELETE; the live rows go from the file straight into raw
 * (a second, cheaper read of the file than materializing every column in between).
 */
export async function loadChunkViaFiles(src: ChunkSource): Promise<ChunkLoad> {
  const staged = await copyChunkToFile(src, await src.copy(src.after, src.chunkRows, 'csv'));
  try {
    if (staged.bytes === 0) return { rows: 0, deleted: 0, byTenant: new Map(), last: undefined, finish: async () => ({ loaded: 0, elsewhere: [] }) };
    const r = await loadStagedChunk(src.s, src.spec, src.tenants, src.columns, src.deletedIndex, staged.file);
    return { rows: r.rows, deleted: r.deleted, byTenant: r.byTenant, last: staged.last, finish: async () => ({ loaded: r.loaded, elsewhere: r.elsewhere }) };
  } finally {
    await staged.dispose();
  }
}

/** A chunk's COPY output in a temp file, with its position (the last row's). */
export interface StagedChunk {
  file: string;
  bytes: number;
  last: Watermark | undefined;
  dispose(): Promise<void>;
}

/** The OLTP half of a chunk on DuckDB: COPY CSV into a temp file; no warehouse session involved. */
export async function copyChunkToFile(src: Pick<ChunkSource, 'spec' | 'columns' | 'positionIndexes'>, data: AsyncIterable<Buffer>): Promise<StagedChunk> {
  // In the process's private scratch folder: the only folder a locked-down DuckDB may read (duckdb-adapter.ts lockDown).
  const dir = await mkdtemp(join(privateScratchDir(), 'capture-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'chunk.csv');
    const written = await copyToFile(data, file);
    if (written.bytes === 0) return { file, bytes: 0, last: undefined, dispose };
    const row = lastCsvRow(written.tail, src.columns.length, written.tailIsWhole) ?? lastCsvRow(await readFile(file), src.columns.length, true)!;
    return { file, bytes: written.bytes, last: positionOf(src, row), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Rows a chunk read per practice, and how many of them were soft-deleted. */
export type ChunkCounts = Map<string, { rows: number; deleted: number }>;

/**
 * The warehouse half: only the practice, the keys (and the soft-delete column) go into a temp
 * table, for the counts and the DELETE; the live rows go from the file straight into raw.
 */
export async function loadStagedChunk(
  s: Session,
  spec: ResolvedSpec,
  tenants: ChunkTenants,
  columns: readonly SourceColumn[],
  deletedIndex: number,
  file: string,
  /**
   * The chunk's row count when none of its keys can be in raw (a stream read in one snapshot
   * into a slice that held none of them; one practice): its rows are only inserted.
   */
  newKeysRows?: number,
): Promise<{ rows: number; deleted: number; loaded: number; elsewhere: HeldElsewhere[]; byTenant: ChunkCounts }> {
  // Column names and types go into the reader's options as literals (DuckDB binds no
  // parameters there); they come from the OLTP catalog, not from row data. Typed by the CSV
  // reader itself (its parsers are much faster than a CAST pass afterwards).
  const struct = columns.map((c) => `${sqlLiteral(c.name)}: ${sqlLiteral(c.rawType)}`).join(', ');
  const readCsv = (param: string): string => `read_csv(${param}, columns = {${struct}}, auto_detect = false, header = false, delim = ',', quote = '"', escape = '"', nullstr = '\\N', allow_quoted_nulls = false, parallel = true)`;
  if (newKeysRows !== undefined && typeof tenants === 'string') {
    const rows: ChunkRows = { from: readCsv('$2'), params: [file], typed: true };
    const loaded = await insertLiveRows(s, spec, tenants, columns, rows);
    const elsewhere = await keysHeldElsewhere(s, spec, tenants, columns, rows);
    // every row is the practice's (the OLTP read selects it): the rest were soft-deleted
    const deleted = newKeysRows - loaded;
    return { rows: newKeysRows, deleted, loaded, elsewhere, byTenant: new Map([[tenants, { rows: newKeysRows, deleted }]]) };
  }
  const load = quoteIdent(`__tsf_capture_${randomBytes(6).toString('hex')}`);
  const tc = quoteIdent(spec.tenantColumn);
  const deletedCol = deletedIndex >= 0 ? quoteIdent(columns[deletedIndex]!.name) : undefined;
  // a temp table: in memory, never in the database file or its WAL
  await s.query(`CREATE TEMP TABLE ${load} AS SELECT ${[tc, ...spec.key.map(quoteIdent), deletedCol ?? 'NULL AS "__tsf_no_deleted"'].join(', ')} FROM ${readCsv('$1')}`, [file]);
  const stats = await s.query(`SELECT CAST(${tc} AS VARCHAR) AS t, count(*) AS n, ${deletedCol ? `count(${deletedCol})` : '0'} AS d FROM ${load} GROUP BY 1`);
  const byTenant: ChunkCounts = new Map(stats.rows.map((r) => [String(r.t), { rows: Number(r.n), deleted: Number(r.d) }]));
  const keys: ChunkRows = { from: load, params: [], typed: true };
  await deleteChunkKeys(s, spec, tenants, columns, keys);
  const loaded = await insertLiveRows(s, spec, tenants, columns, { from: readCsv('$2'), params: [file], typed: true });
  const elsewhere = await keysHeldElsewhere(s, spec, tenants, columns, keys);
  await s.query(`DROP TABLE ${load}`);
  const sum = (f: 'rows' | 'deleted') => [...byTenant.values()].reduce((a, c) => a + c[f], 0);
  return { rows: sum('rows'), deleted: sum('deleted'), loaded, elsewhere, byTenant };
}

interface WrittenCopy {
  bytes: number;
  /** The last bytes written (at least TAIL_BYTES of them, or all). */
  tail: Buffer;
  /** `tail` holds every byte written. */
  tailIsWhole: boolean;
}

/** Bytes gathered before one write: one write per COPY message batch costs more than the COPY. */
const WRITE_BYTES = 1024 * 1024;

async function copyToFile(data: AsyncIterable<Buffer>, file: string): Promise<WrittenCopy> {
  const fh = await open(file, 'w');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let dropped = false;
  let bytes = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  try {
    for await (const b of data) {
      bytes += b.length;
      kept.push(b);
      keptBytes += b.length;
      while (kept.length > 1 && keptBytes - kept[0]!.length >= TAIL_BYTES) {
        keptBytes -= kept.shift()!.length;
        dropped = true;
      }
      batch.push(b);
      batchBytes += b.length;
      if (batchBytes >= WRITE_BYTES) {
        await fh.writev(batch);
        batch = [];
        batchBytes = 0;
      }
    }
    if (batch.length > 0) await fh.writev(batch);
  } finally {
    await fh.close();
  }
  return { bytes, tail: Buffer.concat(kept), tailIsWhole: !dropped };
}
