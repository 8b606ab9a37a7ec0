/**
 * PHI lineage (DESIGN §4, issue 4 item 3a): the PHI class of every output column of a compiled
 * SELECT, with readable paths back to the classified base columns it reads, so that a research
 * relation exposing a `direct` column, or a `quasi` column not passed through an approved
 * generalizer, can fail compile naming where the value came from.
 *
 * Parser: libpg-query, the real PostgreSQL parser (libpg_query, the grammar of the server itself,
 * compiled to WebAssembly; MIT, maintained with every PostgreSQL release). Compared on our compiled
 * SQL (target/compiled/*.sql) before choosing:
 *  - node-sql-parser 5.4 rejects 12 of the demo's 13 models: every tenant filter
 *    `= ANY($1::VARCHAR[])` and the typed literal `timestamptz '…'` are syntax errors to it;
 *  - pgsql-ast-parser 12 parses the demo but not EXCEPT / INTERSECT, IS DISTINCT FROM, a WINDOW
 *    clause, GROUPING SETS, NATURAL JOIN, COLLATE or LIKE … ESCAPE;
 *  - libpg-query parses all of it (and anything PostgreSQL accepts). What it cannot parse is
 *    DuckDB-only syntax (`SELECT * EXCLUDE`, QUALIFY, list/struct literals): such a model gets
 *    ok:false, which a privacy gate must treat as a failure (fail closed), never as "no PHI".
 * Its WebAssembly module is instantiated once when this module is first imported (top-level await
 * below, ~40 ms); after that `columnLineage` is synchronous and pure: no file, network or database.
 *
 * Rules (an output column's class is the max, direct > quasi > none, over the base columns its
 * expression reads, through CTEs, subqueries in FROM or in the select list, joins and set
 * operations; `*` / `t.*` expand to the resolved relation's classified columns; an unqualified
 * name matching several FROM items takes the max over them):
 *  - inside a generalizer call (default `tsf_generalized`, how the compiler's lineage rendering
 *    shows an approved macro) a quasi-identifier becomes 'none' and the column is `generalized`;
 *    a DIRECT identifier stays 'direct': generalizing or hashing a name or SSN does not make it
 *    non-identifying (only tokenization through the vault does, and that is not a generalizer);
 *  - `count(*)`, `count(col)`, `count(distinct col)` and `col IS [NOT] NULL` of plain columns are
 *    'none' (a number of rows, or whether a value is present, identifies nobody); a count or NULL
 *    test of an expression, or a count with FILTER, is that expression's test and keeps its class
 *    (`nullif(ssn, '123-45-6789') IS NULL` says whose SSN it is); a FILTER or an aggregate's
 *    ORDER BY carries into any aggregate's value; other aggregates (min, max, sum, avg, any_value,
 *    first, string_agg…) and window functions keep the class of their arguments;
 *  - literals, parameters and `current_date`-like keywords are 'none'; casts (`::`, CAST),
 *    operators, `AT TIME ZONE`, CASE (its conditions too: a CASE can re-encode a value), COALESCE
 *    and every other function carry the max of what they read;
 *  - columns read only by WHERE, GROUP BY, HAVING, ORDER BY, JOIN … ON or USING, a window's
 *    PARTITION BY / ORDER BY do not make an output column identifying (they are implicit flows;
 *    `predicates` keeps those that choose rows, for published relations);
 *    EXISTS (…) is 'none'; `x IN (SELECT …)` reads x and the subquery's column;
 *  - a relation named in `relations` takes its declared classes; when the SQL also defines it as a
 *    CTE (tsform's `"__tsf_ref_…"`), a column the body derives from something more identifying
 *    keeps that higher class. A relation not in `relations` and not defined in the SQL is unknown:
 *    its columns are 'none' with the note "unknown relation X" (and `select *` from it yields a
 *    column '*' carrying that note). A column missing from a declared relation is 'none' with the
 *    note "column X is not classified": classification is only as complete as the yml.
 *  - Identifiers match case-insensitively (DuckDB does; PostgreSQL folds unquoted names). An
 *    unaliased expression is named as PostgreSQL names it (phi-lineage-names.ts). Two output
 *    columns with one name are reported once, with the max class.
 *
 * Lineage lines read from the output column back to the base column, with the base column's
 * class: `ssn <- p.ssn <- __tsf_ref_stg_patients.ssn (direct)`;
 * `birth_year <- tsf_generalized(…) <- birth_date <- __tsf_ref_stg_patients.birth_date (quasi)`.
 */
