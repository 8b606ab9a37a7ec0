/**
 * The statement each engine error came from, remembered by the adapters (in memory only:
 * statement texts hold no values, those are bound parameters). The redactor (safe-message.ts)
 * checks a name an error quotes against it; statement-position.ts reads positions in it.
 */

const statements = new WeakMap<object, string>();

/** Remembers the statement an error came from; returns the error, to be thrown. */
export function withStatement<E>(err: E, sql: string): E {
  if (typeof err === 'object' && err !== null && !statements.has(err)) statements.set(err, sql);
  return err;
}

/** The statement an error came from, when an adapter recorded it. */
export function statementOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? statements.get(err) : undefined;
}

const executing = new WeakSet<object>();

/**
 * Marks an error DuckDB raised while the prepared statement ran, rows being read: a name error
 * then names what a row gave (json_each's per-row JSON path was a Binder Error quoting a last
 * name: red-team, 2026-12-07), while one raised preparing it names the statement's text.
 */
export function raisedExecuting<E>(err: E): E {
  if (typeof err === 'object' && err !== null) executing.add(err);
  return err;
}

export function wasRaisedExecuting(err: unknown): boolean {
  return typeof err === 'object' && err !== null && executing.has(err);
}
