import { statementOf, wasRaisedExecuting } from './error-statements.ts';

/**
 * The one place a database error becomes text (run_results.json, logs, the CLI). Engines echo
 * the value that failed ("invalid date field format: \"Frederick289\"", `value "999359847" is out
 * of range`, `Input: "…"`, whatever a user-raised error says); those values can be PHI.
 *
 * Redaction is by error class, not by pattern: PostgreSQL's SQLSTATE and DuckDB's error type
 * decide whether the engine's wording may be kept at all. A class that can echo a value
 * (conversion, range, format, parse, user-raised, …) keeps its code and class and a description
 * taken from an allow-list of value-free message stems, else a generic one; nothing the engine
 * wrote after the stem survives. Classes kept verbatim (syntax, names, transactions, I/O) are
 * still cut to their first line and scrubbed of quoted literals, and DETAIL, HINT, CONTEXT and
 * echoed input lines are never read.
 */
export function safeDbMessage(err: unknown, maxLines = 3): string {
  const sqlstate = sqlstateOf(err);
  if (sqlstate) return postgresMessage(err as PgErrorFields, sqlstate);
  const raw = err instanceof Error ? err.message : String(err);
  const duck = DUCKDB_PREFIX.exec(raw);
  if (duck) return duckdbMessage(duck[1]!, raw.slice(duck[0].length), maxLines, wasRaisedExecuting(err));
  // Not an engine error (a driver's socket error, a JS error): first lines, scrubbed.
  return scrub(firstLines(raw, maxLines).join(' | '));
}

/**
 * Whether a DuckDB error's text is the engine's description of the statement (a kept type:
 * Parser, Binder, …), so that its `LINE n:` and caret may be trusted. Any other type's text can
 * be a row's: `error(x)` forged a `LINE` and a caret whose column was a character of a last
 * name, which the runner then printed as the model's file, line and column (red-team, 2026-12-07).
 */
export function duckdbErrorDescribesStatement(err: unknown): boolean {
  const duck = DUCKDB_PREFIX.exec(err instanceof Error ? err.message : String(err));
  return duck !== null && DUCKDB_KEPT_TYPES.has(duck[1]!) && !wasRaisedExecuting(err);
}

/** Appended where the engine's words were dropped. */
const WITHHELD = '(value withheld)';

// ---- PostgreSQL ------------------------------------------------------------------------------

interface PgErrorFields {
  message?: string;
  position?: unknown;
  where?: unknown;
}

function sqlstateOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  // No SQLSTATE class starts with E; node's errno codes (EPIPE, EPERM) do.
  return typeof code === 'string' && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

/**
 * SQLSTATE classes whose primary message names only schema objects, settings or the server's
 * state, never a row value (23: constraint names; the offending row is in DETAIL, never read).
 * Every other class is presumed to echo a value (XX too: "invalid memory alloc request size N"
 * can be a row's number passed to repeat()); 0A (feature not supported) is kept only with a
 * statement position, since a unit or field name read from a row gets there too.
 */
const PG_KEPT_CLASSES = new Set(['08', '21', '23', '25', '28', '2B', '2D', '3B', '3D', '3F', '40', '42', '44', '53', '55', '57', '58']);

/**
 * Name errors a value can cause at run time (`'x'::regclass`, `::regtype`, jsonpath, current_setting
 * with a column). Without a statement position the name came from a row, so it is withheld; with
 * one it is in the SQL text tsform sent and is kept.
 */
const PG_NAME_CONDITIONS: Record<string, string> = {
  '42P01': 'undefined table',
  '42883': 'undefined function',
  '42704': 'undefined object',
  '42703': 'undefined column',
  '42601': 'syntax error',
  '42602': 'invalid name',
  '42622': 'name too long',
  '3F000': 'invalid schema name',
  '3D000': 'invalid catalog name',
};

