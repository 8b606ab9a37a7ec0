import type { Session } from '../adapters/adapter.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { ChunkTenants, HeldElsewhere } from './slice-upsert.ts';
import type { SourceColumn } from './source-columns.ts';
import type { Watermark } from './watermarks.ts';

/**
 * The OLTP side of one chunk, handed to the engine's loader (duckdb-chunk-load.ts,
 * postgres-chunk-load.ts): the selected columns (the soft-delete column last) and the COPY of the
 * rows after a position, inside the chunk's REPEATABLE READ read transaction.
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

/** What a loader did: the rows read, and the warehouse work left for after the OLTP read. */
export interface ChunkLoad {
  rows: number;
  deleted: number;
  /** `rows` and `deleted` per practice. */
  byTenant: Map<string, { rows: number; deleted: number }>;
  last: Watermark | undefined;
  /** Finishes the upsert into raw (if not done already): the live rows written, and their keys other practices hold. */
  finish(): Promise<{ loaded: number; elsewhere: HeldElsewhere[] }>;
}
