import type { Session, SqlParam } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/**
 * How tsform's own tables are defined (each table's row type is derived from its definition, so
 * DDL and code cannot drift), their DDL, the same text on both engines, and typed row writes.
 * The tables themselves: meta-schema.ts (with their migrations) and vault-tables.ts.
 */

/** Column types of tsform's own tables; DuckDB and PostgreSQL spell them alike. */
type SqlType = 'VARCHAR' | 'BIGINT' | 'INTEGER' | 'DATE' | 'TIMESTAMPTZ';

interface Column {
  type: SqlType;
  nullable?: true;
}

export type Columns = Record<string, Column>;

export interface TableDef<C extends Columns = Columns> {
  name: string;
  columns: C;
  primaryKey?: readonly string[];
}

/** Values as written: numbers for integer columns, text (ISO for dates and times) for the rest. */
type ValueOf<T extends SqlType> = T extends 'BIGINT' | 'INTEGER' ? number : string;

/** One row of a table, as `insertRows` takes it. */
export type RowOf<T extends TableDef> = {
  [K in keyof T['columns']]: ValueOf<T['columns'][K]['type']> | (T['columns'][K] extends { nullable: true } ? null : never);
};

export function table<const C extends Columns>(name: string, columns: C, primaryKey?: readonly (keyof C & string)[]): TableDef<C> {
  return { name, columns, primaryKey };
}

/** The column kinds most tables use: text, a count or id, an instant. */
export const text = { type: 'VARCHAR' } as const;
export const count = { type: 'BIGINT' } as const;
export const instant = { type: 'TIMESTAMPTZ' } as const;

export type Queryable = Pick<Session, 'query'>;

/** `CREATE TABLE IF NOT EXISTS` of a definition; the same text on both engines. */
export function createTableSql(schema: string, t: TableDef): string {
  const cols = Object.entries(t.columns).map(([name, c]) => `${quoteIdent(name)} ${c.type}${c.nullable ? '' : ' NOT NULL'}`);
  if (t.primaryKey?.length) cols.push(`PRIMARY KEY (${t.primaryKey.map(quoteIdent).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${quoteRelation(schema, t.name)} (${cols.join(', ')})`;
}

const ROWS_PER_INSERT = 500;

/** From this many rows, insertRows binds one array per column instead of one value per cell. */
const ROWS_AS_ARRAYS = 50;

/**
 * Inserts rows with bound values, each cast to its column's type. A few rows go as VALUES (500
 * a statement); more go as one array per column, unnested (a run's node history: 1,547 rows
 * took DuckDB ~0.7–1.3 s to bind as 17,000 parameters, ~0.05–0.4 s as 22 arrays).
 */
export async function insertRows<T extends TableDef>(q: Queryable, schema: string, t: T, rows: readonly RowOf<T>[]): Promise<void> {
  const names = Object.keys(t.columns);
  const rel = quoteRelation(schema, t.name);
  if (rows.length >= ROWS_AS_ARRAYS && names.every((n) => rows.every((row) => !Array.isArray((row as Record<string, SqlParam>)[n])))) {
    await insertAsArrays(q, rel, t, names, rows);
    return;
  }
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    const tuples = chunk.map((_, r) => `(${names.map((n, c) => `CAST($${r * names.length + c + 1} AS ${t.columns[n]!.type})`).join(', ')})`);
    const params = chunk.flatMap((row) => names.map((n) => (row as Record<string, SqlParam>)[n]!));
    await q.query(`INSERT INTO ${rel} (${names.map(quoteIdent).join(', ')}) VALUES ${tuples.join(', ')}`, params);
  }
}

/**
 * Each column as two text arrays, its values and a NULL flag per row (a bound array holds text
 * only), zipped by unnest in a subquery (PostgreSQL allows no set-returning function in CASE).
 */
async function insertAsArrays<T extends TableDef>(q: Queryable, rel: string, t: T, names: readonly string[], rows: readonly RowOf<T>[]): Promise<void> {
  const cell = (row: RowOf<T>, n: string) => (row as Record<string, SqlParam>)[n];
  const params = names.flatMap((n) => [rows.map((row) => (cell(row, n) === null || cell(row, n) === undefined ? '' : String(cell(row, n)))), rows.map((row) => (cell(row, n) === null || cell(row, n) === undefined ? '1' : '0'))]);
  const unnested = names.map((_, i) => `unnest($${2 * i + 1}::VARCHAR[]) AS v${i}, unnest($${2 * i + 2}::VARCHAR[]) AS n${i}`).join(', ');
  const values = names.map((n, i) => `CASE WHEN u.n${i} = '1' THEN NULL ELSE CAST(u.v${i} AS ${t.columns[n]!.type}) END`).join(', ');
  await q.query(`INSERT INTO ${rel} (${names.map(quoteIdent).join(', ')}) SELECT ${values} FROM (SELECT ${unnested}) AS u`, params);
}
