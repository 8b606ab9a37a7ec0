import type { Adapter } from '../adapters/adapter.ts';
import { bindChunkSelect, captureChunk, readSourceShape, type ChunkResult, type RawState, type ResolvedSpec, type SourceShape } from './capture-chunk.ts';
import { chunkTransaction } from './chunk-transaction.ts';
import { oneSnapshot, transactionPerChunk, type ChunkReader } from './chunk-readers.ts';
import type { CopyStaging, StagedCopy } from '../adapters/copy-staging.ts';
import { stagedPosition, upsertStaged } from './chunk-load.ts';
import type { OltpSource } from './oltp-source.ts';
import { withRetry } from './retry.ts';
import { countSliceRows } from './slice-upsert.ts';
import { addRawColumns, planDrift } from './source-columns.ts';
import { STEADY, type Watermark } from './watermarks.ts';

export interface SteadyRequest {
  tenant: string;
  after: Watermark | undefined;
  chunkRows: number;
  timeoutMs?: number;
  /** DuckDB: read the next chunk ahead when the current one has at least this many bytes (default 4 MiB; 0: always). */
  readAheadBytes?: number;
  /**
   * `performance.now()` after which the caller stops at the next chunk (its time slice): no
   * chunk is read ahead from then on, since it would be thrown away.
   */
  stopsAfter?: number;
}

/**
 * Below this many bytes a chunk is most likely the last one: the next read is not started
 * ahead (it would be one more query for every small practice). Only a guess: whether the
 * capture goes on is decided by the committed chunk's row count.
 */
const READ_AHEAD_MIN_BYTES = 4 * 1024 * 1024;

/**
 * The first chunk of a steady capture on DuckDB reads at most one row group (DuckDB writes an
 * insert of 122,880 rows or more straight to the database file): nothing overlaps the first
 * read, so a short one starts the load of a long backlog sooner, and every later read then
 * runs beside a load. A practice with a small backlog reads one chunk either way.
 */
const FIRST_CHUNK_ROWS = 122_880;

/**
 * One practice's steady capture, chunk after chunk from `after`, each chunk committed with its
 * watermark; yields every committed chunk, and the caller may stop between any two.
 *
 * On DuckDB the OLTP read of the next chunk (a COPY into a temp file, PostgreSQL's work) runs
 * while the current one loads (DuckDB's work): the two engines overlap on their own cores. A
 * chunk read ahead starts at the position the current chunk's bytes end with, and commits only
 * after it, in its own transaction with its own watermark, so a crash still never skips or
 * repeats a row. Reading outside the lock row is safe for the steady stream alone: a backfill
 * (which reads under the lock) cannot run beside it, as one process holds a DuckDB file.
 *
 * A practice never captured whose raw slice is empty (onboarding, after a purge) is read in
 * one OLTP snapshot: no key of a chunk can be in raw already, so its chunks are only
 * inserted, without the keys pass and the DELETE (about a fifth of DuckDB's work per chunk). At
 * every commit the slice must still hold exactly the rows this stream wrote, or that chunk
 * takes the general path.
 */
