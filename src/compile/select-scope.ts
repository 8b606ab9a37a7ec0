/**
 * Names in one SELECT of libpg-query's tree: its CTEs, its FROM items by qualifier, its output
 * columns. Shared by the checks that follow a column through a model's SQL (counted-persons.ts,
 * person-rows.ts). Whatever cannot be followed is an `other` source with the reason, so that
 * callers fail closed on it.
 */
import { parseSync } from 'libpg-query';
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';

/** A CTE in scope: its body, or why it cannot be followed (it still hides a relation of its name). */
type Cte = { select: Json; env: Env } | { why: string };

export interface Env {
  ctes: Map<string, Cte>;
  outer?: Env;
}

/** `renamed`: an alias list (`AS t(a, b)`) renames the select's columns by position. */
export type Source = { kind: 'select'; select: Json; env: Env; renamed?: boolean } | { kind: 'relation'; name: string } | { kind: 'other'; why: string };

export interface FromItem {
  /** Lower-cased alias, or the table's name; '' for an item without one. */
  qualifier: string;
  source: Source;
}

export function parseSelect(sql: string): Json | undefined {
  try {
    return (parseSync(sql).stmts?.[0]?.stmt as Json | undefined)?.SelectStmt as Json | undefined;
  } catch {
    return undefined;
  }
}

export const emptyEnv = (): Env => ({ ctes: new Map() });
export const isSetOp = (s: Json): boolean => s.op !== undefined && s.op !== 'SETOP_NONE';
export const targetsOf = (s: Json): Json[] => ((s.targetList as unknown[]) ?? []).filter(isObject).map((t) => t.ResTarget as Json);

/** The SELECT whose select list names a set operation's columns (`s` itself when it is none). */
export function leftmost(s: Json): Json {
  return isSetOp(s) ? leftmost(s.larg as Json) : s;
}

/** The scope inside `s`: its own WITH clause's CTEs over `env`. */
export function withCtes(s: Json, env: Env): Env {
  const w = isObject(s.withClause) ? s.withClause : undefined;
  if (!w) return env;
  const local: Env = { ctes: new Map(), outer: env };
  for (const c of ((w.ctes as unknown[]) ?? []).filter(isObject)) {
    const cte = c.CommonTableExpr as Json;
    if (typeof cte.ctename !== 'string') continue;
    const name = cte.ctename.toLowerCase();
    const body = isObject(cte.ctequery) ? (cte.ctequery.SelectStmt as Json | undefined) : undefined;
    // Not followed, but kept in scope: a CTE named like a model or the vault hides it, as in the engines.
    if (w.recursive === true) local.ctes.set(name, { why: `${name} is a recursive CTE (its rows are computed from themselves)` });
    else if (!body || cte.aliascolnames) local.ctes.set(name, { why: `${name} renames its columns or is not a SELECT` });
    else local.ctes.set(name, { select: body, env: local });
  }
  return local;
}

function lookupCte(env: Env | undefined, name: string): Cte | undefined {
  for (let e = env; e; e = e.outer) {
    const found = e.ctes.get(name);
    if (found) return found;
  }
  return undefined;
}

/** The FROM list's items by the name a column may be qualified with (joins flattened). */
export function fromItems(list: readonly unknown[], env: Env): FromItem[] {
  const out: FromItem[] = [];
  const visit = (item: unknown): void => {
    if (!isObject(item)) return;
    if (isObject(item.JoinExpr)) {
      if (item.JoinExpr.alias) out.push({ qualifier: '', source: { kind: 'other', why: 'an aliased join cannot be followed' } });
      visit(item.JoinExpr.larg);
      visit(item.JoinExpr.rarg);
      return;
    }
    if (isObject(item.RangeVar)) {
      const rv = item.RangeVar;
      const alias = isObject(rv.alias) ? rv.alias : undefined;
      const name = String(rv.relname ?? '');
      const qualifier = (typeof alias?.aliasname === 'string' ? alias.aliasname : name).toLowerCase();
      const cte = rv.schemaname ? undefined : lookupCte(env, name.toLowerCase());
      if (cte && 'why' in cte) return void out.push({ qualifier, source: { kind: 'other', why: cte.why } });
      if (alias?.colnames && !cte) return void out.push({ qualifier, source: { kind: 'other', why: `${qualifier} renames its columns` } });
      const source: Source = cte ? { kind: 'select', ...cte, renamed: alias?.colnames !== undefined } : { kind: 'relation', name: rv.schemaname ? `${String(rv.schemaname)}.${name}` : name };
      return void out.push({ qualifier, source });
    }
    const sub = isObject(item.RangeSubselect) ? item.RangeSubselect : undefined;
    const alias = isObject(sub?.alias) ? sub.alias : undefined;
    const select = isObject(sub?.subquery) ? (sub.subquery.SelectStmt as Json | undefined) : undefined;
    const qualifier = typeof alias?.aliasname === 'string' ? alias.aliasname.toLowerCase() : '';
    if (select && sub?.lateral === true) return void out.push({ qualifier, source: { kind: 'other', why: `${qualifier} is LATERAL (it reads the rows beside it)` } });
    if (select) return void out.push({ qualifier, source: { kind: 'select', select, env, renamed: alias?.colnames !== undefined } });
    out.push({ qualifier, source: { kind: 'other', why: `${qualifier || 'an input'} is not a table, CTE or subquery that can be followed` } });
  };
  list.forEach(visit);
  return out;
}

