/**
 * A published aggregate's measures (its outputs beside the keys and the count) are plain measures
 * of the whole cell (k-count-shape.ts measureProblem), and so must be what they measure: a CTE's
 * or an upstream research model's `max(CASE WHEN condition_code = … THEN 1 ELSE 0 END) AS flag`,
 * summed per cell, published how many of the cell's persons had a rare condition (one, beside
 * its sex), which the cell's count of k did not cover (red-team, 2026-12-07). So each column a
 * measure reads is followed through CTEs, derived tables and the research models above it, and
 * every expression on the way must be such a plain measure too. Below the research layer
 * (staging, sources, the vault) a column is data as stored.
 *
 * Which rows carry a measured value must be the cell's rows, not a part a join or filter chose
 * (red-team, 2026-12-07): `sum(f.one)` of a CTE's `1 AS one` filtered to a rare condition and
 * LEFT JOINed to the cell's persons published how many had it. So on the way a measure may not
 * read a constant (it counts the rows that carry it), the optional side of an outer join (the
 * rows its ON chose beside every person of the cell), or a UNION, INTERSECT or EXCEPT (an arm can
 * pad a chosen part with zeros for everyone else), nor a seed's column (a CASE moved into a CSV);
 * and no measure counts over rows that an outer join or a set operation made, anywhere in the
 * relations its FROM reads (a CTE's `persons UNION ALL rare persons` under `count(*)`).
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { ColumnTracer, columnRefs, measureColumns, type RelationLookup } from './counted-persons.ts';
import { cellMeasures, measureProblem, setArms } from './k-count-shape.ts';
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { emptyEnv, fromItems, isSetOp, outputName, parseSelect, refFields, withCtes, type Env } from './select-scope.ts';

/** Why a measure of the published aggregate `sql` is computed from a part of its cell, or undefined. */
export function measuredPartProblem(sql: string, kCount: string, lookup: RelationLookup): string | undefined {
  const tracer = new MeasureDerivation(lookup);
  const found = measureColumns(sql, kCount, (ref, arm, env) => tracer.column(refFields(ref), arm, env));
  if (found) return `measures ${outputName(found.target) ?? 'a column'} over ${refFields(found.ref).join('.')}, which ${found.said}; a measure reads columns as stored or measured over whole groups (a count or sum of a CASE, a comparison or a FILTER made in a CTE or a research model counts a part of each cell, which k persons per cell do not cover)`;
  const select = parseSelect(sql);
  const top = select && withCtes(select, emptyEnv());
  for (const m of select && top ? cellMeasures(select, kCount) : []) {
    const why = rowsProblem(m.select, m.select === select ? top! : withCtes(m.select, top!), lookup, 0);
    if (why) return `measures ${outputName(m.target) ?? 'a column'} over rows made by ${why}, which can repeat or add a chosen part of each cell's rows beside its persons; a measure counts over inner joins of relations as stored`;
  }
  // Counts alone too: `join (select …, 'all' as grp … UNION ALL select …, 'not rare' … where …) g`
  // keyed by g.grp published two cells of overlapping populations, one person apart.
  for (const arm of select && top ? setArms(select) : []) {
    const why = rowsProblem(arm, arm === select ? top! : withCtes(arm, top!), lookup, 0, true);
    if (why) return `counts its cells over rows made by ${why}, whose arms can hold overlapping populations (by difference, a part of a cell that k persons do not cover)`;
  }
  return undefined;
}

/**
 * What, in the FROM of `s` and of the CTEs, derived tables and research models it reads, adds or
 * repeats rows that a condition chose: `count(*)` over a CTE that UNIONs the persons with the
 * rare condition's persons, or over a CTE's LEFT JOIN to that condition's rows, counted them.
 */
