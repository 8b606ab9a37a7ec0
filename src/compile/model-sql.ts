/**
 * What a model's SQL does, read with the PostgreSQL grammar (libpg-query), not what it declares
 * (DESIGN §4 "Fail closed", issue 12). Pure: the WebAssembly parser only.
 *
 * Checked on the analysis rendering (render.ts `bare`), where `ref`, `source` and `this` are bare
 * reserved names and nothing else was added:
 *  - the text is exactly one statement and it is a SELECT (no SELECT INTO, no FOR UPDATE);
 *  - every relation it reads is one of the model's own reserved names or a CTE the model defines
 *    in scope, spelled exactly: a schema-qualified or bare name of anything else (a table, a view,
 *    a catalog relation reached through search_path) is a direct read, refused;
 *  - the author defines no CTE with tsform's reserved prefix (`__tsf_`);
 *  - no function reads files, settings, the environment, catalogs or other relations, executes
 *    SQL, or changes state (deny list below: the engine wall, DuckDB's external access switched
 *    off and PostgreSQL's roles, sits underneath); no function named with a schema other than
 *    pg_catalog (`vault.reidentify(…)`); no cast to a catalog type (`'x'::regclass`);
 *  - a function in FROM is one of a few set-returning functions (allow list).
 * SQL the PostgreSQL grammar cannot read (DuckDB-only syntax: `#1`, `SELECT * EXCLUDE`, QUALIFY,
 * `FROM 'file.csv'`) cannot be checked and is refused: what cannot be proven safe is refused.
 */
import { loadModule, parseSync } from 'libpg-query';
import { nameFindings } from './model-names.ts';
import { isObject, outsideCatalog, sval, type PgJson as Json } from './pg-tree.ts';

await loadModule();

export interface ModelSqlInput {
  sql: string;
  /** Reserved relation names (unquoted) the model may read: its refs, sources and `this`. */
  allowed: ReadonlySet<string>;
  /** The project's tenant column: written in another case it is refused (model-names.ts). */
  tenantColumn?: string;
}

export interface ModelSqlFinding {
  message: string;
  /** A word to find the line by in the model file (relation or function name). */
  near?: string;
  /** 0-based character offset in the SQL checked, where the parser stopped (syntax errors). */
  offset?: number;
}

const RESERVED_PREFIX = '__tsf_';

/** Set-returning functions a FROM clause may call: they generate values, read nothing. */
const TABLE_FUNCTIONS = new Set([
  'generate_series',
  'range',
  'unnest',
  'generate_subscripts',
  'regexp_split_to_table',
  'string_to_table',
  'json_each',
  'json_each_text',
  'jsonb_each',
  'jsonb_each_text',
  'json_array_elements',
  'json_array_elements_text',
  'jsonb_array_elements',
  'jsonb_array_elements_text',
]);

/**
 * Functions that reach outside the model's inputs, run SQL, or change state (both engines).
 * Drawn from the engines' own catalogs (PostgreSQL 15's pg_proc: functions taking a relation by
 * regclass, oid or name, running SQL text through SPI, or volatile; DuckDB's duckdb_functions():
 * side effects, names, settings), not from memory: `query_to_xml('select ssn from raw.patients',
 * …)` once compiled clean and, run as the warehouse's owner, put every practice's rows in one
 * practice's mart.
 */
