import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { ErrorClass, QueryResult, Row, SqlParam } from '../adapter.ts';
import { classifyIfPgError } from '../pg-errors.ts';
import { CAPTURE_APPLICATION_NAME, type CopyOut, type OltpReadSession, type OltpSource } from '../oltp-source.ts';
import { inClientTransaction } from './client-transaction.ts';
import type { LogicalReplicationSource } from '../logical-replication.ts';
import { PgLogicalReplication } from './pg-logical-replication.ts';
import { searchPathOption, withSessionOptions } from './session-options.ts';

/**
 * OltpSource over `pg` + `pg-copy-streams`. Values come back as PostgreSQL's text, never parsed:
 * capture only passes them on.
 */
export class PgOltpSource implements OltpSource {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
  ) {}

  static async open(url: string, opts: { poolSize?: number; connectTimeoutMs?: number } = {}): Promise<PgOltpSource> {
    // A connect timeout: an unreachable OLTP fails the extract (by practice) instead of hanging the run.
    // search_path: capture names every relation with its schema; a function planted in the OLTP's
    // `public` must not run as the capture role instead of pg_catalog's (session-options.ts).
    const pool = new pg.Pool({ ...withSessionOptions(url, `-c TimeZone=UTC -c DateStyle=ISO ${searchPathOption()}`), max: opts.poolSize ?? 4, connectionTimeoutMillis: opts.connectTimeoutMs ?? 15_000, application_name: CAPTURE_APPLICATION_NAME });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    return new PgOltpSource(pool, url);
  }

  classifyError(err: unknown): ErrorClass | undefined {
    return classifyIfPgError(err);
  }

  async readTransaction<T>(fn: (s: OltpReadSession) => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
    return inClientTransaction(this.pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', options.timeoutMs, (client) => fn(sessionOn(client)));
  }

  async query(sql: string, params: readonly SqlParam[] = []): Promise<QueryResult> {
    return toResult(await this.pool.query(sql, [...params]));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  replication(): LogicalReplicationSource {
    return new PgLogicalReplication(this.url);
  }
}

function sessionOn(client: pg.PoolClient): OltpReadSession {
  return {
    query: async (sql, params = []) => toResult(await client.query(sql, [...params])),
    copyOut: (selectSql, format = 'text') => copyOut(client, `COPY (${selectSql}) TO STDOUT${format === 'csv' ? " WITH (FORMAT csv, NULL '\\N', FORCE_QUOTE *)" : ''}`),
  };
}

/**
 * pg-copy-streams ends the stream at CopyDone and reads the `COPY n` tag from CommandComplete,
 * which may arrive after that; pg hands the query ReadyForQuery after both, so the row count is
 * read there.
 */
function copyOut(client: pg.PoolClient, sql: string): CopyOut {
  // handleReadyForQuery is pg's Submittable hook; pg-copy-streams has it, its types omit it
  const stream = copyTo(sql) as ReturnType<typeof copyTo> & { handleReadyForQuery(): void };
  const rows = new Promise<number>((resolve, reject) => {
    const handleReadyForQuery = stream.handleReadyForQuery.bind(stream);
    stream.handleReadyForQuery = () => {
      handleReadyForQuery();
      resolve(stream.rowCount);
    };
    stream.once('error', reject);
  });
  // an error reaches whoever reads the bytes; rows() rethrows it only when asked
  rows.catch(() => undefined);
  client.query(stream);
  return Object.assign(stream as AsyncIterable<Buffer>, { rows: () => rows });
}

function toResult(r: pg.QueryResult): QueryResult {
  return { rows: r.rows as Row[], columns: r.fields.map((f) => f.name), rowsChanged: r.rowCount ?? 0 };
}