/** A column reference's names, lower-cased; [] for `*` or anything not a plain name. */
export function refFields(val: Json): string[] {
  const fields = isObject(val.ColumnRef) ? ((val.ColumnRef.fields as unknown[]) ?? []) : [];
  const names = fields.map(sval);
  return names.every((n): n is string => n !== undefined) ? names.map((n) => n.toLowerCase()) : [];
}

/** The name a select item outputs under: its alias, or a plain column's name. */
export function outputName(t: Json | undefined): string | undefined {
  if (!t) return undefined;
  if (typeof t.name === 'string') return t.name.toLowerCase();
  return isObject(t.val) ? refFields(t.val).at(-1) : undefined;
}

/** `''` for `*`, `q` for `q.*`, undefined for anything else. */
export function starQualifier(t: Json): string | undefined {
  const fields = isObject(t.val) && isObject(t.val.ColumnRef) ? ((t.val.ColumnRef.fields as unknown[]) ?? []) : [];
  if (!fields.some((f) => isObject(f) && 'A_Star' in f)) return undefined;
  return fields.length === 1 ? '' : (sval(fields[0])?.toLowerCase() ?? '');
}

/** Where the leftmost arm of a set operation outputs `name` (-1: nowhere). */
export function outputPosition(s: Json, name: string): number {
  if (isSetOp(s)) return outputPosition(s.larg as Json, name);
  return targetsOf(s).findIndex((t) => outputName(t) === name);
}

/** Whether any node of the tree passes `test` (`ownLevel`: not looking inside sub-selects). */
export function contains(tree: unknown, test: (node: Json) => boolean, ownLevel = false): boolean {
  if (Array.isArray(tree)) return tree.some((t) => contains(t, test, ownLevel));
  if (!isObject(tree)) return false;
  if (test(tree)) return true;
  if (ownLevel && isObject(tree.SubLink)) return contains(tree.SubLink.testexpr, test, ownLevel);
  return Object.values(tree).some((v) => contains(v, test, ownLevel));
}

/** The sub-selects (SubLink nodes) in the tree, not those nested in them. */
export function subLinks(tree: unknown): Json[] {
  if (Array.isArray(tree)) return tree.flatMap(subLinks);
  if (!isObject(tree)) return [];
  if (isObject(tree.SubLink)) return [tree.SubLink, ...subLinks(tree.SubLink.testexpr)];
  return Object.values(tree).flatMap(subLinks);
}

/** A sub-select's SELECT ({} where it has none). */
export const subSelectOf = (link: Json): Json => (isObject(link.subselect) && isObject(link.subselect.SelectStmt) ? link.subselect.SelectStmt : {});

/** The SELECTs of the sub-selects in the tree (not those nested in them). */
export function subSelects(tree: unknown): Json[] {
  return subLinks(tree).map(subSelectOf);
}

/** The parts of a SelectStmt that are not expressions of its rows: its inputs, CTEs and set-operation arms. */
const NOT_ROW_CLAUSES = new Set(['fromClause', 'withClause', 'larg', 'rarg', 'op', 'all', 'intoClause']);

/**
 * Every clause of a SELECT that holds expressions (the FROM items themselves aside): every field
 * of the statement but its inputs, so that a clause nobody listed (VALUES rows, DISTINCT ON,
 * LIMIT, a WINDOW clause, one a later grammar adds) is read, not skipped; and the ON conditions
 * and table functions' arguments of its FROM list.
 */
