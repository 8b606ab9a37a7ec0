/**
 * The names of the columns a relation has, for the batch check's binding of qualified names
 * (tenant-isolation.ts). In a sub-select DuckDB binds `p.practice_id` to a nested column `p`
 * (STRUCT, MAP or UNION) of a relation the sub-select reads before it binds an outer alias `p`
 * (PostgreSQL takes `p` for a relation first): an upstream model's `struct_pack(practice_id :=
 * …) AS p` made a correlation on `p.practice_id` match every practice of a batch. Names, not
 * order. DuckDB names an unaliased expression by its text (never a plain identifier), so only
 * aliases and plain column references' names count; PostgreSQL's derived names are taken too, a
 * superset. Undefined: not known for certain (a `*` over a relation whose columns are unknown,
 * a call that expands into columns at run time). Pure.
 */
import type { DraftNode } from './draft-node.ts';
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { reservedRelationName } from './render.ts';
import { fromItems, leftmost, parseSelect, starQualifier, targetsOf, withCtes, emptyEnv, type Env, type FromItem } from './select-scope.ts';
import { derivedName, expandingCall } from './select-outputs.ts';

/** Column names of a relation by its name in a bare rendering; undefined when not known. */
export type ColumnNamesOf = (relation: string) => readonly string[] | undefined;

export function selectColumnNames(sql: string, columnsOf: ColumnNamesOf): string[] | undefined {
  const s = parseSelect(sql);
  if (!s) return undefined;
  const names = namesOf(s, emptyEnv(), columnsOf);
  return names ? [...names] : undefined;
}

function namesOf(top: Json, env: Env, columnsOf: ColumnNamesOf): Set<string> | undefined {
  const outerEnv = withCtes(top, env);
  const s = leftmost(top);
  const scope = s === top ? outerEnv : withCtes(s, outerEnv);
  if (Array.isArray(s.valuesLists)) {
    const first = isObject(s.valuesLists[0]) && isObject(s.valuesLists[0].List) ? ((s.valuesLists[0].List.items as unknown[]) ?? []) : [];
    return new Set(first.map((_, i) => `column${i + 1}`));
  }
  const items = fromItems((s.fromClause as unknown[]) ?? [], scope);
  const out = new Set<string>();
  for (const t of targetsOf(s)) {
    const star = starQualifier(t);
    if (star !== undefined) {
      const expanded = items.filter((i) => star === '' || i.qualifier === star);
      // `s.*` naming no input is a struct column's fields in DuckDB.
      if (expanded.length === 0) return undefined;
      for (const item of expanded) {
        const cols = itemNames(item, columnsOf);
        if (!cols) return undefined;
        for (const c of cols) out.add(c);
      }
      continue;
    }
    if (expandingCall(t.val) !== undefined) return undefined;
    const name = typeof t.name === 'string' ? t.name.toLowerCase() : derivedName(t.val);
    if (name !== undefined) out.add(name);
  }
  return out;
}

function itemNames(item: FromItem, columnsOf: ColumnNamesOf): Iterable<string> | undefined {
  const src = item.source;
  if (src.kind === 'relation') return columnsOf(src.name.toLowerCase());
  // Renamed by position (`AS t(a, b)`): which names it ends with needs the order, which a set lacks.
  if (src.kind === 'select' && src.renamed !== true) return namesOf(src.select, src.env, columnsOf);
  return undefined;
}

/**
 * Column names of every node, computed once each: a model's from its bare rendering (`bareSql`),
 * a seed's from its CSV header, a built-in relation's from its declared columns. A source's raw
 * table holds only scalar columns (capture maps every OLTP type to one, source-columns.ts), and a
 * scalar column never takes a qualified name's place: its names are left out.
 */
export function nodeColumnNames(nodes: Readonly<Record<string, DraftNode>>, seedHeaders: ReadonlyMap<string, readonly string[]>, bareSql: (id: string) => string | undefined): (id: string) => readonly string[] | undefined {
  const byRelation = new Map(Object.entries(nodes).map(([id, n]) => [unquote(reservedRelationName(n)).toLowerCase(), id]));
  const done = new Map<string, readonly string[] | undefined>();
  const visiting = new Set<string>();
  const of = (id: string): readonly string[] | undefined => {
    const node = nodes[id];
    if (!node) return undefined;
    if (node.kind === 'seed') return seedHeaders.get(node.name)?.map((h) => h.toLowerCase());
    if (node.kind === 'source') return [];
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