export async function* steadyChunks(wh: Adapter, oltp: OltpSource, spec: ResolvedSpec, metaSchema: string, raw: RawState, req: SteadyRequest): AsyncGenerator<ChunkResult> {
  const chunkRows = Math.max(1, Math.floor(req.chunkRows));
  const stageAhead = wh.copyStaging.ahead;
  if (!stageAhead) {
    let after = req.after;
    for (;;) {
      const chunk = await withRetry(wh, () => captureChunk(wh, oltp, spec, metaSchema, raw, { tenant: req.tenant, stream: STEADY, after, chunkRows, timeoutMs: req.timeoutMs }), oltp);
      yield chunk;
      if (chunk.done) return;
      after = chunk.watermark;
    }
  }
  // A practice never captured (no watermark) is the one worth counting: the count scans raw
  const fresh = req.after === undefined && (await countSliceRows(wh, spec, req.tenant)) === 0;
  const reader = fresh ? await oneSnapshot(oltp, spec, req.timeoutMs) : transactionPerChunk(oltp, spec, req.timeoutMs);
  // live rows this stream has committed, while they are all the slice holds
  const written = { rows: 0 };
  const read = (after: Watermark | undefined, limit = chunkRows) => {
    const p = readChunkAhead(stageAhead, wh.copyStaging.format, reader, spec, req.tenant, after, limit);
    // Marked handled now: a read ahead may fail while the chunk in front of it commits, before
    // anything awaits it (an unhandled rejection would end the process). Its await rethrows.
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<StagedRead> | undefined = read(req.after, Math.min(chunkRows, FIRST_CHUNK_ROWS));
  try {
    for (let after = req.after; next; ) {
      const staged: StagedRead = await next;
      const stopping = req.stopsAfter !== undefined && performance.now() >= req.stopsAfter;
      next = !stopping && staged.staged.bytes > 0 && staged.staged.bytes >= (req.readAheadBytes ?? READ_AHEAD_MIN_BYTES) ? read(staged.last) : undefined;
      let chunk: ChunkResult;
      try {
        chunk = await withRetry(wh, () => commitStaged(wh, oltp, spec, metaSchema, raw, req.tenant, after, staged, reader.oneSnapshot ? written : undefined), oltp);
      } finally {
        await staged.staged.dispose();
      }
      written.rows += chunk.loaded;
      yield chunk;
      if (chunk.done) return;
      after = chunk.watermark;
      next ??= read(after);
    }
  } finally {
    // stopped early or failed: a read ahead is dropped (nothing of it was committed)
    if (next) await next.then((s) => s.staged.dispose(), () => undefined);
    await reader.end().catch(() => undefined);
  }
}

/** What one practice's capture of one table did, over all its chunks. */
export interface TenantCapture {
  loaded: number;
  deleted: number;
  /** Position after the last committed chunk (the one it started from when none committed). */
  watermark: Watermark | undefined;
  added: string[];
  needsBackfill: string[];
  /** Other practices whose slices lost rows that moved to this one. */
  movedOutOf: string[];
  /** Stopped with chunks left (its time slice ran out, or `signal`); what was done is committed. */
  workLeft: boolean;
}

/**
 * The one per-practice loop of watermark capture, behind `tsform run`'s extract nodes and
 * `captureTenantSlice`: chunk after chunk (steadyChunks) until the practice is caught up, its
 * time slice (`stopsAfter`) runs out, or `signal` stops it. It stops only between chunks: a
 * started chunk commits or rolls back whole.
 */
export async function captureTenant(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  req: SteadyRequest & { signal?: AbortSignal; onChunk?: (chunk: ChunkResult) => void | Promise<void> },
): Promise<TenantCapture> {
  const out: TenantCapture = { loaded: 0, deleted: 0, watermark: req.after, added: [], needsBackfill: [], movedOutOf: [], workLeft: false };
  if (req.signal?.aborted) return { ...out, workLeft: true };
  for await (const chunk of steadyChunks(wh, oltp, spec, metaSchema, raw, req)) {
    out.loaded += chunk.loaded;
    out.deleted += chunk.deleted;
    out.watermark = chunk.watermark ?? out.watermark;
    out.added.push(...chunk.added);
    out.needsBackfill.push(...chunk.needsBackfill);
    for (const t of chunk.movedOutOf) if (!out.movedOutOf.includes(t)) out.movedOutOf.push(t);
    await req.onChunk?.(chunk);
    if (chunk.done) break;
    if (req.signal?.aborted || (req.stopsAfter !== undefined && performance.now() >= req.stopsAfter)) {
      out.workLeft = true;
      break;
    }
  }
  return out;
}

interface StagedRead {
  shape: SourceShape;
  staged: StagedCopy;
  /** The chunk's position: its last row's. */
  last: Watermark | undefined;
  /** The rows the read asked for: fewer came back when the practice is caught up. */
  limit: number;
  /** The rows COPY wrote. */
  rows: number;
}

/** The OLTP half of a chunk: below the commit horizon, staged ahead of the warehouse transaction. */
function readChunkAhead(
  stage: NonNullable<CopyStaging['ahead']>,
  format: CopyStaging['format'],
  reader: ChunkReader,
  spec: ResolvedSpec,
  tenant: string,
  after: Watermark | undefined,
  limit: number,
): Promise<StagedRead> {
  return reader.read(async (r, horizon) => {
    const shape = await readSourceShape(r, spec);
    const select = await bindChunkSelect(r, shape.rel, spec, shape.selected, shape.order, { tenant, stream: STEADY, after, chunkRows: limit, horizon }, after, limit);
    const copy = r.copyOut(select, format);
    const staged = await stage(shape.selected, copy);
    try {
      const last = stagedPosition({ spec, columns: shape.selected, positionIndexes: shape.positionIndexes }, staged);
      return { shape, limit, staged, last, rows: await copy.rows() };
    } catch (err) {
      await staged.dispose();
      throw err;
    }
  });
}

/** The warehouse half: drift and the rows, in the chunk's transaction (chunkTransaction: lock row, moved rows, deletion epoch, watermark). */
async function commitStaged(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  tenant: string,
  after: Watermark | undefined,
  staged: StagedRead,
  /** The stream reads one snapshot: the live rows it has committed so far. */
  written?: { rows: number },
): Promise<ChunkResult> {
  const { result, movedOutOf } = await chunkTransaction(wh, oltp, spec, metaSchema, raw, { tenants: [tenant], stream: STEADY }, async (s) => {
    // Drift is planned here, against raw as it is now (a chunk read ahead was read before the
    // one in front of it added its columns).
    const drift = planDrift(spec.label, staged.shape.columns, raw.columns);
    const added = await addRawColumns(s, { schema: spec.rawSchema, table: spec.table }, drift.add);
    const columns = [...raw.columns, ...drift.add.map((c) => ({ name: c.name, type: c.rawType }))];
    const base = { added: added.map((c) => c.name), needsBackfill: drift.needsBackfill };
    if (staged.staged.bytes === 0) return { columns, elsewhere: [], lostRows: [], watermarks: [], result: { read: 0, loaded: 0, deleted: 0, watermark: after, done: true, ...base } };
    // Only this stream's rows in the slice (the count is a guard: within the one process that
    // holds the DuckDB file, nothing else writes this practice's slice of this table meanwhile).
    const keysAreNew = written !== undefined && (await countSliceRows(s, spec, tenant)) === written.rows;
    const r = await upsertStaged(s, spec, tenant, staged.shape.selected, staged.shape.deletedIndex, staged.staged, keysAreNew ? staged.rows : undefined);
    return {
      columns,
      elsewhere: r.elsewhere,
      lostRows: r.deleted > 0 ? [tenant] : [],
      watermarks: [{ tenant, wm: staged.last!, rows: r.rows }],
      result: { read: r.rows, loaded: r.loaded, deleted: r.deleted, watermark: staged.last, done: r.rows < staged.limit, ...base },
    };
  });
  return { ...result, movedOutOf };
}
