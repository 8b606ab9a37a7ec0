/**
 * Reading libpg-query's JSON tree (the PostgreSQL grammar's parse tree as plain objects): the
 * few accessors every check of model SQL needs, so each check reads the tree the same way.
 */

/** One node of the tree: `{ SelectStmt: {...} }`, `{ String: { sval } }`, … */
export type PgJson = Record<string, unknown>;

export const isObject = (v: unknown): v is PgJson => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The text of a `String` node (a name part), else undefined. */
export const sval = (v: unknown): string | undefined => (isObject(v) && isObject(v.String) ? (v.String.sval as string | undefined) : undefined);
