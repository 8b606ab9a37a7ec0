import type { Adapter, ColumnInfo, Session } from '../adapters/adapter.ts';
import { quoteRelation } from '../sql/quote.ts';
import { countDeletion, relationKey } from '../warehouse/deletion-epochs.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import { removeMovedRows } from './moved-rows.ts';
import type { OltpSource } from './oltp-source.ts';
import type { HeldElsewhere } from './slice-upsert.ts';
import { deleteWatermark, lockTenant, lockTenants, writeWatermark, writeWatermarks, type Watermark } from './watermarks.ts';

/** What a chunk's rows did to raw, for the end of its transaction, and the chunk's own outcome. */
export interface ChunkWrites<R> {
  result: R;
  /** Keys of the chunk's rows that other practices' slices hold: removed there when the OLTP moved them. */
  elsewhere: readonly HeldElsewhere[];
  /** Practices whose slices lost rows (soft deletes): their deletion epoch moves, so incremental models rebuild them. */
  lostRows: readonly string[];
  /** Each practice's position after the chunk, with the rows it read. */
  watermarks: readonly { tenant: string; wm: Watermark; rows: number }[];
  /** Practices whose watermark of this stream goes (a backfill range read to its end). */
  dropWatermarks?: readonly string[];
  /** Raw's columns once this commits (columns the chunk added); undefined: unchanged. */
  columns?: ColumnInfo[];
}

/**
 * The one warehouse transaction of every watermark capture chunk: one practice's chunk read
 * inside it (capture-chunk.ts), a chunk staged ahead in a file (steady-capture.ts), or a
 * batch's small backlogs read together (group-capture.ts). In it: the practices' capture locks,
 * the caller's rows (`write`), the moved-row check against the OLTP, the deletion epochs and
 * the new watermarks. All of it commits or none does, so a crash anywhere re-reads the same
 * rows and never skips one. Raw's known columns change only once the transaction committed.
 * Returns the caller's result, and the practices whose slices lost rows that moved to one of
 * `lock.tenants` (moved-rows.ts).
 */
export async function chunkTransaction<R>(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  /** The table's capture state (capture-chunk.ts RawState): raw's columns as last committed. */
  raw: { columns: ColumnInfo[] },
  lock: { tenants: readonly string[]; stream: string },
  write: (s: Session) => Promise<ChunkWrites<R>>,
): Promise<{ result: R; movedOutOf: string[] }> {
  const done = await wh.transaction(async (s) => {
    if (lock.tenants.length === 1) await lockTenant(s, metaSchema, spec.label, lock.tenants[0]!);
    else await lockTenants(s, metaSchema, spec.label, lock.tenants);
    const w = await write(s);
    const movedOutOf = (await removeMovedRows(s, oltp, spec, metaSchema, w.elsewhere, lock.tenants)).tenants;
    await countDeletion(s, metaSchema, relationKey({ schema: spec.rawSchema, identifier: spec.table }), w.lostRows);
    for (const tenant of w.dropWatermarks ?? []) await deleteWatermark(s, metaSchema, spec.label, tenant, lock.stream);
    if (w.watermarks.length === 1) {
      const [{ tenant, wm, rows }] = w.watermarks as [{ tenant: string; wm: Watermark; rows: number }];
      await writeWatermark(s, metaSchema, spec.label, tenant, lock.stream, wm, rows);
    } else await writeWatermarks(s, metaSchema, spec.label, lock.stream, w.watermarks);
    return { ...w, movedOutOf };
  }, { serializeOn: rawRowsTurn(spec) });
  if (done.columns) raw.columns = done.columns;
  return { result: done.result, movedOutOf: done.movedOutOf };
}

/**
 * The `serializeOn` key of every transaction that writes a raw table's rows with the moved-row
 * check: a moved row's two copies may arrive in two such transactions at once, and the one
 * committed second must see the other's.
 */
export function rawRowsTurn(spec: Pick<ResolvedSpec, 'rawSchema' | 'table'>): string {
  return `raw rows of ${quoteRelation(spec.rawSchema, spec.table)}`;
}
