import type { SqlParam } from './sql-param.ts';

/** A CSV file readable by warehouse statements (Adapter.csvFileReader); gone after `dispose`. */
export interface CsvFileRelation {
  /** The file's rows as a relation; `first` is the number of its first bound parameter. */
  relation(first: number): { sql: string; params: SqlParam[] };
  dispose(): Promise<void>;
}

/**
 * An engine's own CSV reader, for loads that need neither line numbers nor JavaScript values
 * (warehouse/load-csv-engine.ts). The rows never become JavaScript values.
 */
export interface CsvFileReader {
  /**
   * `path` (gzip when it ends in .gz) as rows of `header.length` VARCHAR columns named by
   * `header`, its first row skipped as the header, blank lines skipped, an empty field (quoted
   * or not) NULL. The file is read when a statement reads the relation, so a ragged row or bad
   * encoding fails that statement; the engine's message may quote the row: never show it.
   */
  open(path: string, header: readonly string[]): Promise<CsvFileRelation>;
}