function rowsProblem(s: Json, env: Env, lookup: RelationLookup, depth: number, setOpsOnly = false): string | undefined {
  if (depth > 40) return 'relations too deep to follow';
  if (isSetOp(s) && depth > 0) return 'a UNION, INTERSECT or EXCEPT';
  if (!setOpsOnly && optionalItems(s).size > 0) return 'an outer join';
  for (const item of fromItems((s.fromClause as unknown[]) ?? [], env)) {
    const src = item.source;
    if (src.kind === 'other') {
      if (setOpsOnly) continue;
      return src.why;
    }
    if (src.kind === 'select') {
      const why = rowsProblem(src.select, withCtes(src.select, src.env), lookup, depth + 1, setOpsOnly);
      if (why) return why;
      continue;
    }
    const found = lookup(src.name);
    if (found?.kind !== 'model') continue;
    for (const sql of found.sqls) {
      const body = parseSelect(sql);
      const why = body ? rowsProblem(body, withCtes(body, emptyEnv()), lookup, depth + 1, setOpsOnly) : setOpsOnly ? undefined : 'a model that cannot be read';
      if (why) return why;
    }
  }
  return undefined;
}

/** Qualifiers of the FROM items of `s` that an outer join may leave empty (LEFT's right side, RIGHT's left, both of FULL). */
function optionalItems(s: Json): Set<string> {
  const out = new Set<string>();
  const visit = (item: unknown, optional: boolean): void => {
    if (!isObject(item)) return;
    if (isObject(item.JoinExpr)) {
      const t = String(item.JoinExpr.jointype);
      visit(item.JoinExpr.larg, optional || t === 'JOIN_RIGHT' || t === 'JOIN_FULL');
      visit(item.JoinExpr.rarg, optional || t === 'JOIN_LEFT' || t === 'JOIN_FULL');
      return;
    }
    if (optional) for (const i of fromItems([item], emptyEnv())) out.add(i.qualifier);
  };
  for (const f of (s.fromClause as unknown[]) ?? []) visit(f, false);
  return out;
}

class MeasureDerivation extends ColumnTracer {
  constructor(lookup: RelationLookup) {
    // A seed is values the project wrote per key: a CSV of codes and 0/1 is a CASE moved into a file.
    super(lookup, (relation, name) => (relation === undefined ? `reads ${name}, which cannot be followed` : relation.kind === 'seed' ? `is a column of the seed ${relation.name}, values the project wrote per key (a CASE in a file)` : undefined));
  }

  override column(fields: string[], s: Json, env: Env, depth = 0): string | undefined {
    // Unqualified, a column is read among several items only when it names one (the base refuses it).
    if (fields.length === 2 && optionalItems(s).has(fields[0]!)) return `is read from ${fields[0]}, on the optional side of an outer join (rows its ON chose beside every person of the cell); join it with an inner join`;
    return super.column(fields, s, env, depth);
  }

  override output(s: Json, name: string, env: Env, depth = 0): string | undefined {
    if (isSetOp(s)) return `is made by a UNION, INTERSECT or EXCEPT (an arm can pad a chosen part of each cell with other rows)`;
    return super.output(s, name, env, depth);
  }

  protected override passed(target: Json, s: Json, env: Env, depth: number): string | undefined {
    if (isObject(target.val) && isObject(target.val.ColumnRef)) return super.passed(target, s, env, depth);
    if (columnRefs(target.val).length === 0 && !isCount(target.val)) return `is a constant (as ${outputName(target) ?? 'a column'}), which counts the rows that carry it, chosen by a join or filter`;
    // A column computed on the way is read per row by the measure above it.
    const problem = measureProblem(target.val, false, true);
    if (problem) return `is computed with ${problem} (as ${outputName(target) ?? 'a column'})`;
    for (const ref of columnRefs(target.val)) {
      const why = this.column(refFields(ref), s, env, depth);
      if (why) return why;
    }
    return undefined;
  }
}

/** `count(*)` or `count(1)`: the rows of a group, which the group's own filter chose. */
function isCount(x: unknown): boolean {
  const fc = isObject(x) && isObject(x.FuncCall) ? x.FuncCall : undefined;
  return fc !== undefined && sval(((fc.funcname as unknown[]) ?? []).at(-1))?.toLowerCase() === 'count';
}
