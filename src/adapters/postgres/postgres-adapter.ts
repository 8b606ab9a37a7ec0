import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { CancelledError, Codes, TransientError, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { safeDbMessage } from '../safe-message.ts';
import { postgresErrorPosition, withStatement, type StatementPosition } from '../statement-position.ts';
import type {
  TransactionOptions, Adapter, ErrorClass, PracticePartitioning, QueryResult, RelationInfo, Row, Session, SqlParam } from '../adapter.ts';
import { dependentViews } from './dependent-views.ts';
import { createPartitionedTable } from './practice-partitions.ts';
import { checkOneFence } from './practice-lock-fence.ts';
import { inClientTransaction } from './client-transaction.ts';
import { classifyPgError, isPgStatementError } from '../pg-errors.ts';
import { RESULT_TYPES } from './result-types.ts';
import { sessionOptions, withSessionOptions } from './session-options.ts';
import { checkSearchPathSchemas } from './search-path-check.ts';
import type { CopyStaging } from '../copy-staging.ts';
import { stageCopyIn } from './copy-staging.ts';
import { postgresFoldDialect } from './fold-dialect.ts';

export interface PostgresAdapterOptions {
  /** `postgres://user:password@host:port/database`; URL parameters such as `sslmode` are honoured. */
  url: string;
  /** Connections in the pool (default 4); `transaction()` holds one for its whole duration. */
  poolSize?: number;
  /** Shown in `pg_stat_activity` (default `tsform`); a value in the URL wins. */
  applicationName?: string;
  /** Tenant-scoped tables created partitioned by practice (practice-partitions.ts); plain when absent. */
  partitionByPractice?: PracticePartitioning;
  /** Schemas of trusted functions searched after pg_catalog (tsform.yml `search_path:`); none by default. */
  searchPath?: readonly string[];
}

/** Opens a pool and checks that the server answers; fails with TSF409 when it does not. */
export async function createPostgresAdapter(opts: PostgresAdapterOptions): Promise<PostgresAdapter> {
  return PostgresAdapter.open(opts);
}

/**
 * PostgreSQL through `pg`: one pool, one pooled client per transaction, COPY for bulk loads.
 * Every connection runs with `TimeZone=UTC` and results are mapped to the same plain values the
 * DuckDB adapter returns, so that both targets can be compared row for row.
 */
export class PostgresAdapter implements Adapter {
  readonly kind = 'postgres' as const;
  readonly foldDialect = postgresFoldDialect;
  readonly capabilities = { rowLevelSecurity: true, transactionalDdl: true };
  readonly copyStaging: CopyStaging = { format: 'text' };
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly partitioning: PracticePartitioning | undefined,
    private readonly searchPath: readonly string[],
  ) {}

  static async open(opts: PostgresAdapterOptions): Promise<PostgresAdapter> {
    const pool = new pg.Pool({ ...withSessionOptions(opts.url, sessionOptions(opts.searchPath ?? [])), application_name: opts.applicationName ?? 'tsform', max: Math.max(1, opts.poolSize ?? 4), types: RESULT_TYPES });
    // An idle client whose server goes away emits 'error' on the pool; unhandled, it would
    // crash the process. The next checkout gets a fresh connection (or a connection error).
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => undefined);
      const message = `cannot connect to PostgreSQL at ${redactUrl(opts.url)}: ${describePgError(err)}`;
      // A refused or dropped connection may succeed later; a wrong password or database will not.
      const failure = classifyPgError(err) === 'transient' ? new TransientError(message, Codes.connection) : new TsformError(Codes.connection, message);
      failure.cause = err;
      throw failure;
    }
    try {
      await checkSearchPathSchemas(pool, opts.searchPath ?? []);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresAdapter(pool, opts.partitionByPractice, opts.searchPath ?? []);
  }

  async transaction<T>(fn: (session: Session) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    try {
      // READ COMMITTED whatever the server's default: each statement after the lock then sees what the previous holder committed
      const begin = options.serializeOn === undefined ? 'BEGIN' : 'BEGIN ISOLATION LEVEL READ COMMITTED';
      return await inClientTransaction(this.pool, begin, options.timeoutMs, async (client) => {
        if (options.serializeOn !== undefined) await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tsform.serialize', options.serializeOn]);
        const result = await fn(sessionOn(client, this.partitioning));
        await this.checkFence(client);
        return result;
      });
    } catch (err) {
      if (classifyPgError(err) === 'cancelled' && options.timeoutMs !== undefined) {
        throw new CancelledError(`statement cancelled after the node timeout of ${Math.round(options.timeoutMs)} ms`);
      }
      throw err;
    }
  }

  async query(sql: string, params: readonly SqlParam[] = []): Promise<QueryResult> {
    return oneStatement(this.pool, sql, params);
  }

  async tablesWithColumn(schemas: readonly string[], column: string): Promise<{ schema: string; name: string }[]> {
    const { rows } = await this.query(
      `SELECT n.nspname AS s, c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1::text[])
        ORDER BY 1, 2`,
      [[...schemas], column],
    );
    return rows.map((r) => ({ schema: String(r.s), name: String(r.n) }));
  }

  dependentViews(schema: string, name: string, on?: Pick<Session, 'query'>): Promise<{ schema: string; name: string }[]> {
    return dependentViews(on ?? this, schema, name);
  }

  async describe(schema: string, name: string): Promise<RelationInfo | undefined> {
    // pg_catalog rather than information_schema: it lists materialized views, and shows
    // relations whatever the current role's privileges on them.
    const { rows } = await this.query(
      `SELECT c.relkind::text AS relkind, a.attname AS column_name, lower(format_type(a.atttypid, a.atttypmod)) AS data_type,
              (SELECT i.inhparent::regclass::text FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1) AS partition_of
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
        ORDER BY a.attnum`,
      [schema, name],
    );
    const first = rows[0];
    if (!first) return undefined;
    return {
      kind: first.relkind === 'v' || first.relkind === 'm' ? 'view' : 'table',
      columns: rows.filter((r) => r.column_name !== null).map((r) => ({ name: String(r.column_name), type: String(r.data_type) })),
      ...(first.partition_of ? { partitionOf: String(first.partition_of) } : {}),
    };
  }

  classifyError(err: unknown): ErrorClass {
    return classifyPgError(err);
  }

  isStatementError(err: unknown): boolean {
    return isPgStatementError(err);
  }

  describeError(err: unknown): string {
    const text = describePgError(err);
    // A function named in the statement (it has a position; a name read from a row has none)
    // may exist in a schema the pinned path does not search (session-options.ts).
    const e = err as { code?: unknown; position?: unknown } | null;
    if (e?.code !== '42883' || e.position === undefined) return text;
    const searched = ['pg_catalog', ...this.searchPath].join(', ');
    return `${text} (tsform's sessions search ${searched} only: list an extension's schema in the target's search_path in tsform.yml)`;
  }

  errorPosition(err: unknown): StatementPosition | undefined {
    return postgresErrorPosition(err);
  }

  /**
   * The practice locks this process holds, checked before every COMMIT: a run whose lock
   * connection ended (killed by an administrator, a network cut the server noticed) may have
   * had its practices taken by another process, so it must not write. Left: the instant
   * between this check and COMMIT.
   */
  private readonly fences = new Set<{ pid: number; locks: number }>();

  private async checkFence(client: pg.PoolClient): Promise<void> {
    for (const fence of this.fences) await checkOneFence(client, fence);
  }

  async tryLockTenants(tenants: readonly string[]): Promise<{ held: { tenant: string; holder: string }[]; release(): Promise<void> }> {
    // Session-level advisory locks on one dedicated connection: released when it ends, even if
    // this process is killed. Keyed (hashtext('tsform.tenant'), hashtext(id)); a hash collision
    // only makes two practices wait for each other.
    const client = await this.pool.connect();
    // The lock connection may be ended under the run (an administrator, a network cut): without
    // a listener its 'error' would crash the process. The fence below then stops every commit.
    let broken: Error | undefined;
    client.on('error', (err: Error) => {
      broken = err;
    });
    const { rows } = await client.query(
      "SELECT t AS tenant, pg_try_advisory_lock(hashtext('tsform.tenant'), hashtext(t)) AS ok FROM unnest($1::text[]) AS t",
      [[...tenants]],
    );
    const missing = rows.filter((r: { ok: boolean }) => !r.ok).map((r: { tenant: string }) => r.tenant);
    const held: { tenant: string; holder: string }[] = [];
    if (missing.length > 0) {
      const holders = await client.query(
        `SELECT t AS tenant, coalesce(a.application_name, '') || ' pid ' || l.pid || ' since ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') AS holder
           FROM unnest($1::text[]) AS t
           JOIN pg_locks l ON l.locktype = 'advisory' AND l.classid::int = hashtext('tsform.tenant') AND l.objid::int = hashtext(t) AND l.granted
           LEFT JOIN pg_stat_activity a ON a.pid = l.pid`,
        [missing],
      );
      const byTenant = new Map(holders.rows.map((r: { tenant: string; holder: string }) => [r.tenant, r.holder]));
      for (const t of missing) held.push({ tenant: t, holder: String(byTenant.get(t) ?? 'another session') });
    }
    let fence: { pid: number; locks: number } | undefined;
    if (held.length === 0) {
      // Distinct keys: two practice ids whose hashes collide hold one lock.
      const mine = await client.query(
        "SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND classid::int = hashtext('tsform.tenant') AND granted",
      );
      fence = { pid: Number(mine.rows[0].pid), locks: Number(mine.rows[0].n) };
      this.fences.add(fence);
    }
    return {
      held,
      release: async () => {
        if (fence) this.fences.delete(fence);
        if (!broken) await client.query('SELECT pg_advisory_unlock_all()').catch((err: Error) => (broken = err));
        client.release(broken);
      },
    };
  }

  async ensureSchema(schema: string): Promise<void> {
    await this.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

function sessionOn(client: pg.PoolClient, partitioning: PracticePartitioning | undefined): Session {
  return {
    ...(partitioning
      ? {
          createPartitionedLike: (schema: string, name: string, likeTemp: string, tenantColumn: string) =>
            createPartitionedTable((sql, params) => oneStatement(client, sql, params), partitioning, schema, name, likeTemp, tenantColumn),
        }
      : {}),
    query: (sql, params = []) => oneStatement(client, sql, params),
    async runScript(sql) {
      // The simple-query protocol: several statements in one message. tsform's own DDL only
      // (Session.runScript); model SQL never comes here.
      await client.query(sql);
    },
    createTempTableAs: (name, selectSql, params) => createTempTableAs(client, name, selectSql, params),
    dropTempTable: async (name) => {
      await oneStatement(client, `DROP TABLE IF EXISTS pg_temp.${quoteIdent(name)}`, []);
    },
    columnTypeChanges: async (schema, name, temp) => {
      const type = (a: string) => `lower(format_type(${a}.atttypid, ${a}.atttypmod))`;
      const { rows } = await oneStatement(
        client,
        `SELECT t.attname AS c, ${type('t')} AS f, ${type('n')} AS n
           FROM pg_attribute t JOIN pg_attribute n ON n.attname = t.attname AND n.attrelid = to_regclass('pg_temp.' || quote_ident($3)) AND n.attnum > 0 AND NOT n.attisdropped
          WHERE t.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) AND t.attnum > 0 AND NOT t.attisdropped
            AND (t.atttypid, t.atttypmod) <> (n.atttypid, n.atttypmod)
          ORDER BY t.attnum`,
        [schema, name, temp],
      );
      return rows.map((r) => ({ column: String(r.c), from: String(r.f), to: String(r.n) }));
    },
    insertText: (schema, table, columns, rows) => copyText(client, schema, table, columns, rows),
    copyInText: (schema, table, columns, data) => copyInText(client, schema, table, columns, data),
    stageCopy: (columns, data) =>
      stageCopyIn({ query: (sql, params = []) => oneStatement(client, sql, params), copyInText: (schema, table, names, rows) => copyInText(client, schema, table, names, rows) }, columns, data),
  };
}

/** COPY ... FROM STDIN in text format, fed straight from another server's COPY TO STDOUT. */
async function copyInText(client: pg.PoolClient, schema: string, table: string, columns: readonly string[], data: AsyncIterable<Buffer>): Promise<number> {
  if (columns.length === 0) throw new Error(`copyInText into ${schema}.${table} needs at least one column`);
  const copy = client.query(copyFrom(`COPY ${quoteRelation(schema, table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(data), copy);
  return copy.rowCount;
}

/**
 * Sent with the extended protocol, CREATE TABLE AS binds parameters on PostgreSQL 15 too (the
 * inner query is analysed with them), so this is one statement as on DuckDB. The table is
 * dropped at commit, since a Session lives for one transaction, and replaces an earlier one of
 * the same name.
 */
async function createTempTableAs(client: pg.PoolClient, name: string, selectSql: string, params: readonly SqlParam[]): Promise<void> {
  // pg_temp: an unqualified DROP would hit a regular table of that name when no temp one exists
  await oneStatement(client, `DROP TABLE IF EXISTS pg_temp.${quoteIdent(name)}`, []);
  await oneStatement(client, `CREATE TEMPORARY TABLE ${quoteIdent(name)} ON COMMIT DROP AS\n${selectSql}`, params);
  // Autovacuum never sees temp tables, so without this the planner joins them blind: one batch's
  // leak scan over 14k staged rows took 185 s (two nested-loop joins, 90 s each), 3.5 s analyzed.
  await oneStatement(client, `ANALYZE ${quoteIdent(name)}`, []);
}

/** Rows per chunk written to the COPY stream: small strings, and backpressure between them. */
const COPY_CHUNK_ROWS = 1000;

/**
 * COPY ... FROM STDIN in CSV format. Every non-null field is quoted and NULL is the unquoted
 * token `\N`, so `''`, `'\N'` and NULL stay distinct; quotes, commas, newlines and backslashes
 * need no other escaping in quoted CSV fields.
 */
async function copyText(client: pg.PoolClient, schema: string, table: string, columns: readonly string[], rows: readonly (string | null)[][]): Promise<void> {
  if (columns.length === 0) throw new Error(`insertText into ${schema}.${table} needs at least one column`);
  if (rows.length === 0) return;
  const columnList = columns.map(quoteIdent).join(', ');
  const copy = client.query(copyFrom(`COPY ${quoteRelation(schema, table)} (${columnList}) FROM STDIN WITH (FORMAT csv, NULL '\\N')`));
  await pipeline(Readable.from(csvChunks(schema, table, columns.length, rows)), copy);
}

function* csvChunks(schema: string, table: string, width: number, rows: readonly (string | null)[][]): Generator<string> {
  let lines: string[] = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    // A ragged row is a bug upstream (CSV files are checked at load, TSF109); no padding.
    if (row.length !== width) throw new Error(`insertText into ${schema}.${table}: row ${r + 1} has ${row.length} values for ${width} columns`);
    lines.push(row.map(csvField).join(','));
    if (lines.length === COPY_CHUNK_ROWS) {
      yield `${lines.join('\n')}\n`;
      lines = [];
    }
  }
  if (lines.length > 0) yield `${lines.join('\n')}\n`;
}

function csvField(value: string | null): string {
  return value === null ? '\\N' : `"${value.replaceAll('"', '""')}"`;
}

const RESULT_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * One statement through the extended query protocol, always: `pg` uses it only when a value is
 * bound and otherwise sends the text as a simple query, in which PostgreSQL runs every statement
 * of a `select 1; grant ...; create policy ...` as the owner. In a Parse message PostgreSQL
 * itself refuses a second statement (42601 "cannot insert multiple commands into a prepared
 * statement") before running any: TsformError TSF416.
 */
async function oneStatement(on: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlParam[]): Promise<QueryResult> {
  let result: pg.QueryResult;
  try {
    // queryMode is read by pg's Query (lib/query.js requiresPreparation) but not typed by @types/pg.
    result = await on.query({ text: sql, values: [...params], queryMode: 'extended' } as pg.QueryConfig);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    if (e.code === '42601' && /cannot insert multiple commands into a prepared statement/.test(String(e.message))) {
      const refused = new TsformError(Codes.multipleStatements, 'PostgreSQL refused a text holding more than one SQL statement: a model (or test) is exactly one SELECT');
      refused.cause = err;
      throw refused;
    }
    throw withStatement(err, sql);
  }
  return {
    rows: result.rows as Row[],
    columns: (result.fields ?? []).map((f) => f.name),
    rowsChanged: RESULT_COMMANDS.has(result.command) ? (result.rowCount ?? 0) : 0,
  };
}

// ---- connection -------------------------------------------------------------------------

/** host:port/database, without user or password. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

// ---- errors -----------------------------------------------------------------------------

/** A PostgreSQL error as one line that is safe to log, through the one redactor (its SQLSTATE decides what is kept). */
export function describePgError(err: unknown): string {
  return safeDbMessage(err, 1);
}