import { loadModule, parseSync } from 'libpg-query';
import type { PhiClass } from '../project/types.ts';
import { Analyzer, isLookupTrace, type DeclaredRelation } from './phi-lineage-analyze.ts';
import { LineageError } from './phi-lineage-shape.ts';
import { combine, lineageLines, noteInfo, step, type Info } from './phi-lineage-info.ts';

export type { PhiClass };

await loadModule();

export interface LineageInput {
  /** One SELECT (possibly WITH …), as compiled. */
  sql: string;
  /**
   * Classes of the columns of every relation the SQL may read, keyed by the name as it appears in
   * the SQL after unquoting: CTE names like `__tsf_ref_stg_patients`, or `schema.table`.
   */
  relations: Record<string, Record<string, PhiClass>>;
  /** Per relation of `relations`, the columns its SQL computes from an identifying value. */
  computed?: Record<string, readonly string[]>;
  /**
   * Function names that generalize (their output is not identifying even if inputs are quasi).
   * The compiler renders approved macros (age_band, birth_year, zip3, month_of, shift_date…) as
   * `tsf_generalized(<expr>)` in a lineage-only rendering, so the default is just that name. A
   * list given here replaces the default.
   */
  generalizers?: string[];
  /**
   * Per key of `relations`, its columns that hold no data read from a source or a model: every
   * column of a seed ('*'), a model's columns of constants or of a seed's values. A list written
   * into the project: a patient id there picks that patient.
   */
  lookups?: Record<string, '*' | readonly string[]>;
  /**
   * The SQL is an incremental model's `is_incremental` rendering (its high-water test keeps
   * nobody out): the full rendering's `stored` columns (ColumnLineage.stored), lower-cased.
   */
  selfStored?: Record<string, string>;
  /** Lower-cased `relation.column` of an input → the source column it holds as stored (`source:ehr.encounters.updated_at`). */
  origins?: Record<string, string>;
}

export interface ColumnLineage {
  phi: PhiClass;
  /** Readable paths from base columns to the output column, highest class first, then notes. */
  lineage: string[];
  /** True when some input reached the column through a generalizer. */
  generalized: boolean;
  /** Computed from an identifying value (not passed on as stored, nor only cast). */
  computed: boolean;
  /** Read from a source's or a model's data, not made of constants or a seed's values only (see LineageInput.lookups). */
  data: boolean;
  /** The base (`relation.column`) of the one input column it holds as stored (or cast), if that is all it holds. */
  stored?: string;
}

export type LineageResult =
  | {
      ok: true;
      columns: Record<string, ColumnLineage>;
      /** Paths of direct identifiers read outside the select list (predicates, joins, grouping, order). */
      implicitDirect: string[];
      /**
       * Paths of identifying values (quasi or direct, or what cannot be resolved) read by what
       * keeps rows (WHERE, HAVING, JOIN … ON, an ordered LIMIT), quasi first.
       */
      identifyingPredicates: { phi: PhiClass; path: string }[];
    }
  | { ok: false; error: string };

export const DEFAULT_GENERALIZERS: readonly string[] = ['tsf_generalized'];
const MAX_ERROR = 200;