/**
 * Whether a name error's position and the names it quotes are the statement's: each quoted name
 * is in the statement from that position on (`at end of input`: the position is the statement's
 * end). A value parsed at run time as SQL (`regtypein(('x''' || last_name)::cstring)`) raised a
 * syntax error whose position counted inside the value and whose "at or near" quoted it
 * (red-team, 2026-12-07).
 */
function quotesStatementAt(first: string, statement: string | undefined, position: number): boolean {
  if (statement === undefined || position < 1 || position > statement.length + 1) return false;
  if (/\bat end of input\b/.test(first)) return statement.slice(position - 1).trim() === '';
  const rest = statement.slice(position - 1).toLowerCase();
  // A syntax error's token starts where its position points.
  const near = /\bat or near "((?:[^"]|"")*)"/.exec(first)?.[1]?.replaceAll('""', '"').toLowerCase();
  if (near !== undefined && !rest.startsWith(near) && !rest.startsWith(`"${near}`)) return false;
  const quoted = [...first.matchAll(/"((?:[^"]|"")*)"/g)].map((m) => m[1]!.replaceAll('""', '"').toLowerCase());
  if (/"/.test(first.replace(/"((?:[^"]|"")*)"/g, ''))) return false;
  return quoted.every((q) => rest.includes(q));
}

/**
 * Functions tsform installs (security/templates.ts) whose RAISE messages name only tickets and
 * roles: theirs are kept. A function missing here has its messages withheld, which is safe.
 */
const TSFORM_FUNCTIONS = new Set(['request_reidentification', 'reidentify', 'refuse_audit_truncate', 'record_audit_change']);

/** Condition names of the value-bearing codes (PostgreSQL's errcodes.txt), the fallback description. */
const PG_CONDITIONS: Record<string, string> = {
  '0A000': 'feature not supported',
  '22000': 'data exception',
  '22001': 'string data right truncation',
  '22003': 'numeric value out of range',
  '22004': 'null value not allowed',
  '22007': 'invalid datetime format',
  '22008': 'datetime field overflow',
  '22009': 'invalid time zone displacement value',
  '2200N': 'invalid XML content',
  '2200M': 'invalid XML document',
  '2200L': 'not an XML document',
  '22011': 'substring error',
  '22012': 'division by zero',
  '22015': 'interval field overflow',
  '22018': 'invalid character value for cast',
  '2201B': 'invalid regular expression',
  '2201E': 'invalid argument for logarithm',
  '2201F': 'invalid argument for power function',
  '2201G': 'invalid argument for width bucket function',
  '22021': 'character not in repertoire',
  '22023': 'invalid parameter value',
  '22025': 'invalid escape sequence',
  '22026': 'string data length mismatch',
  '22027': 'trim error',
  '2202E': 'array subscript error',
  '22030': 'duplicate JSON object key value',
  '22032': 'invalid JSON text',
  '22P01': 'floating point exception',
  '22P02': 'invalid text representation',
  '22P03': 'invalid binary representation',
  '22P04': 'bad copy file format',
  '22P05': 'untranslatable character',
  '2F000': 'SQL routine exception',
  '38000': 'external routine exception',
  '39000': 'external routine invocation exception',
  '54000': 'program limit exceeded',
  '54001': 'statement too complex',
  '54011': 'too many columns',
  '54023': 'too many arguments',
  'XX000': 'internal error',
  'XX001': 'data corrupted',
  'XX002': 'index corrupted',
};

