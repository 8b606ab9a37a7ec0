/**
 * The output columns of a SELECT as the engines name them, and which of them is each row's own
 * practice, for the batch check (tenant-isolation.ts). The runner finds each row's practice by
 * the column's name, so a name the engine gives without an alias counts as much as an alias:
 * PostgreSQL names `f.practice_id::varchar` and `(select f.practice_id …)` "practice_id". Set
 * operations and column-alias lists (`x(practice_id, …)`, `with t(practice_id, …)`) match
 * columns by position, not by name. Pure.
 */
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { leftmost, targetsOf } from './select-scope.ts';

/** One output column: its name (lower case), and whether each row's value is that row's own practice. */
export interface Output {
  name: string;
  own: boolean;
}

/** What a FROM item, CTE or sub-select gives its reader. */
export interface Source {
  /** It reads practices' rows. */
  tenant: boolean;
  /** It outputs the tenant column as each row's own practice. */
  labelled: boolean;
  /** Its columns in order, when known (a `*` over a relation hides them). */
  outputs?: Output[];
  /**
   * For binding only: the names of its columns beyond `outputs` where known (relation-columns.ts);
   * null where they are not known even though `outputs` are (a table function's column list).
   */
  columns?: readonly string[] | null;
}

/** The FROM items of one SELECT, as its expressions see them. */
export interface Items {
  byAlias: Map<string, Source>;
  links: UnionFind;
  /** Aliases joined USING the tenant column (or NATURAL), each to its join's aliases: an unqualified tenant column there is their merged one. */
  merged: Map<string, ReadonlySet<string>>;
}

/**
 * `x` is, in each row, that row's own practice: `alias.tc` of a tenant-scoped input whose tenant
 * column is its rows' own, or an unqualified `tc` that can only be such a column (or the merged
 * column of a join USING it).
 */
export function isOwnTenantColumn(x: unknown, items: Items, tc: string): boolean {
  const fields = isObject(x) && isObject(x.ColumnRef) ? ((x.ColumnRef.fields as unknown[]) ?? []).map((f) => sval(f)?.toLowerCase()) : [];
  if (fields.at(-1) !== tc) return false;
  if (fields.length === 2) {
    const src = items.byAlias.get(fields[0]!);
    return src?.tenant === true && src.labelled;
  }
  if (fields.length !== 1) return false;
  // An input whose columns are not known may have one of that name, and the engine may take it.
  const holders = [...items.byAlias].filter(([, src]) => (src.outputs ? src.outputs.some((o) => o.name === tc) : src.tenant ? src.labelled : true));
  return holders.length > 0 && holders.every(([alias]) => ownInput(alias, items, tc));
}

/** The tenant column an unqualified reference finds in this input is its rows' own practice (merged by USING: some input of the join's). */
export function ownInput(alias: string, items: Items, tc: string): boolean {
  const own = (a: string) => {
    const src = items.byAlias.get(a);
    return src !== undefined && src.tenant && src.labelled && (src.outputs ?? []).every((o) => o.name !== tc || o.own);
  };
  const group = items.merged.get(alias);
  return group ? [...group].some(own) : own(alias);
}

/**
 * The SELECT's output columns, with the names the engines give them; a column named as the
 * tenant column that is not each row's own practice is a finding when the SELECT reads
 * practices' rows (`readsPractices`). `labelled`: one of them is the row's own practice.
 */
