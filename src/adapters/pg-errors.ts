import { Codes, errorClassOf, type Code, type ErrorClass } from '../errors.ts';

/**
 * PostgreSQL's error codes, read here only (DESIGN: one classifier per engine). The warehouse
 * adapter and the OLTP source of capture (ingest/) both ask these functions; nothing else lists
 * SQLSTATEs. Beside the engines' folders, not in postgres/: it loads no driver, and the OLTP is
 * PostgreSQL whichever engine the warehouse is, so capture reads it without importing an adapter.
 * Redaction of messages is another concern and lives in safe-message.ts.
 */

/** Node's socket and name-lookup errors: the server was not reached or went away. */
const CONNECTION_NODE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENETRESET',
  // Name lookup: EAI_AGAIN is the resolver's "try again"; ENOTFOUND is retried too, since a
  // container's DNS often answers it while the database's name is not registered yet.
  'EAI_AGAIN', 'ENOTFOUND',
]);

/** pg's own words when the socket closes or a connect times out (its errors carry no code then). */
const CONNECTION_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/i;

/** The server ended the session: admin_shutdown, crash_shutdown, cannot_connect_now. */
const SERVER_ENDED = new Set(['57P01', '57P02', '57P03']);

const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '55P03', // lock_not_available
]);

/** query_canceled: tsform's statement_timeout at the node timeout, or a cancel request. */
const CANCELED = '57014';

/** Catalog indexes two sessions collide on when they create the same object at once. */
const CATALOG_INDEXES = new Set(['pg_type_typname_nsp_index', 'pg_class_relname_nsp_index', 'pg_namespace_nspname_index']);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Transient: connection loss (class 08, the server ending the session, socket errors),
 * serialization failures, deadlocks, lock and connection-slot shortages, and catalog collisions of
 * two sessions creating one object. Cancelled: 57014. Everything else (a SQL error in a model) is
 * permanent. A TsformError is its own class.
 */
export function classifyPgError(err: unknown): ErrorClass {
  const own = errorClassOf(err);
  if (own) return own;
  if (codeOf(err) === CANCELED) return 'cancelled';
  return isLostConnection(err) || isConcurrencyFailure(err) ? 'transient' : 'permanent';
}

/**
 * classifyPgError for an error that came from PostgreSQL's driver or socket (a SQLSTATE, a Node
 * socket code, pg's own connection messages); undefined for any other, e.g. a DuckDB warehouse's,
 * which its own adapter classifies. The OLTP is PostgreSQL whatever the warehouse is.
 */
export function classifyIfPgError(err: unknown): ErrorClass | undefined {
  const own = errorClassOf(err);
  if (own) return own;
  const code = codeOf(err);
  const fromPg = (code !== undefined && (/^[0-9A-Z]{5}$/.test(code) || CONNECTION_NODE_CODES.has(code))) || isLostConnection(err);
  return fromPg ? classifyPgError(err) : undefined;
}

/** A SQLSTATE of class 42 (syntax error or access rule violation): the statement fails for every practice bound to it. */
export function isPgStatementError(err: unknown): boolean {
  const own = errorClassOf(err);
  return own === undefined && /^42/.test(codeOf(err) ?? '');
}

/**
 * The tsform code of a driver error that is not a statement's fault: TSF411 for a cancelled
 * statement, TSF409 for a lost connection; undefined for the rest (a SQL error, TSF401).
 */
export function pgFailureCode(err: unknown): Code | undefined {
  if (codeOf(err) === CANCELED) return Codes.timeout;
  return isLostConnection(err) ? Codes.connection : undefined;
}

function isLostConnection(err: unknown): boolean {
  const code = codeOf(err);
  if (code !== undefined && (CONNECTION_NODE_CODES.has(code) || SERVER_ENDED.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  // Node reports a refused dual-stack connect as an AggregateError of per-address errors.
  if (err instanceof AggregateError && err.errors.some(isLostConnection)) return true;
  return err instanceof Error && CONNECTION_MESSAGES.test(err.message);
}

function isConcurrencyFailure(err: unknown): boolean {
  const code = codeOf(err);
  if (code === undefined) return false;
  if (TRANSIENT_SQLSTATES.has(code)) return true;
  const message = (err as Error).message ?? '';
  // Two sessions creating the same table at once collide in the catalog; the retry sees it exists.
  const constraint = (err as { constraint?: unknown }).constraint;
  if (code === '23505' && typeof constraint === 'string' && CATALOG_INDEXES.has(constraint)) return true;
  if (code === 'XX000' && /tuple concurrently updated/.test(message)) return true;
  // CREATE TABLE IF NOT EXISTS from two batches at once: the loser sees the winner's table on retry.
  return (code === '42710' || code === '42P07') && /already exists/.test(message);
}
