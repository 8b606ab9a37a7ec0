import type { Adapter } from '../adapters/adapter.ts';
import { captureChunk, resolveSpec, type CaptureSpec } from './capture-chunk.ts';
import { defaultChunkRows, failureOf, prepareCapture, withRetry, type ProtectRelation, type TenantFailure } from './capture.ts';
import type { OltpSource } from './oltp-source.ts';
import { readWatermarks } from './watermarks.ts';

export interface BackfillOptions {
  /** Only rows with updated_at at or after this (ISO date or timestamp). */
  from?: string;
  /** Only rows with updated_at before this (exclusive). */
  to?: string;
  metaSchema?: string;
  /** Rows per chunk (default: defaultChunkRows): the longest a backfill holds the practice's capture lock. */
  chunkRows?: number;
  timeoutMs?: number;
  /** After every committed chunk: rows so far in this backfill (including earlier, interrupted runs). */
  onProgress?: (p: BackfillProgress) => void;
  /** Stops between chunks; the next backfill of the same range resumes where this one stopped. */
  signal?: AbortSignal;
  /** Row-level security of the raw table, in the transaction that creates it (PostgreSQL). */
  protect?: ProtectRelation;
}

export interface BackfillProgress {
  tenant: string;
  table: string;
  chunk: number;
  rowsThisRun: number;
  /** Position reached, as the OLTP prints `updated_at`. */
  position: string | undefined;
}

export interface BackfillResult {
  tenant: string;
  rows: number;
  deleted: number;
  chunks: number;
  /** False when stopped by the signal: run it again to resume. */
  complete: boolean;
  failure?: TenantFailure;
}

/** The watermark stream of one backfill range: a resumed backfill must name the same range. */
export function backfillStream(from?: string, to?: string): string {
  return `backfill:${from ?? ''}|${to ?? ''}`;
}

/**
 * Re-captures one practice (optionally an updated_at range) in its own watermark stream, one
 * chunk per transaction. Each chunk takes the practice's capture lock like a steady chunk, so
 * steady capture waits for at most one backfill chunk, and since a chunk reads the OLTP inside
 * that lock, a chunk that commits later always carries a newer snapshot. The stream's
 * watermark is removed when the range is exhausted, so the next backfill starts over.
 */
export async function backfillTenant(
  wh: Adapter,
  oltp: OltpSource,
  specIn: CaptureSpec,
  tenant: string,
  opts: BackfillOptions = {},
): Promise<BackfillResult> {
  const spec = resolveSpec(specIn);
  const metaSchema = opts.metaSchema ?? 'tsform_meta';
  const stream = backfillStream(opts.from, opts.to);
  const out: BackfillResult = { tenant, rows: 0, deleted: 0, chunks: 0, complete: false };
  try {
    const raw = await prepareCapture(wh, oltp, spec, metaSchema, [tenant], opts.protect);
    let after = (await readWatermarks(wh, metaSchema, spec.label, stream, [tenant])).get(tenant);
    const chunkRows = opts.chunkRows ?? defaultChunkRows(wh);
    while (!opts.signal?.aborted) {
      const chunk = await withRetry(wh, () =>
        captureChunk(wh, oltp, spec, metaSchema, raw, {
          tenant,
          stream,
          after,
          range: { from: opts.from, to: opts.to },
          chunkRows,
          timeoutMs: opts.timeoutMs,
          dropWatermarkWhenDone: true,
        }),
        oltp,
      );
      out.chunks++;
      out.rows += chunk.loaded;
      out.deleted += chunk.deleted;
      after = chunk.watermark;
      opts.onProgress?.({ tenant, table: spec.label, chunk: out.chunks, rowsThisRun: out.rows, position: after?.updatedAt });
      if (chunk.done) {
        out.complete = true;
        break;
      }
      // Let other work (steady capture of this practice) take the lock between chunks.
      await new Promise((r) => setImmediate(r));
    }
  } catch (err) {
    out.failure = failureOf(wh, tenant, err);
  }
  return out;
}