/** Value-free beginnings of PostgreSQL messages; a capture is only ever a type name. */
const PG_STEMS: readonly Stem[] = [
  [/^invalid input syntax for type ([a-z][a-z0-9 ]*[a-z0-9])(?::|$)/, (m) => `invalid input syntax for type ${m[1]}`],
  [/^value .* is out of range for type ([a-z][a-z0-9 ]*[a-z0-9])$/, (m) => `value out of range for type ${m[1]}`],
  [/^(smallint|integer|bigint|numeric|real|double precision|oid|interval|timestamp|date|money) out of range$/, (m) => `${m[1]} out of range`],
  [/^numeric field overflow$/, () => 'numeric field overflow'],
  [/^invalid value .* for ".*"$/, () => 'invalid value for a format field'],
  [/^time zone .* not recognized$/, () => 'time zone not recognized'],
  [/^unit .* not recognized for type ([a-z][a-z0-9 ]*[a-z0-9])$/, (m) => `unit not recognized for type ${m[1]}`],
  [/^unit .* not supported for type ([a-z][a-z0-9 ]*[a-z0-9])$/, (m) => `unit not supported for type ${m[1]}`],
  [/^date\/time field value out of range/, () => 'date/time field value out of range'],
  [/^(date|timestamp) out of range/, (m) => `${m[1]} out of range`],
  [/^invalid regular expression/, () => 'invalid regular expression'],
  [/^invalid byte sequence for encoding/, () => 'invalid byte sequence for the encoding'],
  [/^division by zero$/, () => 'division by zero'],
];

