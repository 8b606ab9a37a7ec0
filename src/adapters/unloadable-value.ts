import { randomBytes } from 'node:crypto';
import { Codes, TsformError } from '../errors.ts';
import { sqlLiteral } from '../sql/quote.ts';

/**
 * Captured values DuckDB cannot hold. PostgreSQL's text of a date or timestamp before year 1
 * ends in ` BC`, which DuckDB's DATE parser drops (`1961-07-04 BC` became `1961-07-04`); a
 * timestamp beyond DuckDB's range (PostgreSQL's reaches 294276 AD), a BC timestamp, or `NaN` /
 * `Infinity` in a `numeric(p,s)` do not parse at all, and its CSV reader turns such a
 * TIMESTAMPTZ into NULL (red-team, 2026-12-07, findings 2 and 3). Such values are refused, not
 * converted: DuckDB's timestamp parser takes no BC form, and a value that loads into one engine
 * but not the other would make raw depend on the warehouse. The cast below fails the statement
 * with an error naming the column (TSF422 once `unloadableValueError` has read it), never the value.
 */

/** Raw types whose DuckDB cast of PostgreSQL's text can lose or refuse a value. */
export function needsStrictCast(rawType: string): boolean {
  const t = rawType.toUpperCase();
  return t === 'DATE' || t === 'TIMESTAMP' || t === 'TIMESTAMPTZ' || t.startsWith('DECIMAL(');
}

/**
 * Marks the errors the guarded cast raises. Random per process: only this process's SQL holds
 * it, so no other error (nor a row value a user-raised error might echo) can pass for one.
 */
const MARK = `tsform-unloadable-value-${randomBytes(8).toString('hex')}`;

/**
 * DuckDB SQL: `text` (a VARCHAR holding PostgreSQL's text of the value) as `rawType`, or an error
 * naming `column` when DuckDB would not keep the value exactly: a ` BC` value, or one the type
 * does not parse (`TRY_CAST` is NULL for a non-NULL text). The text is read once per row.
 */
export function duckdbStrictCast(text: string, rawType: string, column: string): string {
  if (!needsStrictCast(rawType)) return `CAST(${text} AS ${rawType})`;
  const raise = `CAST(error(${sqlLiteral(`${MARK} ${JSON.stringify({ column, type: rawType })}`)}) AS ${rawType})`;
  return `coalesce(TRY_CAST(CASE WHEN NOT ends_with(${text}, ' BC') THEN ${text} END AS ${rawType}), CASE WHEN ${text} IS NOT NULL THEN ${raise} END)`;
}

/** The column and type a guarded cast refused, if `err` is that error. */
export function unloadableColumn(err: unknown): { column: string; type: string } | undefined {
  if (err instanceof TsformError) return undefined;
  const message = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  const at = message.indexOf(`${MARK} `);
  if (at < 0) return undefined;
  const rest = message.slice(at + MARK.length + 1).split('\n', 1)[0]!;
  try {
    const parsed = JSON.parse(rest) as { column?: unknown; type?: unknown };
    return typeof parsed.column === 'string' && typeof parsed.type === 'string' ? { column: parsed.column, type: parsed.type } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * TSF422 naming the table (`label`) and the column when `err` is a guarded cast's refusal, else
 * undefined. The message carries no value.
 */
export function unloadableValueError(err: unknown, label: string): TsformError | undefined {
  const bad = unloadableColumn(err);
  if (!bad) return undefined;
  return new TsformError(
    Codes.badValue,
    `capture ${label}: column "${bad.column}" holds a value the warehouse's ${bad.type} cannot hold exactly (a BC date or timestamp, one beyond DuckDB's range, or a not-a-number or infinite numeric); this practice's capture of the table stops there until the OLTP row is corrected (the value is withheld; a PostgreSQL warehouse keeps such values)`,
  );
}
