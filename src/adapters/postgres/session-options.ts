import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent } from '../../sql/quote.ts';

/**
 * The settings of every session tsform opens on the warehouse, given at connection start so that
 * neither a database nor a role default (`ALTER ROLE … SET`) applies:
 *  - `TimeZone=UTC`, so timestamp arithmetic matches DuckDB;
 *  - `standard_conforming_strings=on`, so the server reads string literals as libpg-query did when
 *    compile checked the SQL. With it off, `'a\'` does not end where the parser says: a
 *    policies/*.hbs override whose every statement passed the template guard could hide the
 *    built-in statements inside one comment literal and run a statement after it;
 *  - `search_path=pg_catalog, <the target's search_path>, pg_temp`. A model calls functions and
 *    operators by their bare name; with the role's default path (`"$user", public`) a function
 *    anyone could create in `public` (every role, on databases created before PostgreSQL 15) that
 *    matches a call better than pg_catalog's (`date_trunc(text, date)`, `round(float8, int)`) runs
 *    instead, as the owner, who reads every practice's rows and may disable their policies
 *    (CVE-2018-1058). tsform's own statements name every relation with its schema; its temporary
 *    tables stay reachable through pg_temp, last so that nothing there shadows the catalog.
 */
export function sessionOptions(searchPath: readonly string[]): string {
  return `-c TimeZone=UTC -c standard_conforming_strings=on ${searchPathOption(searchPath)}`;
}

/** `-c search_path=pg_catalog,<schemas>,pg_temp`: for every connection tsform opens, OLTP and queue included. */
export function searchPathOption(searchPath: readonly string[] = []): string {
  return `-c search_path=${['pg_catalog', ...searchPath.map(quoteIdent), 'pg_temp'].join(',')}`;
}

/**
 * `url` and `own` as pg connection settings. `pg` lets URL parameters override config keys, so an
 * `options` parameter in the URL is merged, tsform's settings last: the last `-c` of a name wins,
 * and a URL cannot undo them.
 */
export function withSessionOptions(url: string, own: string): { connectionString: string; options: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TsformError(Codes.connection, 'the PostgreSQL URL is not a valid URL (expected postgres://user:password@host:port/database)');
  }
  const urlOptions = parsed.searchParams.get('options');
  if (urlOptions === null) return { connectionString: url, options: own };
  parsed.searchParams.delete('options');
  return { connectionString: parsed.toString(), options: `${urlOptions} ${own}` };
}
