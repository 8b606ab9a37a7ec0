/**
 * Where in the SQL text sent an engine error points (issue 15 item 7), so that the runner can
 * report it at the model file's line. The adapters remember the statement of each error they
 * throw (in memory only: statement texts hold no values, those are bound parameters).
 */

import { statementOf } from './error-statements.ts';
import { duckdbErrorDescribesStatement } from './safe-message.ts';

export { withStatement } from './error-statements.ts';

/** A 0-based character offset into the statement the error came from. */
export interface StatementPosition {
  statement: string;
  offset: number;
}

/** DuckDB: `LINE n: <text of that line>` and a caret line under it (the text may be cut, with `...`). */
export function duckdbErrorPosition(err: unknown): StatementPosition | undefined {
  const statement = statementOf(err);
  if (statement === undefined) return undefined;
  if (!duckdbErrorDescribesStatement(err)) return undefined;
  const message = err instanceof Error ? err.message : String(err);
  const m = /\nLINE (\d+): ([^\n]*)\n( *)\^/.exec(message);
  if (!m) return undefined;
  const line = Number(m[1]);
  const prefix = `LINE ${m[1]}: `.length;
  const lines = statement.split('\n');
  if (line < 1 || line > lines.length) return undefined;
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  let excerpt = m[2]!;
  let column = m[3]!.length - prefix;
  // A long line is shown cut: find the shown part in the real line to know where the caret is.
  if (excerpt.startsWith('...')) {
    excerpt = excerpt.slice(3);
    column -= 3;
    const at = lines[line - 1]!.indexOf(excerpt.replace(/\.\.\.$/, ''));
    if (at < 0) return { statement, offset: start };
    column += at;
  }
  return { statement, offset: start + Math.max(0, Math.min(column, lines[line - 1]!.length)) };
}

/** PostgreSQL: `position`, 1-based, in characters of the statement. */
export function postgresErrorPosition(err: unknown): StatementPosition | undefined {
  const statement = statementOf(err);
  const position = (err as { position?: unknown } | null)?.position;
  if (statement === undefined || typeof position !== 'string' || !/^\d+$/.test(position)) return undefined;
  return { statement, offset: Math.max(0, Number(position) - 1) };
}