export function selectOutputs(s: Json, items: Items, tc: string, readsPractices: boolean, report: (f: { message: string; near?: string }) => void): { outputs: Output[] | undefined; labelled: boolean } {
  if (Array.isArray(s.valuesLists)) {
    const first = isObject(s.valuesLists[0]) && isObject(s.valuesLists[0].List) ? ((s.valuesLists[0].List.items as unknown[]) ?? []) : [];
    return { outputs: first.map((_, i) => ({ name: `column${i + 1}`, own: false })), labelled: false };
  }
  const out: Output[] = [];
  let known = true;
  let labelled = false;
  const computed = (what: string) => {
    if (readsPractices) report({ message: `${what}, so a row can carry another practice of the batch`, near: tc });
  };
  for (const t of targetsOf(s)) {
    const fields = isObject(t.val) && isObject(t.val.ColumnRef) ? ((t.val.ColumnRef.fields as unknown[]) ?? []) : [];
    const expands = expandingCall(t.val);
    if (expands !== undefined) {
      known = false;
      if (readsPractices) report({ message: `uses ${expands} in its select list, which DuckDB expands into columns it names at run time (a struct's fields, the columns a pattern picks), so where its ${tc} comes from cannot be followed; list the columns (an unnest in FROM: cross join unnest(…) as u(x))`, near: expands.replace(/\(.*$/, '') });
      continue;
    }
    if (fields.length > 0 && isObject(fields.at(-1)) && 'A_Star' in (fields.at(-1) as Json)) {
      const alias = fields.length >= 2 ? fields.slice(0, -1).map((f) => sval(f)?.toLowerCase()).join('.') : undefined;
      const expanded = alias === undefined ? [...items.byAlias] : [[alias, items.byAlias.get(alias)] as const];
      for (const [name, src] of expanded) {
        if (!src) {
          // Not an input: DuckDB reads `s.*` as the fields of a struct column s.
          known = false;
          if (readsPractices) report({ message: `outputs ${name}.*, which is not one of its inputs (DuckDB expands a struct column's fields, which may name ${tc}); list the columns`, near: tc });
          continue;
        }
        if (src.tenant && src.labelled) labelled = true;
        // `*` gives a join's USING columns once, first, merged: positions no longer follow the inputs'.
        const group = alias === undefined ? items.merged.get(name) : undefined;
        if (group) {
          known = false;
          if (!ownInput(name, items, tc)) computed(`outputs *, whose ${tc} merged by USING is not its rows' own practice`);
          continue;
        }
        if (src.outputs) {
          out.push(...src.outputs);
          if (src.outputs.some((o) => o.name === tc && !o.own)) computed(`outputs ${name}.*, whose ${tc} is not its rows' own practice`);
          continue;
        }
        known = false;
        if (!src.tenant && readsPractices) report({ message: `outputs ${name}.* beside practices' rows, and the columns of ${name} are not known here (a ${tc} among them would label rows with another practice); list them`, near: name });
      }
      continue;
    }
    const name = typeof t.name === 'string' ? t.name.toLowerCase() : (derivedName(t.val) ?? '?column?');
    const own = isOwnTenantColumn(t.val, items, tc);
    out.push({ name, own });
    if (name !== tc) continue;
    if (own) labelled = true;
    else if (fields.length === 1) computed(`outputs an unqualified ${tc} that can be the column of an input whose ${tc} is not its rows' own (a seed's, a function's, an unknown relation's): qualify it with its input`);
    else computed(`computes its ${tc} instead of passing on its input row's`);
  }
  return { outputs: known ? out : undefined, labelled };
}

/** DuckDB functions that turn one select-list item into columns named at run time. */
const EXPANDING = new Set(['columns', 'unnest', 'unpack']);

/** `name(…)` when the expression (not its sub-selects) calls one of EXPANDING, or is `(expr).*`. */
export function expandingCall(x: unknown): string | undefined {
  let found: string | undefined;
  const visit = (n: unknown): void => {
    if (found !== undefined) return;
    if (Array.isArray(n)) return n.forEach(visit);
    if (!isObject(n)) return;
    for (const [k, v] of Object.entries(n)) {
      if (k === 'SubLink' || k === 'SelectStmt') continue;
      if (k === 'FuncCall' && isObject(v)) {
        const name = sval(((v.funcname as unknown[]) ?? []).at(-1))?.toLowerCase();
        if (name !== undefined && EXPANDING.has(name)) found = `${name}(…)`;
      }
      if (k === 'A_Indirection' && isObject(v) && ((v.indirection as unknown[]) ?? []).some((i) => isObject(i) && 'A_Star' in i)) found = '(…).*';
      visit(v);
    }
  };
  visit(x);
  return found;
}

/** The name PostgreSQL gives an output without an alias (FigureColname), lower case; undefined: `?column?`. */
export function derivedName(x: unknown): string | undefined {
  if (!isObject(x)) return undefined;
  if (isObject(x.ColumnRef)) return lower(sval(((x.ColumnRef.fields as unknown[]) ?? []).at(-1)));
  if (isObject(x.A_Indirection)) {
    const named = ((x.A_Indirection.indirection as unknown[]) ?? []).map((i) => sval(i)).filter((n) => n !== undefined);
    return named.length > 0 ? lower(named.at(-1)) : derivedName(x.A_Indirection.arg);
  }
  if (isObject(x.TypeCast)) {
    const typeName = isObject(x.TypeCast.typeName) ? ((x.TypeCast.typeName.names as unknown[]) ?? []) : [];
    return derivedName(x.TypeCast.arg) ?? lower(sval(typeName.at(-1)));
  }
  if (isObject(x.CollateClause)) return derivedName(x.CollateClause.arg);
  if (isObject(x.FuncCall)) return lower(sval(((x.FuncCall.funcname as unknown[]) ?? []).at(-1)));
  if (isObject(x.SubLink) && x.SubLink.subLinkType === 'EXPR_SUBLINK') {
    const body = isObject(x.SubLink.subselect) ? (x.SubLink.subselect.SelectStmt as Json | undefined) : undefined;
    const target = body ? targetsOf(leftmost(body))[0] : undefined;
    return typeof target?.name === 'string' ? target.name.toLowerCase() : derivedName(target?.val);
  }
  return undefined;
}

/** Names of an alias's column list (`x(a, b)`), lower case; [] when it has none. */
export function aliasColumns(alias: unknown): string[] {
  if (!isObject(alias)) return [];
  return ((alias.colnames as unknown[]) ?? []).map((c) => sval(c)?.toLowerCase() ?? '');
}

/** Outputs renamed by a column-alias list: the first names replaced in order, the rest kept. */
export function renamed(outputs: readonly Output[], names: readonly string[]): Output[] {
  return outputs.map((o, i) => (i < names.length ? { name: names[i]!, own: o.own } : o));
}

function lower(x: string | undefined): string | undefined {
  return x?.toLowerCase();
}

/** Aliases joined by equal tenant columns. */
export class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    while (p !== (this.parent.get(p) ?? p)) p = this.parent.get(p) ?? p;
    if (p !== x) this.parent.set(x, p);
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra, rb);
  }
}
