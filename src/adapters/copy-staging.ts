import type { SqlParam } from './sql-param.ts';

/** A column of a captured chunk: the source's name, raw's type (ingest/source-columns.ts). */
export interface StageColumn {
  name: string;
  rawType: string;
}

/**
 * A capture chunk's rows as the OLTP's COPY gave them, where warehouse statements can read them
 * (ingest/chunk-load.ts upserts them into raw). The rows never become JavaScript values.
 */
export interface StagedCopy {
  /** Bytes of COPY output; 0: no rows. */
  bytes: number;
  /** The last row's values as text (the chunk's position), or undefined when there is none. */
  lastRow: (string | null)[] | undefined;
  /**
   * A relation with the columns' names and raw's types, for statements run in a session of this
   * warehouse (the one that staged it, for `Session.stageCopy`); `first` is the number of its
   * first bound parameter.
   */
  relation(first: number): { sql: string; params: SqlParam[] };
  /** Every read of the relation parses the data again (a file): what is read twice is better kept in a temp table. */
  costlyToRead: boolean;
  /** Removes what staging made; the relation is gone after it. */
  dispose(): Promise<void>;
}

/** How a warehouse engine takes capture chunks (Adapter.copyStaging). */
export interface CopyStaging {
  /** The COPY format to ask the OLTP for: `csv` (every value quoted, NULL as a bare \N) or PostgreSQL's `text`. */
  format: 'csv' | 'text';
  /**
   * Stages before any warehouse transaction (DuckDB: a file in the process's private scratch
   * folder), so the next chunk can be read from the OLTP while one loads. Absent: the engine
   * stages inside the chunk's transaction, `Session.stageCopy`.
   */
  ahead?(columns: readonly StageColumn[], data: AsyncIterable<Buffer>): Promise<StagedCopy>;
}
