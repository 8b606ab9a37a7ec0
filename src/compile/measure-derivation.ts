/**
 * A published aggregate's measures (its outputs beside the keys and the count) are plain measures
 * of the whole cell (k-count-shape.ts measureProblem), and so must be what they measure: a CTE's
 * or an upstream research model's `max(CASE WHEN condition_code = … THEN 1 ELSE 0 END) AS flag`,
 * summed per cell, published how many of the cell's persons had a rare condition (one, beside
 * its sex), which the cell's count of k did not cover (red-team, 2026-12-07). So each column a
 * measure reads is followed through CTEs, derived tables and the research models above it, and
 * every expression on the way must be such a plain measure too. Below the research layer
 * (staging, sources, the vault) a column is data as stored.
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { ColumnTracer, columnRefs, measureColumns, type RelationLookup } from './counted-persons.ts';
import { measureProblem } from './k-count-shape.ts';
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { outputName, refFields, type Env } from './select-scope.ts';

/** Why a measure of the published aggregate `sql` is computed from a part of its cell, or undefined. */
export function measuredPartProblem(sql: string, kCount: string, lookup: RelationLookup): string | undefined {
  const tracer = new MeasureDerivation(lookup);
  const found = measureColumns(sql, kCount, (ref, arm, env) => tracer.column(refFields(ref), arm, env));
  return found && `measures ${outputName(found.target) ?? 'a column'} over ${refFields(found.ref).join('.')}, which ${found.said}; a measure reads columns as stored or measured over whole groups (a count or sum of a CASE, a comparison or a FILTER made in a CTE or a research model counts a part of each cell, which k persons per cell do not cover)`;
}

class MeasureDerivation extends ColumnTracer {
  constructor(lookup: RelationLookup) {
    super(lookup, (relation, name) => (relation === undefined ? `reads ${name}, which cannot be followed` : undefined));
  }

  protected override passed(target: Json, s: Json, env: Env, depth: number): string | undefined {
    if (isObject(target.val) && isObject(target.val.ColumnRef)) return super.passed(target, s, env, depth);
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
