import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult as KyselyResult,
} from 'kysely';
import type { Row, SqlParam } from '../adapter.ts';

/**
 * Kysely over DuckDB. DuckDB speaks PostgreSQL's dialect for everything tsform's metadata
 * queries need (`$n` parameters, double-quoted identifiers), so the PostgreSQL compiler and
 * adapter are reused; only the driver is DuckDB's.
 */
export interface DuckDBKyselyConnection {
  query(sql: string, params: readonly SqlParam[]): Promise<{ rows: Row[]; rowsChanged: number }>;
  release(): void;
}

export function duckdbKyselyDialect(acquire: () => Promise<DuckDBKyselyConnection>): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db: Kysely<any>) => new PostgresIntrospector(db),
    createDriver: (): Driver => {
      const held = new WeakMap<DatabaseConnection, DuckDBKyselyConnection>();
      return {
        async init() {},
        async acquireConnection() {
          const conn = await acquire();
          const dbConn: DatabaseConnection = {
            async executeQuery<R>(q: CompiledQuery): Promise<KyselyResult<R>> {
              const r = await conn.query(q.sql, q.parameters as SqlParam[]);
              return { rows: r.rows as R[], numAffectedRows: BigInt(r.rowsChanged) };
            },
            // eslint-disable-next-line require-yield
            async *streamQuery() {
              throw new Error('streaming is not supported by the tsform DuckDB Kysely driver');
            },
          };
          held.set(dbConn, conn);
          return dbConn;
        },
        async beginTransaction(c) {
          await c.executeQuery(CompiledQuery.raw('BEGIN TRANSACTION'));
        },
        async commitTransaction(c) {
          await c.executeQuery(CompiledQuery.raw('COMMIT'));
        },
        async rollbackTransaction(c) {
          await c.executeQuery(CompiledQuery.raw('ROLLBACK'));
        },
        async releaseConnection(c) {
          held.get(c)?.release();
        },
        async destroy() {},
      };
    },
  };
}
