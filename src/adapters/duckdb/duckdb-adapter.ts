import {
  DuckDBConnection,
  DuckDBInstance,
  DuckDBListType,
  DuckDBTypeId,
  listValue,
  VARCHAR,
  type DuckDBResultReader,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { CancelledError, Codes, errorClassOf, TsformError } from '../../errors.ts';
import { columnTypeChanges, tablesWithColumn } from './catalog-queries.ts';
import { quoteIdent, sqlLiteral } from '../../sql/quote.ts';
import { safeDbMessage } from '../safe-message.ts';
import { raisedExecuting } from '../error-statements.ts';
import { duckdbErrorPosition, withStatement, type StatementPosition } from '../statement-position.ts';
import type { Adapter, ErrorClass, QueryResult, RelationInfo, Row, Session, SqlParam, TransactionOptions } from '../adapter.ts';
import { holdPrivateScratchDir } from '../scratch-dir.ts';
import { lockDown } from './lock-down.ts';
import { openWaiting } from './open-waiting.ts';
import { preparePrivateFolder, tightenDatabaseFiles } from './private-files.ts';
import { csvFileStaging } from './csv-staging.ts';
import { duckdbFoldDialect } from './fold-dialect.ts';

export interface DuckDBAdapterOptions {
  /** Database file; ':memory:' for tests. */
  path: string;
  /** Connections in the pool; also DuckDB's worker threads. */
  connections?: number;
  /**
   * Another process holding the database file (another tsform run) is waited for this long
   * (default 10 minutes): DuckDB allows one writing process, so two runs never write a practice at once.
   */
  lockWaitMs?: number;
  /** Told once when the file is held by another process, with the holder as DuckDB names it. */
  onWait?: (holder: string) => void;
  /**
   * Schemas kept in database files of their own (research, vault), attached under the schema's
   * name so that `"research"."x"` resolves to that file: handing the research file to a
   * researcher hands over nothing else.
   */
  attach?: Record<string, string>;
  /** Databases read but never written here, e.g. production for `--defer`. */
  attachReadOnly?: Record<string, string>;
  /**
   * DuckDB settings for the whole run (e.g. a benchmark's `checkpoint_threshold`): applied at
   * open, before the configuration is locked; nothing can SET them later.
   */
  settings?: Record<string, string>;
}

/**
 * DuckDB through @duckdb/node-api: one instance, a small pool of connections (DuckDB allows
 * concurrent writers on different rows of one table; notes/duckdb-fanout.md).
 */
export class DuckDBAdapter implements Adapter {
  readonly kind = 'duckdb' as const;
  readonly foldDialect = duckdbFoldDialect;
  readonly capabilities = { rowLevelSecurity: false, transactionalDdl: true };
  readonly copyStaging = csvFileStaging;
  private readonly idle: DuckDBConnection[] = [];
  private readonly waiters: ((c: DuckDBConnection) => void)[] = [];
  /** Per `serializeOn` key: settles when the last transaction queued on it ends. */
  private readonly turns = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    connections: DuckDBConnection[],
    private readonly attached: ReadonlySet<string>,
    private readonly files: readonly string[],
    private readonly releaseScratch: () => void,
  ) {
    this.idle.push(...connections);
  }

  static async open(opts: DuckDBAdapterOptions): Promise<DuckDBAdapter> {
    const size = Math.max(1, opts.connections ?? 2);
    // Every file written here holds PHI or the vault key: 0600 in a 0700 folder (README "File modes").
    const files = [opts.path, ...Object.values(opts.attach ?? {})];
    for (const f of files) preparePrivateFolder(f);
    // Another process holding the file is waited for (open-waiting.ts).
    const instance = await openWaiting(opts.path, { threads: Math.max(2, size), lockWaitMs: opts.lockWaitMs, onWait: opts.onWait, classify: classifyDuckDBError });
    const connections: DuckDBConnection[] = [];
    for (let i = 0; i < size; i++) {
      const conn = await instance.connect();
      // Timestamp arithmetic and AT TIME ZONE must not depend on the machine's zone (PostgreSQL sessions use UTC too).
      await conn.run("SET TimeZone = 'UTC'");
      connections.push(conn);
    }
    for (const [alias, file] of Object.entries(opts.attach ?? {})) {
      // A file path from tsform.yml, not user data; ATTACH takes no parameters.
      await connections[0]!.run(`ATTACH IF NOT EXISTS ${sqlLiteral(file)} AS ${quoteIdent(alias)}`);
    }
    for (const [alias, file] of Object.entries(opts.attachReadOnly ?? {})) {
      await connections[0]!.run(`ATTACH IF NOT EXISTS ${sqlLiteral(file)} AS ${quoteIdent(alias)} (READ_ONLY)`);
    }
    const scratch = holdPrivateScratchDir();
    try {
      await lockDown(connections[0]!, opts.settings ?? {}, scratch.path);
    } catch (err) {
      scratch.release();
      throw err;
    }
    for (const f of files) tightenDatabaseFiles(f);
    return new DuckDBAdapter(instance, connections, new Set(Object.keys(opts.attach ?? {})), files, scratch.release);
  }

  private acquire(): Promise<DuckDBConnection> {
    if (this.closed) return Promise.reject(new Error('DuckDB adapter is closed'));
    const c = this.idle.pop();
    if (c) return Promise.resolve(c);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(c: DuckDBConnection): void {
    const next = this.waiters.shift();
    if (next) next(c);
    else this.idle.push(c);
  }

  async transaction<T>(fn: (session: Session) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    // the turn before the connection: a transaction waiting for its turn holds none
    const endTurn = options.serializeOn === undefined ? undefined : await this.turn(options.serializeOn);
    try {
      return await this.transactionOnConnection(fn, options);
    } finally {
      endTurn?.();
    }
  }

  /** Waits until every earlier transaction of this key ended; call the result when this one ends. */
  private async turn(key: string): Promise<() => void> {
    const previous = this.turns.get(key) ?? Promise.resolve();
    let end!: () => void;
    const mine = new Promise<void>((resolve) => (end = resolve));
    const last = previous.then(() => mine);
    this.turns.set(key, last);
    await previous;
    return () => {
      end();
      if (this.turns.get(key) === last) this.turns.delete(key);
    };
  }

  private async transactionOnConnection<T>(fn: (session: Session) => Promise<T>, options: TransactionOptions): Promise<T> {
    const conn = await this.acquire();
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            conn.interrupt();
          }, options.timeoutMs);
    try {
      await conn.run('BEGIN TRANSACTION');
      let result: T;
      try {
        result = await fn(sessionOn(conn));
      } catch (err) {
        clearTimeout(timer);
        await conn.run('ROLLBACK').catch(() => undefined);
        if (timedOut) throw new CancelledError(`statement interrupted after the node timeout of ${Math.round(options.timeoutMs ?? 0)} ms`);
        throw err;
      }
      clearTimeout(timer);
      // After a failed statement DuckDB may "commit" a rolled-back transaction without an
      // error (notes/duckdb-fanout.md); fn awaits every statement, so a failure never gets here.
      await conn.run('COMMIT');
      return result;
    } finally {
      clearTimeout(timer);
      this.release(conn);
    }
  }

  async query(sql: string, params: readonly SqlParam[] = []): Promise<QueryResult> {
    const conn = await this.acquire();
    try {
      return await runOn(conn, sql, params);
    } finally {
      this.release(conn);
    }
  }

  async describe(schema: string, name: string): Promise<RelationInfo | undefined> {
    const [catalog, inCatalog] = this.attached.has(schema) ? [schema, 'main'] : [null, schema];
    const at = [inCatalog, name, catalog];
    // duckdb_columns() and duckdb_views() apart: the same answer as information_schema's join
    // (which is built on them) in ~7 ms instead of ~35 ms, paid once per batch of every model.
    const { rows } = await this.query(
      `SELECT column_name, lower(data_type) AS data_type FROM duckdb_columns()
        WHERE schema_name = $1 AND table_name = $2 AND database_name = coalesce($3, current_database())
        ORDER BY column_index`,
      at,
    );
    if (rows.length === 0) return undefined;
    const view = await this.query(`SELECT 1 FROM duckdb_views() WHERE schema_name = $1 AND view_name = $2 AND database_name = coalesce($3, current_database())`, at);
    return {
      kind: view.rows.length > 0 ? 'view' : 'table',
      columns: rows.map((r) => ({ name: String(r.column_name), type: String(r.data_type) })),
    };
  }

  tablesWithColumn(schemas: readonly string[], column: string): Promise<{ schema: string; name: string }[]> {
    return tablesWithColumn((sql, params) => this.query(sql, params), schemas, schemas.filter((x) => this.attached.has(x)), column);
  }

  classifyError(err: unknown): ErrorClass {
    return classifyDuckDBError(err);
  }

  isStatementError(err: unknown): boolean {
    return !(err instanceof TsformError) && /^(Parser|Binder|Catalog) Error/.test(err instanceof Error ? err.message : '');
  }

  describeError(err: unknown): string {
    return safeDbMessage(err);
  }

  errorPosition(err: unknown): StatementPosition | undefined {
    return duckdbErrorPosition(err);
  }

  async ensureSchema(schema: string): Promise<void> {
    // An attached file already is the schema; creating one of the same name would make
    // `"research"."x"` ambiguous.
    if (!this.attached.has(schema)) await this.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.idle.splice(0)) c.closeSync();
    this.instance.closeSync();
    for (const f of this.files) tightenDatabaseFiles(f);
    this.releaseScratch();
  }
}

