import type { SqlParam } from './sql-param.ts';

/** CSV rows readable by warehouse statements (Adapter.csvFileReader); gone after `dispose`. */
export interface CsvFileRelation {
  /** The rows as a relation; `first` is the number of its first bound parameter. */
  relation(first: number): { sql: string; params: SqlParam[] };
  dispose(): Promise<void>;
}

/**
 * An engine's own CSV reader, for loads that need neither line numbers nor JavaScript values
 * (warehouse/load-csv-engine.ts). The rows never become JavaScript values.
 */
export interface CsvFileReader {
  /**
   * The bytes of a CSV file (uncompressed) as rows of `header.length` VARCHAR columns named by
   * `header`, its first line skipped as the header, blank lines skipped, an empty field (quoted
   * or not) NULL. Rejects when `data` throws. The rows are parsed when a statement reads the
   * relation, so a ragged row or bad encoding fails that statement; the engine's message may
   * quote the row: never show it.
   */
  open(header: readonly string[], data: AsyncIterable<Buffer>): Promise<CsvFileRelation>;
}
