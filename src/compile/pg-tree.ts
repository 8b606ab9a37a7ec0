/**
 * Reading libpg-query's JSON tree (the PostgreSQL grammar's parse tree as plain objects): the
 * few accessors every check of model SQL needs, so each check reads the tree the same way.
 */

/** One node of the tree: `{ SelectStmt: {...} }`, `{ String: { sval } }`, … */
export type PgJson = Record<string, unknown>;

export const isObject = (v: unknown): v is PgJson => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The text of a `String` node (a name part), else undefined. */
export const sval = (v: unknown): string | undefined => (isObject(v) && isObject(v.String) ? (v.String.sval as string | undefined) : undefined);

/**
 * A name (as the parser gives it: unquoted parts folded, quoted ones exact) qualified with a
 * schema other than pg_catalog. A quoted `"PG_CATALOG"` is another schema, and one a role may
 * create (PostgreSQL reserves only the lower-case `pg_` prefix).
 */
export function outsideCatalog(parts: readonly string[]): boolean {
  return parts.length > 1 && !(parts.length === 2 && parts[0] === 'pg_catalog');
}

/** The members of a row constructor `(a, b)`, or the expression alone. */
export function elements(x: unknown): unknown[] {
  return isObject(x) && isObject(x.RowExpr) ? ((x.RowExpr.args as unknown[]) ?? []) : [x];
}