/**
 * DuckDB's error texts, read here only (it has no error codes). Write-write conflicts between
 * concurrent transactions, a failed commit after one, and the file lock of another process are
 * transient; an interrupt is a cancel (tsform interrupts a statement only at the node timeout).
 */
export function classifyDuckDBError(err: unknown): ErrorClass {
  const own = errorClassOf(err);
  if (own) return own;
  const msg = err instanceof Error ? err.message : String(err);
  if (/^INTERRUPT Error/.test(msg)) return 'cancelled';
  // Two transactions inserting one key (e.g. two practices' chunks counting a deletion epoch for
  // the practice a row moved away from) is DuckDB's write conflict on insert: the later one fails
  // with a constraint error, and a retry finds the committed row. Only tsform's own tables have keys.
  return /Conflict on|write-write conflict|TransactionContext Error|Could not set lock on file|^Constraint Error: Duplicate key .* violates (primary key|unique) constraint/i.test(msg) ? 'transient' : 'permanent';
}

function sessionOn(conn: DuckDBConnection): Session {
  return {
    query: (sql, params = []) => runOn(conn, sql, params),
    async runScript(sql) {
      // tsform's own DDL only (Session.runScript); every statement of it, in order.
      await conn.run(sql);
    },
    async createTempTableAs(name, selectSql, params) {
      await runOn(conn, `CREATE OR REPLACE TEMPORARY TABLE ${quoteIdent(name)} AS\n${selectSql}`, params);
    },
    async dropTempTable(name) {
      await runOn(conn, `DROP TABLE IF EXISTS temp.${quoteIdent(name)}`, []);
    },
    stageCopy: (columns, data) => csvFileStaging.ahead!(columns, data),
    columnTypeChanges: (schema, name, temp) => columnTypeChanges((sql, params) => runOn(conn, sql, params), schema, name, temp),
    async insertText(schema, table, columns, rows) {
      const appender = await conn.createAppender(table, schema);
      try {
        for (const row of rows) {
          for (let i = 0; i < columns.length; i++) {
            const v = row[i];
            if (v === null || v === undefined) appender.appendNull();
            else appender.appendVarchar(v);
          }
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
    },
  };
}

const VARCHAR_LIST = new DuckDBListType(VARCHAR);

async function runOn(conn: DuckDBConnection, sql: string, params: readonly SqlParam[]): Promise<QueryResult> {
  const values: DuckDBValue[] = [];
  const types: (DuckDBType | undefined)[] = [];
  for (const p of params) {
    if (Array.isArray(p)) {
      values.push(listValue(p));
      types.push(VARCHAR_LIST);
    } else {
      values.push(p as DuckDBValue);
      types.push(undefined);
    }
  }
  // prepare(), not run(): DuckDB prepares exactly one statement and refuses a text holding more
  // ("Cannot prepare multiple statements at once"), where run() would execute every one of them.
  const prepared = await conn.prepare(sql).catch((err: unknown) => {
    throw withStatement(refusal(err) ?? err, sql);
  });
  try {
    if (params.length) prepared.bind(values, types as DuckDBType[]);
    const reader = await prepared.runAndReadAll();
    return { rows: normalizeRows(reader), columns: reader.columnNames(), rowsChanged: reader.rowsChanged };
  } catch (err) {
    throw withStatement(refusal(err) ?? raisedExecuting(err), sql);
  } finally {
    prepared.destroySync();
  }
}

/** The engine's own walls, as coded errors; the message names no value, path or SQL. */
function refusal(err: unknown): TsformError | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Cannot prepare multiple statements at once/i.test(msg)) {
    return new TsformError(Codes.multipleStatements, 'DuckDB refused a text holding more than one SQL statement: a model (or test) is exactly one SELECT');
  }
  if (/disabled by configuration|disabled through configuration/i.test(msg)) {
    return new TsformError(Codes.externalAccess, 'DuckDB refused to reach the file system, an extension or the environment: external access is switched off for model SQL');
  }
  return undefined;
}

