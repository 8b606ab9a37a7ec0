/**
 * The one place identifiers and literals become SQL text. Both targets (DuckDB, PostgreSQL) use
 * standard double-quoted identifiers, so one function serves both. Values that come from users
 * or tenants are never passed here: they are bound parameters.
 */

/** Quote an identifier (schema, table, column, role). Any string is safe, including quotes. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\u0000')) throw new Error('NUL byte in SQL identifier');
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."name"` */
export function quoteRelation(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A SQL literal for project-level constants (`{{var}}` values from tsform.yml). Never used for
 * tenant ids or row values, which are bound parameters.
 */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`non-finite number ${value} cannot be a SQL literal`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new Error('NUL byte in SQL literal');
    return `'${value.replaceAll("'", "''")}'`;
  }
  throw new Error(`a ${typeof value} cannot be a SQL literal`);
}

/** Safe, simple names for things tsform creates (schemas, tables from file names). */
export const SIMPLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
