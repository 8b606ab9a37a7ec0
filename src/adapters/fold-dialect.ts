/**
 * How an engine reads the logical-capture queue's JSON rows, and orders and picks within a group:
 * the engine-specific parts of the set-based fold (ingest/logical/queue-fold-sql.ts). Column and
 * member names come from the OLTP catalog and are rendered as literals.
 */
export interface FoldDialect {
  /** A number increasing with (lsn, seq) over the batch. */
  position: string;
  /** The JSON row parsed once, to be named `j`; `present`, `value` and `carriesOther` read `j`. */
  parsedRow(): string;
  present(name: string): string;
  value(name: string): string;
  /** Whether `j` carries a column not in `names`. */
  carriesOther(names: readonly string[]): string;
  keyPart(i: number): string;
  /** A queued value's text as raw's type `type` (not VARCHAR); DuckDB refuses what it cannot hold exactly, naming `column` (unloadable-value.ts). */
  cast(expr: string, type: string, column: string): string;
  /** The value of `expr` at the highest `pos` of the group among rows where `filter` holds (NULL values count). */
  last(expr: string, filter?: string): string;
}