/**
 * Plain JSON-like rows that compare equal across targets: integers as numbers (strings beyond
 * 2^53), DECIMAL as exact strings, DATE as 'YYYY-MM-DD', timestamps as ISO-8601 strings.
 */
function normalizeRows(reader: DuckDBResultReader): Row[] {
  const rows = reader.getRowObjectsJson() as Row[];
  if (rows.length === 0) return rows;
  const names = reader.columnNames();
  const types = reader.columnTypes();
  const fix: [string, (v: unknown) => unknown][] = [];
  names.forEach((name, i) => {
    const id = types[i]?.typeId;
    if (id === DuckDBTypeId.BIGINT || id === DuckDBTypeId.HUGEINT || id === DuckDBTypeId.UBIGINT || id === DuckDBTypeId.UHUGEINT) {
      fix.push([name, (v) => (typeof v === 'string' && Number.isSafeInteger(Number(v)) ? Number(v) : v)]);
    } else if (id === DuckDBTypeId.TIMESTAMP_TZ || id === DuckDBTypeId.TIMESTAMP) {
      fix.push([name, (v) => (typeof v === 'string' ? isoTimestamp(v, id === DuckDBTypeId.TIMESTAMP) : v)]);
    }
  });
  if (fix.length > 0) {
    for (const row of rows) for (const [name, f] of fix) if (row[name] !== null) row[name] = f(row[name]);
  }
  return rows;
}

function isoTimestamp(text: string, naive: boolean): string {
  const d = new Date(naive ? `${text.replace(' ', 'T')}Z` : text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
  return Number.isNaN(d.getTime()) ? text : d.toISOString();
}