const FORBIDDEN_FUNCTIONS = new Set([
  'query',
  'query_table',
  // PostgreSQL: run SQL text or read a relation by name (prefixed families below).
  'ts_stat',
  'ts_rewrite',
  'currtid',
  'currtid2',
  'row_security_active',
  'obj_description',
  'col_description',
  'shobj_description',
  'acldefault',
  'aclexplode',
  'amvalidate',
  'current_query',
  // state: index maintenance, the session's random seed, the server log
  'brin_summarize_range',
  'brin_summarize_new_values',
  'brin_desummarize_range',
  'gin_clean_pending_list',
  'setseed',
  'loread',
  'lowrite',
  'write_log',
  'sleep_ms',
  'current_query_id',
  'current_connection_id',
  'current_transaction_id',
  'in_search_path',
  'glob',
  'getenv',
  'getvariable',
  'current_setting',
  'set_config',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'sniff_csv',
  'json_execute_serialized_sql',
  'json_deserialize_sql',
  'json_serialize_sql',
  // binds any SQL text against the whole catalog, returning its errors (names of relations) as a value
  'json_serialize_plan',
  'which_secret',
  'dblink',
  'load_extension',
  'current_database',
  'current_schema',
  'current_schemas',
  'version',
  'inet_server_addr',
  'inet_server_port',
  'inet_client_addr',
  'inet_client_port',
]);
const FORBIDDEN_PREFIXES = [
  ...['read_', 'pg_', 'duckdb_', 'pragma_', 'lo_', 'dblink_', 'parquet_', 'iceberg_', 'delta_', 'postgres_', 'sqlite_', 'mysql_', 'http_', 'file_', 'arrow_', 'csv_', 'json_execute'],
  // PostgreSQL's XML export of a query's, a table's, a cursor's, a schema's or the database's rows
  ...['query_to_', 'table_to_', 'cursor_to_', 'schema_to_', 'database_to_'],
  // catalog lookups by name, transaction ids, privileges of named objects
  ...['to_reg', 'txid_', 'has_'],
  // superuser upgrade hooks, PL/pgSQL's entry points (large objects: lo_ above, loread, lowrite)
  ...['binary_upgrade_', 'plpgsql_'],
];

/** Casts that look up catalog objects by name. */
const CATALOG_TYPES = /^reg[a-z]*$/;

/**
 * The catalog types' input and output functions, called directly: `regtypein(v::cstring)` looks
 * up a name a row gives, and runs PostgreSQL's parser on it, whose syntax error quoted the value
 * (red-team, 2026-12-07). `cstring` is what type input functions take: a model has no use for it.
 */
const CATALOG_TYPE_FUNCTIONS = /^reg[a-z]*(in|out|recv|send)$/;

/**
 * Type input and output functions that take or make a `cstring` without a cast: `textout(v)`
 * gave `array_in` and `record_in` a row's text to parse as a value of any type, a `regtype` too.
 */
const TYPE_IO_FUNCTIONS = new Set(['textout', 'textin', 'array_in', 'array_out', 'array_recv', 'record_in', 'record_out', 'record_recv', 'domain_in', 'domain_recv', 'anyarray_in', 'anyelement_in', 'cstring_in', 'cstring_out']);

export function checkModelSql(input: ModelSqlInput): ModelSqlFinding[] {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(input.sql);
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { message?: string; cursorPosition?: number } };
    const offset = e.sqlDetails?.cursorPosition;
    return [
      {
        message: `cannot be checked: the PostgreSQL grammar cannot read it (${(e.sqlDetails?.message ?? e.message ?? 'syntax error').slice(0, 120)}); DuckDB-only syntax (positional #n, * EXCLUDE, QUALIFY, FROM 'file') is not accepted in models`,
        ...(typeof offset === 'number' ? { offset } : {}),
      },
    ];
  }
  const stmts = parsed.stmts ?? [];
  if (stmts.length !== 1) return [{ message: `must be exactly one SELECT statement, found ${stmts.length} statements` }];
  const stmt = stmts[0]!.stmt as Record<string, unknown> | undefined;
  const kind = stmt ? Object.keys(stmt)[0] : undefined;
  if (!stmt || kind !== 'SelectStmt') return [{ message: `must be a SELECT statement, found ${kind ?? 'nothing'}` }];
  const findings: ModelSqlFinding[] = nameFindings(input.sql, stmt, RESERVED_PREFIX, input.tenantColumn);
  walk(stmt, new Set(), input.allowed, findings);
  const seen = new Set<string>();
  return findings.filter((f) => (seen.has(f.message) ? false : (seen.add(f.message), true)));
}

