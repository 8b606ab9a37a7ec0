/**
 * The names of the columns a relation has, for the batch check's binding of qualified names
 * (tenant-isolation.ts). In a sub-select DuckDB binds `p.practice_id` to a nested column `p`
 * (STRUCT, MAP, UNION or JSON) of a relation the sub-select reads before it binds an outer alias `p`
 * (PostgreSQL takes `p` for a relation first): an upstream model's `struct_pack(practice_id :=
 * …) AS p` made a correlation on `p.practice_id` match every practice of a batch. Names, not
 * order. DuckDB names an unaliased expression by its text (never a plain identifier), so only
 * aliases and plain column references' names count; PostgreSQL's derived names are taken too, a
 * superset (`bindingNames` adds DuckDB's own where they differ). Undefined: not known for certain (a `*`
 * over a relation whose columns are unknown, a call that expands into columns at run time, two
 * columns of one name). Pure.
 */
import type { DraftNode } from './draft-node.ts';
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { reservedRelationName } from './render.ts';
import { fromItems, leftmost, parseSelect, starQualifier, targetsOf, withCtes, emptyEnv, type Env, type FromItem } from './select-scope.ts';
import { derivedName, expandingCall, type Source } from './select-outputs.ts';

/** Column names of a relation by its name in a bare rendering; undefined when not known. */
export type ColumnNamesOf = (relation: string) => readonly string[] | undefined;

export function selectColumnNames(sql: string, columnsOf: ColumnNamesOf): string[] | undefined {
  const s = parseSelect(sql);
  if (!s) return undefined;
  const names = namesOf(s, emptyEnv(), columnsOf);
  return names ? bindingNames(names) : undefined;
}

/**
 * The names DuckDB gives columns named `names` (PostgreSQL's spelling): VALUES columns are
 * `col0, col1, …` there (`column1, …` in PostgreSQL), so both; undefined when two names are one
 * without regard to case, since DuckDB renames the later ones (`p`, `p_1`, `P_1`, `p_1_1`).
 */
export function bindingNames(names: readonly string[]): string[] | undefined {
  const lower = names.map((n) => n.toLowerCase());
  if (new Set(lower).size < lower.length) return undefined;
  return lower.flatMap((n) => {
    const position = /^column([1-9]\d*)$/.exec(n);
    return position ? [n, `col${Number(position[1]) - 1}`] : [n];
  });
}

function namesOf(top: Json, env: Env, columnsOf: ColumnNamesOf): string[] | undefined {
  const outerEnv = withCtes(top, env);
  const s = leftmost(top);
  const scope = s === top ? outerEnv : withCtes(s, outerEnv);
  if (Array.isArray(s.valuesLists)) {
    const first = isObject(s.valuesLists[0]) && isObject(s.valuesLists[0].List) ? ((s.valuesLists[0].List.items as unknown[]) ?? []) : [];
    return first.map((_, i) => `column${i + 1}`);
  }
  const items = fromItems((s.fromClause as unknown[]) ?? [], scope);
  const out: string[] = [];
  for (const t of targetsOf(s)) {
    const star = starQualifier(t);
    if (star !== undefined) {
      const expanded = items.filter((i) => star === '' || i.qualifier === star);
      // `s.*` naming no input is a struct column's fields in DuckDB.
      if (expanded.length === 0) return undefined;
      for (const item of expanded) {
        const cols = itemNames(item, columnsOf);
        if (!cols) return undefined;
        out.push(...cols);
      }
      continue;
    }
    if (expandingCall(t.val) !== undefined) return undefined;
    const name = typeof t.name === 'string' ? t.name.toLowerCase() : derivedName(t.val);
    if (name !== undefined) out.push(name);
  }
  return out;
}

function itemNames(item: FromItem, columnsOf: ColumnNamesOf): Iterable<string> | undefined {
  const src = item.source;
  if (src.kind === 'relation') return columnsOf(src.name.toLowerCase());
  // Renamed by position (`AS t(a, b)`): which names it ends with needs the order, which a set lacks.
  if (src.kind === 'select' && src.renamed !== true) {
    const names = namesOf(src.select, src.env, columnsOf);
    return names && bindingNames(names);
  }
  return undefined;
}

/**
 * Column names of every node, computed once each: a model's from its bare rendering (`bareSql`),
 * a seed's from its CSV header, a source's and a built-in relation's from their declared columns
 * (a source's raw table may hold more, but only as text or capture's scalar types, which never
 * take a qualified name's place; a declared `data_type` can be JSON).
 */
export function nodeColumnNames(nodes: Readonly<Record<string, DraftNode>>, seedHeaders: ReadonlyMap<string, readonly string[]>, bareSql: (id: string) => string | undefined): (id: string) => readonly string[] | undefined {
  const byRelation = new Map(Object.entries(nodes).map(([id, n]) => [unquote(reservedRelationName(n)).toLowerCase(), id]));
  const done = new Map<string, readonly string[] | undefined>();
  const visiting = new Set<string>();
  const of = (id: string): readonly string[] | undefined => {
    const node = nodes[id];
    if (!node) return undefined;
    if (node.kind === 'seed') return seedHeaders.get(node.name)?.map((h) => h.toLowerCase());
    if (node.kind !== 'model') return Object.keys(node.columns).map((c) => c.toLowerCase());
    if (done.has(id)) return done.get(id);
    if (visiting.has(id)) return undefined;
    visiting.add(id);
    const sql = bareSql(id);
    const names = sql === undefined ? undefined : selectColumnNames(sql, (rel) => {
      const up = byRelation.get(rel);
      return up === undefined ? undefined : of(up);
    });
    visiting.delete(id);
    done.set(id, names);
    return names;
  };
  return of;
}

export function unquote(quoted: string): string {
  return quoted.startsWith('"') ? quoted.slice(1, -1).replace(/""/g, '"') : quoted;
}

/**
 * The names of a FROM item's calls' columns: DuckDB names the column of unnest, range and
 * generate_series after the function, not the alias (`aliasNames` rename it); other functions
 * have columns of their own (json_each: key, value, …, JSON among them), not known here: null.
 */
export function functionColumns(functions: unknown, aliasNames: readonly string[]): readonly string[] | null {
  const called = ((functions as unknown[]) ?? []).map((f) => {
    const call = isObject(f) && isObject(f.List) ? (f.List.items as unknown[])?.[0] : undefined;
    return isObject(call) && isObject(call.FuncCall) ? sval(((call.FuncCall.funcname as unknown[]) ?? []).at(-1))?.toLowerCase() : undefined;
  });
  if (!called.every((n): n is string => n !== undefined && ONE_COLUMN_FUNCTIONS.has(n))) return null;
  return aliasNames.length > 0 ? aliasNames : called;
}

const ONE_COLUMN_FUNCTIONS = new Set(['unnest', 'range', 'generate_series']);

/** Every name a FROM item's columns may have in DuckDB; undefined when not known. */
export function fromItemNames(v: Source): string[] | undefined {
  if (v.columns === null || (v.outputs === undefined && v.columns === undefined)) return undefined;
  const outputs = v.outputs ? bindingNames(v.outputs.map((o) => o.name)) : [];
  const columns = v.columns ? bindingNames(v.columns) : [];
  return outputs && columns ? [...outputs, ...columns] : undefined;
}