export function columnLineage(input: LineageInput): LineageResult {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(input.sql);
  } catch (err) {
    return { ok: false, error: short(parseError(err, input.sql)) };
  }
  const stmts = parsed.stmts ?? [];
  const stmt = stmts[0]?.stmt;
  if (stmts.length !== 1 || !stmt) return { ok: false, error: `expected one SELECT statement, found ${stmts.length} statements` };
  if (!('SelectStmt' in stmt)) return { ok: false, error: `expected a SELECT statement, found ${Object.keys(stmt)[0] ?? 'nothing'}` };

  const relations = new Map<string, DeclaredRelation>();
  for (const [name, columns] of Object.entries(input.relations)) {
    const computed = input.computed?.[name];
    const listed = input.lookups?.[name];
    const lookup = listed === undefined ? undefined : listed === '*' ? ('*' as const) : new Set(listed.map((c) => c.toLowerCase()));
    relations.set(name.toLowerCase(), { name, columns, ...(computed ? { computed: new Set(computed.map((c) => c.toLowerCase())) } : {}), ...(lookup ? { lookup } : {}) });
  }
  const generalizers = new Set((input.generalizers ?? DEFAULT_GENERALIZERS).map((g) => g.toLowerCase()));

  try {
    const analyzer = new Analyzer(relations, generalizers, input.selfStored, input.origins ?? {});
    const shape = analyzer.select(stmt.SelectStmt, undefined, undefined);
    const byName = new Map<string, Info[]>();
    const add = (name: string, info: Info) => byName.set(name, [...(byName.get(name) ?? []), info]);
    for (const c of shape.columns) add(c.name, step(c.info, c.name));
    if (shape.opaque.length > 0) add('*', noteInfo(shape.opaque.map((o) => `unknown relation ${o}: its columns cannot be listed`)));
    const columns: Record<string, ColumnLineage> = {};
    for (const [name, infos] of byName) {
      const info = combine(infos);
      const data = info.notes.length === 0 && info.traces.length > 0 && info.traces.every((t) => !isLookupTrace(relations, t.base));
      const only = info.notes.length === 0 && info.traces.length === 1 && !info.traces[0]!.computed ? info.traces[0]!.base : undefined;
      columns[name] = {
        phi: info.phi,
        lineage: lineageLines(info),
        generalized: info.generalized,
        computed: info.traces.some((t) => t.computed === true && t.baseClass !== 'none'),
        data,
        ...(only !== undefined ? { stored: only } : {}),
      };
    }
    const implicitDirect = [...new Set(analyzer.implicit.filter((i) => i.phi === 'direct').flatMap((i) => lineageLines(i).slice(0, 1)))];
    const byClass = (phi: PhiClass) => [...new Set(analyzer.predicates.filter((i) => i.phi === phi).flatMap((i) => lineageLines(i).slice(0, 1)))].map((path) => ({ phi, path }));
    const identifyingPredicates = [...byClass('quasi'), ...byClass('direct')];
    return { ok: true, columns, implicitDirect, identifyingPredicates };
  } catch (err) {
    const message = err instanceof LineageError ? err.message : `lineage analysis failed: ${(err as Error).message}`;
    return { ok: false, error: short(message) };
  }
}

/** `SQL syntax error at line 3, column 14: syntax error at or near "exclude"`, never the SQL itself. */
function parseError(err: unknown, sql: string): string {
  const e = err as { message?: string; sqlDetails?: { message?: string; cursorPosition?: number } };
  const message = e.sqlDetails?.message ?? e.message ?? String(err);
  const pos = e.sqlDetails?.cursorPosition;
  if (pos === undefined || pos < 0) return `SQL parse error: ${message}`;
  const before = sql.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `SQL parse error at line ${line}, column ${column}: ${message} (PostgreSQL grammar; DuckDB-only syntax is not supported)`;
}

function short(s: string): string {
  return s.length <= MAX_ERROR ? s : `${s.slice(0, MAX_ERROR - 1)}…`;
}