function walk(node: unknown, ctes: ReadonlySet<string>, allowed: ReadonlySet<string>, out: ModelSqlFinding[]): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, ctes, allowed, out);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (!isObject(value)) {
      if (Array.isArray(value)) walk(value, ctes, allowed, out);
      continue;
    }
    switch (key) {
      case 'SelectStmt':
        selectStmt(value, ctes, allowed, out);
        continue;
      // PostgreSQL takes these in a WITH clause (`with d as (delete from … returning …) select …`),
      // where their target is a bare relation, not a RangeVar node the read check would see.
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        out.push({ message: `modifies data (${key.replace('Stmt', '').toUpperCase()} in a WITH clause); a model is one SELECT that only reads`, near: key.replace('Stmt', '').toLowerCase() });
        continue;
      case 'RangeVar':
        rangeVar(value, ctes, allowed, out);
        continue;
      case 'RangeFunction':
        rangeFunction(value, ctes, allowed, out);
        continue;
      case 'FuncCall':
        funcCall(value, out);
        break;
      case 'A_Expr': {
        const name = ((value.name as unknown[]) ?? []).map((n) => sval(n) ?? '?');
        // DuckDB reads `#9` as "the 9th column" (lineage unknowable); PostgreSQL as an operator.
        if (name.length === 1 && name[0] === '#' && value.lexpr === undefined) out.push({ message: 'uses a positional column reference (#n), whose lineage cannot be checked; name the column', near: '#' });
        // `OPERATOR(s.=)` runs whatever function s's operator names, like a call of s.f().
        if (outsideCatalog(name)) out.push({ message: `uses the operator ${name.join('.')}; an operator in a schema other than pg_catalog runs a function of that schema`, near: name[0] });
        break;
      }
      case 'TypeCast': {
        const names = ((value.typeName as Json | undefined)?.names as unknown[] | undefined)?.map((n) => sval(n) ?? '?') ?? [];
        const last = names[names.length - 1]?.toLowerCase();
        if (last && CATALOG_TYPES.test(last)) out.push({ message: `casts to ${last}, which looks up catalog objects by name`, near: last });
        else if (last === 'cstring') out.push({ message: 'casts to cstring, the argument of type input functions, which parse a value as SQL names', near: last });
        // A catalog relation's row type: its regtype and regclass fields look names up (pg_sequences.data_type).
        else if (last?.startsWith('pg_')) out.push({ message: `casts to ${last}, a row type of the catalog, whose fields look up catalog objects by name`, near: last });
        // A type's input function, or a domain's CHECK, runs at the cast: a type of another schema is code of that schema.
        else if (outsideCatalog(names)) out.push({ message: `casts to ${names.join('.')}; a type in a schema other than pg_catalog may run that schema's functions (its input function, a domain's CHECK)`, near: names[0] });
        break;
      }
      default:
        break;
    }
    walk(value, ctes, allowed, out);
  }
}

function selectStmt(s: Json, outer: ReadonlySet<string>, allowed: ReadonlySet<string>, out: ModelSqlFinding[]): void {
  if (s.intoClause) out.push({ message: 'uses SELECT INTO, which creates a table' });
  if (Array.isArray(s.lockingClause) && s.lockingClause.length > 0) out.push({ message: 'uses FOR UPDATE/SHARE, which locks rows' });
  let scope = outer;
  const w = s.withClause as Json | undefined;
  if (w) {
    const defs = ((w.ctes as unknown[]) ?? []).filter(isObject).map((c) => c.CommonTableExpr as Json);
    const names = defs.map((d) => String(d.ctename ?? ''));
    for (const n of names) {
      if (n.toLowerCase().startsWith(RESERVED_PREFIX)) out.push({ message: `defines a CTE named ${n}: the prefix ${RESERVED_PREFIX} is reserved for tsform`, near: n });
    }
    const recursive = w.recursive === true;
    defs.forEach((d, i) => {
      // A CTE sees the ones before it, and itself in WITH RECURSIVE. PostgreSQL lets a CTE of WITH
      // RECURSIVE read one defined after it, which the checks (reading in order) would take for
      // a relation they do not know: refused as a read by name.
      const visible = new Set([...outer, ...names.slice(0, recursive ? i + 1 : i)]);
      walk(d.ctequery, visible, allowed, out);
    });
    scope = new Set([...outer, ...names]);
  }
  for (const [key, value] of Object.entries(s)) {
    if (key === 'withClause') continue;
    walk(value, scope, allowed, out);
  }
}

