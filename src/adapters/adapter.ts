import type { CopyStaging, StageColumn, StagedCopy } from './copy-staging.ts';
import type { FoldDialect } from './fold-dialect.ts';
import type { SqlParam } from './sql-param.ts';
import type { StatementPosition } from './statement-position.ts';
import type { ErrorClass } from '../errors.ts';

export type { ErrorClass } from '../errors.ts';
export type { SqlParam } from './sql-param.ts';

/**
 * The only door to the warehouse (capture reads the OLTP through `OltpSource`, oltp-source.ts).
 * The runner speaks SQL text that both targets accept (standard quoting, `$n` parameters); what
 * differs between engines lives behind this interface.
 */

export type TargetKind = 'duckdb' | 'postgres';

export type Row = Record<string, unknown>;

export interface QueryResult {
  rows: Row[];
  /** Result column names, in order (present even when there are no rows). */
  columns: string[];
  /** Rows inserted, updated or deleted by the statement (0 for queries). */
  rowsChanged: number;
}

export interface Session {
  /**
   * Exactly one statement. The engine itself refuses a text holding more (PostgreSQL's extended
   * query protocol, a DuckDB prepared statement): TsformError TSF416, nothing run. Every
   * statement that carries model SQL goes through here or `createTempTableAs`.
   */
  query(sql: string, params?: readonly SqlParam[]): Promise<QueryResult>;
  /**
   * Several statements of tsform's own DDL, rendered from policies.yml templates (row-level
   * security, grants, the re-identification function); no parameters. Never model SQL.
   */
  runScript(sql: string): Promise<void>;
  /**
   * `CREATE TEMPORARY TABLE name AS <select>` with bound parameters, one statement on both
   * engines (PostgreSQL binds them in CREATE TABLE AS when sent with the extended protocol).
   * Replaces an earlier temp table of that name; on PostgreSQL the table is dropped at commit.
   */
  createTempTableAs(name: string, selectSql: string, params: readonly SqlParam[]): Promise<void>;
  /** Drops this session's temp table of that name, if any (DuckDB keeps temp tables past a commit; PostgreSQL's of createTempTableAs go at commit). */
  dropTempTable(name: string): Promise<void>;
  /**
   * Bulk-inserts text values into an existing table (the appender on DuckDB, COPY on
   * PostgreSQL). `null` is SQL NULL. A column that is not VARCHAR gets the engine's cast of the
   * text (both engines parse it as they would a literal; a value that does not parse fails the
   * call). `columns` must be all of the table's columns in table order: DuckDB's appender fills
   * columns by position and ignores the names.
   */
  insertText(schema: string, table: string, columns: readonly string[], rows: readonly (string | null)[][]): Promise<void>;
  /**
   * Streams bytes in PostgreSQL's COPY text format (what `COPY ... TO STDOUT` writes) into an
   * existing table, typed or not, without turning them into values on the way (COPY FROM STDIN
   * on PostgreSQL). Absent where the engine has no such input; callers fall back to insertText.
   * Returns the rows written.
   */
  copyInText?(schema: string, table: string, columns: readonly string[], data: AsyncIterable<Buffer>): Promise<number>;
  /**
   * A capture chunk's COPY output (in the engine's `copyStaging.format`), staged for this
   * transaction's statements: a temp table on PostgreSQL, a scratch file on DuckDB.
   */
  stageCopy(columns: readonly StageColumn[], data: AsyncIterable<Buffer>): Promise<StagedCopy>;
  /**
   * Creates a tenant-scoped table with the columns of temp table `likeTemp`, partitioned by
   * practice (a PostgreSQL target's `partition_by_practice`); a no-op when it exists. Absent
   * where tenant-scoped tables are not partitioned: callers create a plain table.
   */
  createPartitionedLike?(schema: string, name: string, likeTemp: string, tenantColumn: string): Promise<void>;
  /**
   * Columns of `schema.name` whose type differs from the column of the same name in the temporary
   * table `temp` (types as the engine names them). A slice written into a table whose column
   * changed type is cast: `1.7` went into an INTEGER column as 2, and the run succeeded.
   */
  columnTypeChanges(schema: string, name: string, temp: string): Promise<{ column: string; from: string; to: string }[]>;
}

/** `partition_by_practice` of a PostgreSQL target (postgres/practice-partitions.ts). */
export interface PracticePartitioning {
  /** Practices with a LIST partition of their own: the largest. */
  list: readonly string[];
  /** HASH subpartitions of the DEFAULT partition that holds every other practice. */
  hashPartitions: number;
}

