import type { Adapter } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { bindChunkSelect, captureChunk, readCommitHorizon, readSourceShape, type ChunkResult, type RawState, type ResolvedSpec, type SourceShape } from './capture-chunk.ts';
import { copyChunkToFile, loadStagedChunk, type StagedChunk } from './duckdb-chunk-load.ts';
import type { OltpSource } from './oltp-source.ts';
import { withRetry } from './retry.ts';
import { planDrift } from './source-columns.ts';
import { lockTenant, STEADY, writeWatermark, type Watermark } from './watermarks.ts';

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
 * One practice's steady capture, chunk after chunk from `after`, each chunk committed with its
 * watermark; yields every committed chunk, and the caller may stop between any two.
 *
 * On DuckDB the OLTP read of the next chunk (a COPY into a temp file, PostgreSQL's work) runs
 * while the current one loads (DuckDB's work): the two engines overlap on their own cores. A
 * chunk read ahead starts at the position the current chunk's bytes end with, and commits only
 * after it, in its own transaction with its own watermark, so a crash still never skips or
 * repeats a row. Reading outside the lock row is safe for the steady stream alone: a backfill
 * (which reads under the lock) cannot run beside it, as one process holds a DuckDB file.
 */
export async function* steadyChunks(wh: Adapter, oltp: OltpSource, spec: ResolvedSpec, metaSchema: string, raw: RawState, req: SteadyRequest): AsyncGenerator<ChunkResult> {
  const chunkRows = Math.max(1, Math.floor(req.chunkRows));
  if (wh.kind !== 'duckdb') {
    let after = req.after;
    for (;;) {
      const chunk = await withRetry(wh, () => captureChunk(wh, oltp, spec, metaSchema, raw, { tenant: req.tenant, stream: STEADY, after, chunkRows, timeoutMs: req.timeoutMs }));
      yield chunk;
      if (chunk.done) return;
      after = chunk.watermark;
    }
  }
  const read = (after: Watermark | undefined) => {
    const p = readChunkAhead(oltp, spec, req.tenant, after, chunkRows, req.timeoutMs);
    // Marked handled now: a read ahead may fail while the chunk in front of it commits, before
    // anything awaits it (an unhandled rejection would end the process). Its await rethrows.
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<StagedRead> | undefined = read(req.after);
  try {
    for (let after = req.after; next; ) {
      const staged: StagedRead = await next;
      const stopping = req.stopsAfter !== undefined && performance.now() >= req.stopsAfter;
      next = !stopping && staged.file.bytes > 0 && staged.file.bytes >= (req.readAheadBytes ?? READ_AHEAD_MIN_BYTES) ? read(staged.file.last) : undefined;
      let chunk: ChunkResult;
      try {
        chunk = await withRetry(wh, () => commitStaged(wh, spec, metaSchema, raw, req.tenant, after, chunkRows, staged));
      } finally {
        await staged.file.dispose();
      }
      yield chunk;
      if (chunk.done) return;
      after = chunk.watermark;
      next ??= read(after);
    }
  } finally {
    // stopped early or failed: a read ahead is dropped (nothing of it was committed)
    if (next) await next.then((s) => s.file.dispose(), () => undefined);
  }
}

interface StagedRead {
  shape: SourceShape;
  file: StagedChunk;
}

/** The OLTP half of a chunk: its own REPEATABLE READ transaction, below the commit horizon, into a file. */
async function readChunkAhead(oltp: OltpSource, spec: ResolvedSpec, tenant: string, after: Watermark | undefined, chunkRows: number, timeoutMs?: number): Promise<StagedRead> {
  const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
  return oltp.readTransaction(
    async (r) => {
      const shape = await readSourceShape(r, spec);
      const select = await bindChunkSelect(r, shape.rel, spec, shape.selected, shape.order, { tenant, stream: STEADY, after, chunkRows, horizon }, after, chunkRows);
      return { shape, file: await copyChunkToFile({ spec, columns: shape.selected, positionIndexes: shape.positionIndexes }, r.copyOut(select, 'csv')) };
    },
    { timeoutMs },
  );
}

/** The warehouse half: lock row, drift, the rows, the watermark, in one transaction. */
async function commitStaged(
  wh: Adapter,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  tenant: string,
  after: Watermark | undefined,
  chunkRows: number,
  staged: StagedRead,
): Promise<ChunkResult> {
  const chunk = await wh.transaction(async (s): Promise<ChunkResult & { columns: typeof raw.columns }> => {
    await lockTenant(s, metaSchema, spec.label, tenant);
    // Drift is planned here, against raw as it is now (a chunk read ahead was read before the
    // one in front of it added its columns).
    const drift = planDrift(spec.label, staged.shape.columns, raw.columns);
    for (const c of drift.add) await s.query(`ALTER TABLE ${quoteRelation(spec.rawSchema, spec.table)} ADD COLUMN ${quoteIdent(c.name)} ${c.rawType}`);
    const columns = [...raw.columns, ...drift.add.map((c) => ({ name: c.name, type: c.rawType }))];
    const base = { added: drift.add.map((c) => c.name), needsBackfill: drift.needsBackfill, columns };
    if (staged.file.bytes === 0) return { read: 0, loaded: 0, deleted: 0, watermark: after, done: true, ...base };
    const r = await loadStagedChunk(s, spec, tenant, staged.shape.selected, staged.shape.deletedIndex, staged.file.file);
    await writeWatermark(s, metaSchema, spec.label, tenant, STEADY, staged.file.last!, r.rows);
    return { read: r.rows, loaded: r.loaded, deleted: r.deleted, watermark: staged.file.last, done: r.rows < chunkRows, ...base };
  });
  // raw's columns as committed: a transaction that rolled back added none
  raw.columns = chunk.columns;
  const { columns: _, ...result } = chunk;
  return result;
}
