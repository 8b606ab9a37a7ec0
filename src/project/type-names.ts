import { suggest } from './suggest.ts';

/**
 * Type names that DuckDB and PostgreSQL both read in CREATE TABLE and CAST (each checked against
 * both engines). A project compiles once for either target, so a seed's `column_types` and a
 * source column's `data_type` take only these: `DOUBLE`, `HUGEINT`, `BLOB` (DuckDB) and `JSONB`
 * (PostgreSQL) are refused at compile rather than failing on the other engine at run time.
 */
const BASE_TYPES = [
  'BIGINT', 'INT8', 'INTEGER', 'INT', 'INT4', 'SMALLINT', 'INT2',
  'BOOLEAN', 'BOOL',
  'REAL', 'FLOAT4', 'FLOAT', 'FLOAT8', 'DOUBLE PRECISION', 'NUMERIC', 'DECIMAL',
  'VARCHAR', 'CHARACTER VARYING', 'CHAR', 'CHARACTER', 'TEXT',
  'DATE', 'TIME', 'TIMETZ', 'TIME WITH TIME ZONE', 'TIME WITHOUT TIME ZONE',
  'TIMESTAMP', 'TIMESTAMPTZ', 'TIMESTAMP WITH TIME ZONE', 'TIMESTAMP WITHOUT TIME ZONE',
  'INTERVAL', 'UUID', 'BYTEA', 'JSON',
] as const;

/** One engine's names, and what both read instead. */
const ONE_ENGINE: Record<string, string> = {
  DOUBLE: 'DOUBLE PRECISION', HUGEINT: 'NUMERIC(38,0)', BLOB: 'BYTEA', STRING: 'VARCHAR', JSONB: 'JSON', SERIAL: 'INTEGER', BIGSERIAL: 'BIGINT',
};

/** The types that take a length or a precision and scale: `VARCHAR(20)`, `DECIMAL(18,2)`. */
const WITH_LENGTH = new Set(['VARCHAR', 'CHARACTER VARYING', 'CHAR', 'CHARACTER']);
const WITH_PRECISION = new Set(['NUMERIC', 'DECIMAL']);

/** A name, a length or precision in parentheses, `[]`: the only type text that goes into SQL (warehouse/load-csv.ts `safeType`). */
export const PLAIN_TYPE_SYNTAX = /^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$/;
const PARTS = /^([A-Za-z][A-Za-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?(\[\])?$/;

/**
 * A seed's `column_types` or a source column's `data_type` as it goes into SQL text (upper case,
 * inner spaces single), or why not: compile reports it at the yml line, where before an unknown
 * name reached the engine at run time and came back as its error, without the yml line.
 */
export function plainTypeName(t: string): { type: string } | { problem: string } {
  const m = PLAIN_TYPE_SYNTAX.test(t.trim()) ? PARTS.exec(t.trim()) : null;
  if (!m) return { problem: `'${printable(t)}' is not a plain SQL type name (a name, a length or precision in parentheses, [] for an array)` };
  const base = m[1]!.replace(/\s+/g, ' ').toUpperCase();
  const instead = ONE_ENGINE[base];
  if (instead) return { problem: `type '${base}' is not read by both DuckDB and PostgreSQL: write ${instead}` };
  if (!(BASE_TYPES as readonly string[]).includes(base)) {
    return { problem: `unknown type '${printable(m[1]!)}'${suggest(base, BASE_TYPES) || ` (one of ${BASE_TYPES.join(', ')})`}: tsform takes the type names DuckDB and PostgreSQL both read` };
  }
  if (m[2] !== undefined && !WITH_LENGTH.has(base) && !WITH_PRECISION.has(base)) {
    return { problem: `type '${base}' takes no length or precision in parentheses` };
  }
  if (m[3] !== undefined && !WITH_PRECISION.has(base)) return { problem: `type '${base}' takes one number in parentheses, not two` };
  const args = m[2] === undefined ? '' : `(${m[2]}${m[3] === undefined ? '' : `,${m[3]}`})`;
  return { type: `${base}${args}${m[4] ?? ''}` };
}

/** A yml value shown in a message: bounded, one line. */
function printable(s: string): string {
  const one = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return one.length > 40 ? `${one.slice(0, 40)}…` : one;
}