function postgresMessage(err: PgErrorFields, code: string): string {
  const cls = code.slice(0, 2);
  const where = typeof err.where === 'string' ? err.where : '';
  // A position with a CONTEXT is not in the statement's text: PostgreSQL parsed a value there
  // (`invalid type name "…"`: a row cast to a catalog row type with a regtype field ran regtypein
  // on it, and the position counted a row's characters: red-team, 2026-12-07).
  const position = where === '' && typeof err.position === 'string' && /^\d+$/.test(err.position) ? err.position : undefined;
  const at = position ? ` (at character ${position})` : '';
  // RAISE in a function: the whole text is the function author's, with whatever values it interpolated.
  const raisedIn = /\bPL\/pgSQL function ([A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\(.* at RAISE\b/.exec(where)?.[1];
  if (cls === 'P0' || raisedIn !== undefined || /\bat RAISE\b/.test(where)) {
    const fn = raisedIn?.split('.').pop();
    if (fn !== undefined && TSFORM_FUNCTIONS.has(fn)) return `${code}: ${scrub(firstLines(String(err.message ?? ''), 1)[0] ?? '')}`;
    return `${code}: raised by ${raisedIn ? `function ${raisedIn}` : 'a database function'} (message withheld)`;
  }
  const first = firstLines(String(err.message ?? ''), 1)[0] ?? '';
  const nameCondition = PG_NAME_CONDITIONS[code];
  if (nameCondition && !(position && quotesStatementAt(first, statementOf(err), Number(position)))) return `${code}: ${nameCondition} (name withheld)`;
  if (PG_KEPT_CLASSES.has(cls) || (cls === '0A' && position)) return `${code}: ${scrub(first)}${at}`;
  return `${code}: ${describeByStem(PG_STEMS, first) ?? PG_CONDITIONS[code] ?? `error of class ${cls}`} ${WITHHELD}${at}`;
}

// ---- DuckDB ----------------------------------------------------------------------------------

const DUCKDB_PREFIX = /^([A-Za-z][A-Za-z ]{0,40}?) Error: ?/;

/**
 * DuckDB error types whose message describes the statement (names bound from its text) or the
 * engine's state (files, transactions, memory). Every other type (Conversion, Invalid Input,
 * Out of Range, Constraint, Not implemented, Invalid, …) is presumed to echo a value;
 * `error(x)` is an Invalid Input Error whose whole message is x. Out of Memory and INTERNAL are
 * withheld too: an allocation size or a vector index can be a row's number.
 */
const DUCKDB_KEPT_TYPES = new Set([
  'Parser',
  'Binder',
  'Catalog',
  'Syntax',
  'Planner',
  'Optimizer',
  'Dependency',
  'Parameter Not Resolved',
  'Parameter Not Allowed',
  'Permission',
  'Settings',
  'Invalid Configuration',
  'IO',
  'TransactionContext',
  'Transaction',
  'Interrupt',
  'INTERRUPT',
  'Connection',
  'Serialization',
  'HTTP',
  'Missing Extension',
  'Extension',
  'Autoload',
  'Network',
  'Scheduler',
]);

/**
 * The kept types that describe the statement's text: raised once the statement is prepared and
 * running, their text names what a row gave a function that binds per row (duckdb-adapter.ts
 * marks such errors), so it is withheld then.
 */
const DUCKDB_STATEMENT_TYPES = new Set(['Parser', 'Binder', 'Catalog', 'Syntax', 'Planner', 'Optimizer', 'Dependency', 'Parameter Not Resolved', 'Parameter Not Allowed']);

/**
 * A type name as DuckDB prints it: the only engine text a stem keeps. A closed list, because
 * `error(x)` lets a row choose the whole message: a crafted value that imitates a stem must not
 * get a word of its own through. DECIMAL's width is dropped for the same reason.
 */
const DUCK_TYPE =
  '(BOOL|BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UHUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|' +
  'INT8|INT16|INT32|INT64|INT128|UINT8|UINT16|UINT32|UINT64|UINT128|FLOAT|DOUBLE|DECIMAL|VARINT|BIGNUM|' +
  'DATE|TIME|TIME WITH TIME ZONE|TIMESTAMP|TIMESTAMP WITH TIME ZONE|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|' +
  'INTERVAL|VARCHAR|BLOB|UUID|BIT|JSON|ENUM)(?:\\(\\d+,\\d+\\))?(?![A-Za-z0-9_])';
const FROM_COLUMN = '(?: when casting from source column .*)?$';

/** Value-free beginnings of DuckDB messages; a capture is only ever a type name or a line number. */
const DUCKDB_STEMS: readonly Stem[] = [
  [/^invalid (date|timestamp|time|interval) field format\b/, (m) => `invalid ${m[1]} field format`],
  [/^(date|time|timestamp) field value out of range\b/, (m) => `${m[1]} field value out of range`],
  [new RegExp(`^Could not convert string .* to ${DUCK_TYPE}${FROM_COLUMN}`), (m) => `Could not convert string to ${m[1]}`],
  [new RegExp(`^Could not cast value .* to ${DUCK_TYPE}${FROM_COLUMN}`), (m) => `Could not cast value to ${m[1]}`],
  [
    new RegExp(`^Type ${DUCK_TYPE} with value .* can't be cast because the value is out of range for the destination type ${DUCK_TYPE}${FROM_COLUMN}`),
    (m) => `${m[1]} value out of range for the destination type ${m[2]}`,
  ],
  [new RegExp(`^Overflow in (addition|subtraction|multiplication|division|negation) of ${DUCK_TYPE}`), (m) => `Overflow in ${m[1]} of ${m[2]}`],
  [/^Could not parse string .* according to format specifier/, () => 'Could not parse string according to format specifier'],
  [/^Malformed JSON\b/, () => 'Malformed JSON'],
  [/^extract specifier .* not recognized/, () => 'extract specifier not recognized'],
  [/^Unknown TimeZone\b/, () => 'Unknown TimeZone'],
  [/^(Date|Timestamp|Time|Interval|Epoch seconds) out of range\b/, (m) => `${m[1]} out of range`],
  [/^Invalid hex escape code encountered/, () => 'Invalid hex escape code in a string -> blob conversion'],
  [/^Invalid character encountered in string -> bit conversion/, () => 'Invalid character in a string -> bit conversion'],
  [/^Could not decode string .* as base64/, () => 'Could not decode string as base64'],
  [/^Failed to cast value to numerical/, () => 'Failed to cast value to numerical'],
  [/^Failed to parse format specifier/, () => 'Failed to parse format specifier'],
  [/^Invalid input for hex digit/, () => 'Invalid input for hex digit'],
  [/^missing \)/, () => 'invalid regular expression'],
  [/^(PRIMARY KEY or UNIQUE constraint violation|Duplicate key)\b/, () => 'PRIMARY KEY or UNIQUE constraint violation'],
  [/^NOT NULL constraint failed\b/, () => 'NOT NULL constraint failed'],
  [/^CHECK constraint failed\b/, () => 'CHECK constraint failed'],
  [/^More than one row returned by a subquery used as an expression/, () => 'More than one row returned by a scalar subquery'],
  [/^Map keys must be unique/, () => 'Map keys must be unique'],
  // The line number stays out too: error('CSV Error on Line: ' || mrn) would otherwise carry a number.
  [/^(failed to allocate|could not allocate)\b/i, () => 'could not allocate memory'],
  [/^CSV Error on Line\b/, () => 'CSV Error'],
];

function duckdbMessage(type: string, body: string, maxLines: number, executing: boolean): string {
  const lines = firstLines(body, Number.POSITIVE_INFINITY);
  const first = lines[0] ?? '';
  // A JSON path is bound per row by json_each and json_tree: its error quotes a row's value.
  if (DUCKDB_KEPT_TYPES.has(type) && /^JSON path error\b/.test(first)) return `${type} Error: JSON path error ${WITHHELD}`;
  if (executing && DUCKDB_STATEMENT_TYPES.has(type)) return `${type} Error: raised while the statement ran, from what a row gave (message withheld)`;
  if (DUCKDB_KEPT_TYPES.has(type)) {
    // "LINE 1: <statement>": the statement tsform sent (values are bound, never spliced into it).
    const at = lines.findIndex((l) => /^LINE \d+:/.test(l));
    const location = at > 0 ? [lines[at]!] : [];
    return scrub([`${type} Error: ${first}`, ...location].slice(0, Math.max(1, maxLines)).join(' | '));
  }
  // Nothing after the first line either: a raised message can forge a "LINE 1:" of its own.
  const description = describeByStem(DUCKDB_STEMS, first);
  return description ? `${type} Error: ${description} ${WITHHELD}` : `${type} Error: (message withheld)`;
}

// ---- shared ----------------------------------------------------------------------------------

type Stem = readonly [RegExp, (m: RegExpExecArray) => string];

function describeByStem(stems: readonly Stem[], first: string): string | undefined {
  for (const [re, render] of stems) {
    const m = re.exec(first);
    if (m) return render(m);
  }
  return undefined;
}

function firstLines(text: string, max: number): string[] {
  // DuckDB's CSV errors quote the input line; PostgreSQL's DETAIL, HINT and CONTEXT hold row values.
  const cut = text.split(/\n\s*(?:DETAIL|HINT|CONTEXT):|Original Line:/i)[0] ?? text;
  return cut
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^\s*\^\s*$/.test(l))
    .slice(0, max);
}

/**
 * Defence in depth for the kept classes: quoted literals and key payloads go even there. A line
 * whose quotes do not pair up (an apostrophe inside a word aside) is cut at its first quote:
 * pairing them from the left kept the name in `near '['O'Brien]'` (red-team, 2026-12-07).
 */
function scrub(text: string): string {
  const quote = /(?<![A-Za-z])['"]|['"](?![A-Za-z])/g;
  const marks = [...text.matchAll(quote)];
  const odd = (q: string) => marks.filter((m) => m[0] === q).length % 2 === 1;
  const whole = odd("'") || odd('"') ? `${text.slice(0, marks[0]!.index)}…` : text;
  return whole
    .replace(/'(?:[^']|'')*'/g, "'…'")
    .replace(/\b(Duplicate key|key|string|value|input|literal|text|Input:?) "(?:[^"]|"")*"/gi, '$1 "…"')
    .replace(/\(([^()]*)\)=\(([^()]*)\)/g, '($1)=(…)')
    .replace(/(for type [a-z ]+): "(?:[^"]|"")*"/gi, '$1: "…"');
}
