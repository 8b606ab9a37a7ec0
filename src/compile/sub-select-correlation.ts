/**
 * Whether a sub-select is matched to the row of the SELECT it sits in, on a key that names one
 * person (the person token, or practice and patient id together): AND-ed equalities of an inner
 * and an outer column, or `(o.a, o.b) IN (select i.a, i.b …)` by position. Shared by
 * person-rows.ts and patient-rows.ts; a key is given as the tracers that must all match.
 */
import type { ColumnTracer } from './counted-persons.ts';
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { equalities, fromItems, isSetOp, refFields, subSelectOf, targetsOf, withCtes, type Env } from './select-scope.ts';

/** `keys`: alternatives, each a list of tracers (columns) that must all be matched. */
export function isCorrelated(link: Json, s: Json, env: Env, keys: readonly (readonly ColumnTracer[])[]): boolean {
  const sub = subSelectOf(link);
  const subEnv = withCtes(sub, env);
  const inner = new Set(fromItems((sub.fromClause as unknown[]) ?? [], subEnv).map((i) => i.qualifier));
  const innerKey = (t: ColumnTracer, f: string[]) => ((f.length === 1 && inner.size === 1) || (f.length === 2 && inner.has(f[0]!))) && t.column(f, sub, subEnv) === undefined;
  const outerKey = (t: ColumnTracer, f: string[]) => f.length === 2 && !inner.has(f[0]!) && t.column(f, s, env) === undefined;
  const keyed = (t: ColumnTracer) => equalities(sub).some(([a, b]) => (innerKey(t, a) && outerKey(t, b)) || (innerKey(t, b) && outerKey(t, a)));
  if (keys.some((key) => key.every(keyed))) return true;
  if (link.subLinkType !== 'ANY_SUBLINK' || isSetOp(sub)) return false;
  const test = isObject(link.testexpr) && isObject(link.testexpr.RowExpr) ? ((link.testexpr.RowExpr.args as unknown[]) ?? []) : [link.testexpr];
  const targets = targetsOf(sub);
  const matched = (t: ColumnTracer) =>
    test.some((e, i) => {
      const target = targets[i]?.val;
      return isObject(e) && isObject(target) && outerKey(t, refFields(e)) && innerKey(t, refFields(target));
    });
  return keys.some((key) => key.every(matched));
}