export interface TransactionOptions {
  /**
   * A statement still running after this long is cancelled; the transaction then rolls back
   * and throws CancelledError TSF411 (never retried). PostgreSQL counts from the start of each
   * statement (statement_timeout), DuckDB from the start of the transaction (one timer, then interrupt).
   */
  timeoutMs?: number;
  /**
   * Transactions given the same key run one after another on this warehouse: each starts its
   * statements once the previous one committed or rolled back, so it reads every row that one
   * wrote (two at once would each read a snapshot without the other's rows). DuckDB waits in the
   * process (one process writes a file), PostgreSQL on a transaction-scoped advisory lock (any
   * number of processes). A key names something of tsform's own, e.g. a raw table; never a value.
   */
  serializeOn?: string;
}

export interface AdapterCapabilities {
  /** Roles, GRANT and row-level security exist (PostgreSQL). */
  rowLevelSecurity: boolean;
  /** CREATE/DROP inside a transaction roll back with it. */
  transactionalDdl: boolean;
}

export interface ColumnInfo {
  name: string;
  /** Engine type name, lower case. */
  type: string;
}

export interface RelationInfo {
  kind: 'table' | 'view';
  columns: ColumnInfo[];
  /** PostgreSQL: the table this one is a partition of (`schema.name`); a model never writes into one. */
  partitionOf?: string;
}

export interface Adapter {
  readonly kind: TargetKind;
  readonly capabilities: AdapterCapabilities;
  /** How capture chunks reach this engine (copy-staging.ts). */
  readonly copyStaging: CopyStaging;
  /** How logical capture's queue fold reads JSON on this engine (fold-dialect.ts). */
  readonly foldDialect: FoldDialect;
  /**
   * Runs `fn` in one transaction on one connection and commits; rolls back and rethrows when
   * `fn` throws, and also when the engine reports a failed commit.
   */
  transaction<T>(fn: (session: Session) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** One statement in its own implicit transaction; a text holding more is refused as in `Session.query`. */
  query(sql: string, params?: readonly SqlParam[]): Promise<QueryResult>;
  /** Table or view with its columns, or undefined when it does not exist. */
  describe(schema: string, name: string): Promise<RelationInfo | undefined>;
  /** Creates a schema if missing; on DuckDB a schema that is an attached database file (research, vault) is left as it is. */
  ensureSchema(schema: string): Promise<void>;
  /**
   * Base tables in `schemas` with a column named `column`: no views, no partitions (their parent
   * is listed). What a catalog holds beside what the manifest names (purge: a renamed model's table).
   */
  tablesWithColumn?(schemas: readonly string[], column: string): Promise<{ schema: string; name: string }[]>;
  /**
   * What retrying a failure would do (errors.ts ErrorClass): `transient` (connection loss, write
   * conflict, deadlock) may succeed; `permanent` and `cancelled` (a statement timeout, an
   * interrupt) are never retried. A TsformError is its own class. Each engine's classifier is the
   * only code that reads that engine's error texts and SQLSTATEs.
   */
  classifyError(err: unknown): ErrorClass;
  /**
   * The statement itself is wrong (a parse or bind error, an unknown relation or column): it
   * fails whichever practices are bound, so splitting a failed batch cannot isolate one practice.
   */
  isStatementError(err: unknown): boolean;
  /** One line about a failed statement that is safe to log: no row values (they may be PHI). */
  describeError(err: unknown): string;
  /** Where in the statement sent the engine says the error is, when it says (DuckDB's `LINE n:`, PostgreSQL's position). */
  errorPosition?(err: unknown): StatementPosition | undefined;
  /**
   * Per-practice locks held until `release`, so that two tsform processes never write one
   * practice at once. Returns the practices another process holds, with who holds them.
   * Absent where the engine already allows one writing process (DuckDB's file lock).
   */
  tryLockTenants?(tenants: readonly string[]): Promise<{ held: { tenant: string; holder: string }[]; release(): Promise<void> }>;
  /**
   * Views that read this relation, directly or through other views (PostgreSQL, which refuses to
   * drop a relation they read). Absent where the engine records no such dependency (DuckDB).
   * `on`: read in that transaction (which may hold locks on the relation) instead of on the pool.
   */
  dependentViews?(schema: string, name: string, on?: Pick<Session, 'query'>): Promise<{ schema: string; name: string }[]>;
  close(): Promise<void>;
}
