import type { QueryResult, SqlParam } from '../adapter.ts';

/** Runs one statement; the adapter's pool or a session's connection. */
type Run = (sql: string, params: readonly SqlParam[]) => Promise<QueryResult>;

/**
 * DuckDB catalog questions asked outside `describe`. A schema kept in a database file of its own
 * (research, vault) is that database's `main`, so a schema name is looked for both ways.
 */

/** Base tables in `schemas` with the column (identifiers match in any case here); `attached`: those of `schemas` that are files of their own. */
export async function tablesWithColumn(run: Run, schemas: readonly string[], attached: readonly string[], column: string): Promise<{ schema: string; name: string }[]> {
  const { rows } = await run(
    `SELECT CASE WHEN t.database_name = current_database() THEN t.schema_name ELSE t.database_name END AS s, t.table_name AS n
       FROM duckdb_tables() t JOIN duckdb_columns() c USING (database_name, schema_name, table_name)
      WHERE lower(c.column_name) = lower($2)
        AND ((t.database_name = current_database() AND t.schema_name = ANY($1::VARCHAR[]))
             OR (t.database_name = ANY($3::VARCHAR[]) AND t.schema_name = 'main'))
      ORDER BY 1, 2`,
    [[...schemas], column, [...attached]],
  );
  return rows.map((r) => ({ schema: String(r.s), name: String(r.n) }));
}

/** Columns of `schema.name` whose type differs from the same column of the temporary table `temp`. */
export async function columnTypeChanges(run: Run, schema: string, name: string, temp: string): Promise<{ column: string; from: string; to: string }[]> {
  const { rows } = await run(
    `SELECT t.column_name AS c, lower(t.data_type) AS f, lower(n.data_type) AS n
       FROM duckdb_columns() t JOIN duckdb_columns() n ON n.column_name = t.column_name AND n.database_name = 'temp' AND n.table_name = $3
      WHERE ((t.database_name = current_database() AND t.schema_name = $1) OR (t.database_name = $1 AND t.schema_name = 'main'))
        AND t.table_name = $2 AND t.data_type <> n.data_type
      ORDER BY t.column_index`,
    [schema, name, temp],
  );
  return rows.map((r) => ({ column: String(r.c), from: String(r.f), to: String(r.n) }));
}
