/**
 * Sub-selects that read one relation once per row of the query around them: a sub-select (or a
 * LATERAL subquery) that reads `relation` and names a column of an enclosing query. PostgreSQL
 * does not decorrelate these: it runs the sub-select for every outer row. An incremental model's
 * high-water mark written so (`where t.practice_id = e.practice_id` over `{{this}}`) made one
 * large practice's steady run quadratic (README, bench:nightly). Pure: the WebAssembly parser only.
 */
import { loadModule, parseSync } from 'libpg-query';
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { charOffsetOfByte } from './line-map.ts';

await loadModule();

/** 0-based character offsets in `sql` of each correlated sub-select reading `relation`; none when the text does not parse. */
export function correlatedReadsOf(sql: string, relation: string): number[] {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(sql);
  } catch {
    return [];
  }
  const found: number[] = [];
  visit(parsed, (node) => {
    const sub = subselectOf(node);
    if (!sub || !reads(sub.select, relation)) return;
    const inside = namesDefinedIn(sub.select);
    if (qualifiersIn(sub.select).some((q) => !inside.has(q))) found.push(charOffsetOfByte(sql, sub.location));
  });
  return found.sort((a, b) => a - b);
}

/** A scalar, EXISTS or IN sub-select, or a LATERAL subquery in FROM: its SELECT and where it starts. */
function subselectOf(node: Json): { select: Json; location: number } | undefined {
  if (isObject(node.SubLink) && isObject(node.SubLink.subselect)) {
    return { select: node.SubLink.subselect, location: Number(node.SubLink.location ?? 0) };
  }
  const rs = node.RangeSubselect;
  if (isObject(rs) && rs.lateral === true && isObject(rs.subquery)) {
    const location = isObject(rs.subquery.SelectStmt) ? firstLocation(rs.subquery.SelectStmt) : 0;
    return { select: rs.subquery, location };
  }
  return undefined;
}

function visit(node: unknown, fn: (n: Json) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) visit(n, fn);
    return;
  }
  if (!isObject(node)) return;
  fn(node);
  for (const v of Object.values(node)) visit(v, fn);
}

/** Whether `select`'s FROM clauses (its own and nested ones) name `relation`. */
function reads(select: Json, relation: string): boolean {
  let hit = false;
  visit(select, (n) => {
    if (isObject(n.RangeVar) && n.RangeVar.relname === relation && n.RangeVar.schemaname === undefined) hit = true;
  });
  return hit;
}

/** Relation names and aliases (lower case) defined anywhere inside `select`: what its own column references may be qualified by. */
function namesDefinedIn(select: Json): Set<string> {
  const names = new Set<string>();
  visit(select, (n) => {
    if (isObject(n.RangeVar)) names.add(String(n.RangeVar.relname).toLowerCase());
    for (const holder of [n.RangeVar, n.RangeSubselect, n.RangeFunction, n.JoinExpr]) {
      if (isObject(holder) && isObject(holder.alias)) names.add(String(holder.alias.aliasname).toLowerCase());
    }
    if (isObject(n.CommonTableExpr)) names.add(String(n.CommonTableExpr.ctename).toLowerCase());
  });
  return names;
}

/** Qualifiers (lower case) of the qualified column references inside `select` (`t.x` gives `t`). */
function qualifiersIn(select: Json): string[] {
  const out: string[] = [];
  visit(select, (n) => {
    if (!isObject(n.ColumnRef)) return;
    const fields = (n.ColumnRef.fields as unknown[]) ?? [];
    const qualifier = fields.length >= 2 ? sval(fields[fields.length - 2]) : undefined;
    if (qualifier !== undefined) out.push(qualifier.toLowerCase());
  });
  return out;
}

function firstLocation(node: unknown): number {
  let min = Number.POSITIVE_INFINITY;
  visit(node, (n) => {
    if (typeof n.location === 'number' && n.location >= 0) min = Math.min(min, n.location);
  });
  return Number.isFinite(min) ? min : 0;
}
