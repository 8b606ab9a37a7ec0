import type { ErrorClass, QueryResult, SqlParam } from './adapter.ts';
import type { LogicalReplicationSource } from './logical-replication.ts';

/**
 * The OLTP side of capture: a PostgreSQL database read in short read-only transactions, with
 * COPY TO STDOUT for the bulk of the rows. Declared here, implemented next to the driver
 * (adapters/ is the only layer that may import `pg` and `pg-copy-streams`); capture in ingest/ uses it.
 */
/**
 * The application_name of capture's own OLTP sessions. They only ever read (READ ONLY
 * transactions), so the commit horizon need not wait for them.
 */
export const CAPTURE_APPLICATION_NAME = 'tsform-capture';

export interface OltpSource {
  /**
   * Runs `fn` in one `REPEATABLE READ READ ONLY` transaction on one connection (session time
   * zone UTC, ISO dates), then commits. With `timeoutMs` its statements are cancelled after
   * that long (PostgreSQL statement_timeout).
   */
  readTransaction<T>(fn: (session: OltpReadSession) => Promise<T>, options?: { timeoutMs?: number }): Promise<T>;
  /** One statement outside a read transaction (catalog checks, counts). */
  query(sql: string, params?: readonly SqlParam[]): Promise<QueryResult>;
  close(): Promise<void>;
  /**
   * The class of a failure this source's driver raised (a lost connection, a serialization
   * failure on a standby: transient); undefined for any other error, which the warehouse's
   * adapter classifies. Capture's retries ask this first, whichever engine the warehouse is.
   */
  classifyError(err: unknown): ErrorClass | undefined;
  /** The same database's logical replication stream (log-based capture); absent where the source cannot give one. */
  replication?(): LogicalReplicationSource;
}

export interface OltpReadSession {
  query(sql: string, params?: readonly SqlParam[]): Promise<QueryResult>;
  /**
   * `COPY (<selectSql>) TO STDOUT` as raw byte chunks: `text` (default) is PostgreSQL's text
   * format (tab separated, `\N` for NULL, backslash escapes); `csv` quotes every value and writes
   * NULL as a bare `\N` (`FORMAT csv, NULL '\N', FORCE_QUOTE *`). COPY binds no parameters: values reach the query
   * through `set_config(..., true)` and `current_setting(...)` in the same transaction.
   */
  copyOut(selectSql: string, format?: 'text' | 'csv'): CopyOut;
}

/** A COPY's bytes, and the rows it wrote (PostgreSQL's `COPY n` tag). */
export interface CopyOut extends AsyncIterable<Buffer> {
  /** Resolves once the COPY has ended on the server: after its bytes, before the session's next statement. */
  rows(): Promise<number>;
}