function rangeVar(rv: Json, ctes: ReadonlySet<string>, allowed: ReadonlySet<string>, out: ModelSqlFinding[]): void {
  const rel = String(rv.relname ?? '');
  const qualified = [rv.catalogname, rv.schemaname, rel].filter((p) => typeof p === 'string' && p !== '').join('.');
  if (rv.catalogname || rv.schemaname) {
    out.push({ message: `reads ${qualified} by name; read relations only through {{ref}}, {{source}} or {{this}}`, near: rel });
    return;
  }
  // Exact spelling: PostgreSQL resolves a name that differs from a CTE's only in case through
  // search_path, to a real table.
  if (ctes.has(rel) || allowed.has(rel)) return;
  if (rel.toLowerCase().startsWith(RESERVED_PREFIX)) {
    out.push({ message: `reads ${rel}, which is not one of this model's refs or sources`, near: rel });
    return;
  }
  out.push({ message: `reads ${rel} by name, which is not a CTE of the model; read relations only through {{ref}}, {{source}} or {{this}}`, near: rel });
}

function rangeFunction(rf: Json, ctes: ReadonlySet<string>, allowed: ReadonlySet<string>, out: ModelSqlFinding[]): void {
  for (const f of (rf.functions as unknown[]) ?? []) {
    const items = isObject(f) && isObject(f.List) ? ((f.List.items as unknown[]) ?? []) : [f];
    const call = items[0];
    if (isObject(call) && isObject(call.FuncCall)) {
      const name = functionName(call.FuncCall);
      if (!TABLE_FUNCTIONS.has(name.last)) out.push({ message: `calls ${name.full}() in FROM; only ${[...TABLE_FUNCTIONS].slice(0, 3).join(', ')}… may be (they read nothing)`, near: name.last });
    } else if (call !== undefined) {
      out.push({ message: 'has a FROM item that is not a function call or relation' });
    }
  }
  walk(rf.functions, ctes, allowed, out);
}

function funcCall(fc: Json, out: ModelSqlFinding[]): void {
  const name = functionName(fc);
  if (outsideCatalog(name.parts)) {
    out.push({ message: `calls ${name.full}(), a function in schema ${name.schema}`, near: name.last });
    return;
  }
  if (FORBIDDEN_FUNCTIONS.has(name.last) || FORBIDDEN_PREFIXES.some((p) => name.last.startsWith(p)) || CATALOG_TYPE_FUNCTIONS.test(name.last) || TYPE_IO_FUNCTIONS.has(name.last)) {
    out.push({ message: `calls ${name.last}(), which reads outside the model's inputs or changes state`, near: name.last });
  }
}

function functionName(fc: Json): { last: string; schema?: string; full: string; parts: string[] } {
  const parts = ((fc.funcname as unknown[]) ?? []).map((p) => sval(p) ?? '?');
  const last = (parts[parts.length - 1] ?? '?').toLowerCase();
  const schema = parts.length > 1 ? parts.slice(0, -1).join('.') : undefined;
  return { last, schema, full: parts.join('.'), parts };
}

/**
 * Where the final select list names `column` (its alias, or a bare column reference of that name),
 * or where the list starts when no column is given or none matches: a 0-based character offset
 * in `sql`, for diagnostics about output columns (a missing tenant column, a research column
 * exposing PHI). Undefined when the text does not parse.
 */
export function selectItemOffset(sql: string, column?: string): number | undefined {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(sql);
  } catch {
    return undefined;
  }
  let select = (parsed.stmts?.[0]?.stmt as Json | undefined)?.SelectStmt as Json | undefined;
  // A UNION's columns are named by its first branch.
  while (select && isObject(select.larg)) select = select.larg as Json;
  const targets = ((select?.targetList as unknown[]) ?? []).filter(isObject).map((t) => t.ResTarget as Json);
  if (targets.length === 0) return undefined;
  const named = column === undefined ? undefined : targets.find((t) => (t.name ?? columnRefName(t.val))?.toString().toLowerCase() === column.toLowerCase());
  const location = (named ?? targets[0]!).location;
  if (typeof location !== 'number') return undefined;
  // libpg-query's locations count UTF-8 bytes.
  return Buffer.from(sql, 'utf8').subarray(0, location).toString('utf8').length;
}

function columnRefName(val: unknown): string | undefined {
  const fields = isObject(val) && isObject(val.ColumnRef) ? ((val.ColumnRef.fields as unknown[]) ?? []) : [];
  return sval(fields[fields.length - 1]);
}