export function rowClauses(s: Json): unknown[] {
  const from = (s.fromClause as unknown[]) ?? [];
  return [...ownClauses(s), ...joinQuals(from), ...functionArgs(from)];
}

/** The SELECT's own clauses: every field but its inputs, CTEs and set-operation arms. */
export function ownClauses(s: Json): unknown[] {
  return Object.entries(s).filter(([k]) => !NOT_ROW_CLAUSES.has(k)).map(([, v]) => v);
}

/** The arguments of the FROM list's table functions (`unnest(…)`, `generate_series(…)`), joins flattened. */
export function functionArgs(list: readonly unknown[]): unknown[] {
  return list.filter(isObject).flatMap((item) => {
    if (isObject(item.JoinExpr)) return functionArgs([item.JoinExpr.larg, item.JoinExpr.rarg]);
    return isObject(item.RangeFunction) ? [item.RangeFunction.functions] : [];
  });
}

/** The ON conditions of the FROM list's joins (the derived tables inside are not descended into). */
export function joinQuals(list: readonly unknown[]): unknown[] {
  return list.filter(isObject).flatMap((item) => (isObject(item.JoinExpr) ? [item.JoinExpr.quals, ...joinQuals([item.JoinExpr.larg, item.JoinExpr.rarg])] : []));
}

/** For messages: which SELECT, by its inputs' names. */
export function selectOver(items: readonly FromItem[]): string {
  const names = items.map((i) => i.qualifier).filter((q) => q !== '');
  return names.length > 0 ? `the SELECT over ${names.join(', ')}` : 'a SELECT';
}

/** `a.x = b.y` pairs AND-ed at the top of WHERE and of every ON; `JOIN … USING (c)` as `l.c = r.c`. */
export function equalities(s: Json): [string[], string[]][] {
  const out: [string[], string[]][] = [];
  const visit = (e: unknown): void => {
    if (!isObject(e)) return;
    if (isObject(e.BoolExpr) && e.BoolExpr.boolop === 'AND_EXPR') return void ((e.BoolExpr.args as unknown[]) ?? []).forEach(visit);
    const a = isObject(e.A_Expr) ? e.A_Expr : undefined;
    const op = ((a?.name as unknown[]) ?? []).filter(isObject).map((n) => (isObject(n.String) ? n.String.sval : '')).join('');
    if (a && a.kind === 'AEXPR_OP' && op === '=' && isObject(a.lexpr) && isObject(a.rexpr)) out.push([refFields(a.lexpr), refFields(a.rexpr)]);
  };
  visit(s.whereClause);
  const joins = (list: readonly unknown[]): void => {
    for (const item of list.filter(isObject)) {
      if (!isObject(item.JoinExpr)) continue;
      const j = item.JoinExpr;
      visit(j.quals);
      const left = fromItems([j.larg], emptyEnv()).map((i) => i.qualifier);
      const right = fromItems([j.rarg], emptyEnv()).map((i) => i.qualifier);
      for (const c of ((j.usingClause as unknown[]) ?? []).filter(isObject)) {
        const column = isObject(c.String) ? String(c.String.sval).toLowerCase() : '';
        if (left.length === 1 && right.length === 1) out.push([[left[0]!, column], [right[0]!, column]]);
      }
      joins([j.larg, j.rarg]);
    }
  };
  joins((s.fromClause as unknown[]) ?? []);
  return out;
}

/**
 * Pairs of inputs that `equalities` of `s` join on the sought column (each side passes `is`):
 * `a\u0000b` keys, the two qualifiers sorted.
 */
export function joinedPairs(s: Json, is: (fields: string[]) => boolean): Set<string> {
  return new Set(equalities(s).filter(([a, b]) => a.length === 2 && b.length === 2 && is(a) && is(b)).map(([a, b]) => [a[0]!, b[0]!].sort().join('\u0000')));
}

/** The first item not connected to the first by `pairs` (from joinedPairs), or undefined. */
export function firstApart(items: readonly FromItem[], pairs: Iterable<string>): FromItem | undefined {
  const parent = new Map(items.map((i) => [i.qualifier, i.qualifier]));
  const find = (q: string): string => (parent.get(q) === q || !parent.has(q) ? q : find(parent.get(q)!));
  for (const pair of pairs) {
    const [a, b] = pair.split('\u0000') as [string, string];
    if (parent.has(a) && parent.has(b)) parent.set(find(a), find(b));
  }
  return items.find((i) => find(i.qualifier) !== find(items[0]!.qualifier));
}
