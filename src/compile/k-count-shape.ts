/**
 * The publication gate of a published aggregate trusts its `k_anonymity_count` column: a cell
 * whose count is k or more is published as it is. So the column must be a count of the rows of
 * its cell, made where the cell is: `count(*)`, `count(x)` or `count(DISTINCT x)`, unwindowed and
 * unfiltered, in the outermost SELECT, which groups by every other column it outputs. A constant
 * (`50 as n`), a window (`count(*) over ()`), arithmetic (`count(*) * 20`), a FILTER that zeroes
 * the count, or a count computed in a subquery and passed on would publish cells of one person;
 * so would a GROUP BY key the SELECT does not output (`GROUP BY person_token, age_band` with
 * only the band shown), so every key must be an output column. Its other outputs are plain
 * measures of the whole cell (measureProblem), and EXCEPT or INTERSECT, which choose cells by
 * another population, are refused.
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { parseSelect, targetsOf } from './select-scope.ts';

/** Why the model's `kCount` column is not such a count, or undefined when it is. */
export function kCountShapeProblem(sql: string, kCount: string): string | undefined {
  const stmt = parseSelect(sql);
  return stmt ? selectProblem(stmt, kCount.toLowerCase()) : undefined;
}

/** `names`: the output names of a set operation's leftmost arm, which name every arm's columns. */
function selectProblem(s: Json, kCount: string, position?: number, names?: readonly (string | undefined)[]): string | undefined {
  if (s.op === 'SETOP_EXCEPT' || s.op === 'SETOP_INTERSECT') {
    // Each arm's cells pass on their own; which of them the set operation keeps is chosen by the
    // other arm's population (`… EXCEPT` the same cells without one person's quasi values).
    return `chooses its cells with ${String(s.op).slice(6)}, by another population's cells (which cells are published tells of their members); publish each population's cells as they are, with UNION ALL if needed`;
  }
  if (s.op !== undefined && s.op !== 'SETOP_NONE') {
    // Arms over the same rows are grains of one population (by sex, and in total). Over other rows
    // they overlap: `… UNION ALL …` of every person and of every person but the rare condition's
    // (a WHERE, a join) published, by difference, that one person's count and cost.
    const arms = setArms(s);
    const population = (arm: Json) => withoutLocations(positionalAliases([arm.fromClause, arm.whereClause]));
    if (arms.some((arm) => population(arm) !== population(arms[0]!))) {
      return `publishes, with UNION, cells of arms that read other rows (another FROM or WHERE): cells of overlapping populations give, by difference, a part of a cell that k persons do not cover; arms may differ only in their grain (their keys), over the same FROM and WHERE`;
    }
    // UNION and the like: every arm must be such a count, at the place the first arm names it.
    const left = (s.larg as Json) ?? {};
    const at = position ?? positionOf(left, kCount);
    const armNames = names ?? targetsOf(setArms(left)[0]!).map(targetName);
    return selectProblem(left, kCount, at, armNames) ?? selectProblem((s.rarg as Json) ?? {}, kCount, at, armNames);
  }
  const targets = targetsOf(s);
  const at = position ?? targets.findIndex((t) => targetName(t)?.toLowerCase() === kCount);
  const target = at >= 0 ? targets[at] : undefined;
  if (!target) return `outputs no column ${kCount} in its outermost SELECT`;
  const fc = isObject(target.val) ? (target.val.FuncCall as Json | undefined) : undefined;
  const fn = fc ? sval(((fc.funcname as unknown[]) ?? []).at(-1))?.toLowerCase() : undefined;
  if (!fc || fn !== 'count') return `computes ${kCount} other than as count(…) in its outermost SELECT`;
  if (fc.over) return `computes ${kCount} with a window (count(…) OVER), which counts no cell`;
  if (fc.agg_filter) return `filters the count in ${kCount} (FILTER), which can publish a cell as 0`;
  const grouped = Array.isArray(s.groupClause) && s.groupClause.length > 0;
  const others = targets.filter((t) => t !== target && !isAggregate(t.val));
  if (others.length > 0 && !grouped) return `outputs columns beside ${kCount} without GROUP BY`;
  const keys = groupKeys((s.groupClause as unknown[]) ?? []);
  for (const key of keys) {
    const problem = groupKeyProblem(key, targets);
    if (problem) return problem;
  }
  const chosen = cellChoiceProblem(s, targets, keys, target);
  if (chosen) return chosen;
  for (const [i, t] of targets.entries()) {
    if (t === target || isKey(t, i, keys)) continue;
    const problem = measureProblem(t.val, false);
    if (problem) return `computes ${names?.[i] ?? targetName(t) ?? `column ${i + 1}`} over each cell's rows with ${problem}; beside its keys and ${kCount}, a published aggregate outputs only plain measures of the whole cell (sum, avg, min, max, median, stddev, variance of a column, count(*)), or a sub-population or one member could be singled out`;
  }
  return undefined;
}

const MEASURE_AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max', 'median', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp']);
const MEASURE_SCALARS = new Set(['round', 'abs', 'floor', 'ceil', 'ceiling', 'trunc']);
const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);
/** Aggregates whose value is one member's. */
const PICKING = new Set(['min', 'max', 'median']);
/** Types a row's value may be cast to on a measure's way (PostgreSQL's names for the SQL spellings, DuckDB's own). */
const MEASURE_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'int', 'integer', 'bigint', 'smallint', 'tinyint', 'hugeint', 'decimal', 'double', 'real', 'float', 'varchar', 'text', 'bpchar', 'date', 'timestamp', 'timestamptz']);
const SHOWN: Record<string, string> = { CaseExpr: 'a CASE', BoolExpr: 'AND, OR or NOT', NullTest: 'IS [NOT] NULL', BooleanTest: 'IS TRUE/FALSE', SubLink: 'a sub-select', CoalesceExpr: 'coalesce', MinMaxExpr: 'greatest/least', NullIfExpr: 'nullif' };

/**
 * Why an output computed per cell counts or picks a part of the cell rather than measuring all
 * of it, or undefined. `count(CASE WHEN zip3 = '021' AND birth_year = 1956 THEN 1 END)` or a
 * FILTER counts the members with given quasi values, which the cell's count of k does not cover;
 * a second count(DISTINCT …) counts a sub-population; `bool_or(…)` or a sub-select tells whether
 * one member is there. So only arithmetic over plain aggregates of plain columns (allow-listed,
 * so that what was not reviewed is refused); the classes of the columns read are the PHI gate's
 * (phi-gate.ts: no quasi-identifier) and the person tokens' (model-checks.ts).
 */
export function measureProblem(val: unknown, inAggregate: boolean, perRow = inAggregate): string | undefined {
  if (Array.isArray(val)) {
    for (const v of val) {
      const problem = measureProblem(v, inAggregate, perRow);
      if (problem) return problem;
    }
    return undefined;
  }
  if (!isObject(val) || isObject(val.A_Const) || isObject(val.ColumnRef)) return undefined;
  if (isObject(val.TypeCast)) {
    // `cast(cast(code - 109838007 as boolean) as integer)` is 0 for one code and 1 for every other.
    const type = sval(((isObject(val.TypeCast.typeName) ? (val.TypeCast.typeName.names as unknown[]) : undefined) ?? []).at(-1))?.toLowerCase() ?? '';
    if (perRow && !MEASURE_TYPES.has(type)) return `a cast to ${type || 'another type'} of a row's value, which can make each row 0 or 1`;
    return measureProblem(val.TypeCast.arg, inAggregate, perRow);
  }
  if (isObject(val.A_Expr)) {
    const op = ((val.A_Expr.name as unknown[]) ?? []).map(sval).join('');
    if (val.A_Expr.kind !== 'AEXPR_OP' || !ARITHMETIC.has(op)) return `a comparison or condition (${op || String(val.A_Expr.kind)})`;
    // Per row, arithmetic is a condition: `1 / (abs(code - 109838007) + 1)`, a difference of two
    // integer divisions by a constant (`(code - c + b) / b - (code - c - 1 + b) / b`), or a double's
    // `+ 2^52 - 2^52` rounding each make one code 1 and every other 0. Over a cell's aggregates it is
    // presentation (`sum(x) / 100`, `round(sum(a) / sum(b), 3)`).
    if (perRow) return `arithmetic on a row's value (${op}), which with constants can round each row to 0 or 1 by a condition; compute over the cell's aggregates instead (sum(x) / 100, not sum(x / 100))`;
    return measureProblem([val.A_Expr.lexpr, val.A_Expr.rexpr], inAggregate, perRow);
  }
  const fc = isObject(val.FuncCall) ? val.FuncCall : undefined;
  if (!fc) {
    const kind = Object.keys(val)[0] ?? 'an expression';
    return SHOWN[kind] ?? kind;
  }
  const name = sval(((fc.funcname as unknown[]) ?? []).at(-1))?.toLowerCase() ?? '';
  if (fc.over) return `a window (${name} OVER)`;
  // Rounding a cell's aggregate is presentation; rounding a row's value (`floor(1 - abs(x - c) * 1e-12)`) is a condition.
  if (MEASURE_SCALARS.has(name)) return perRow ? `${name}(…) of a row's value, which can make each row 0 or 1` : measureProblem(fc.args, inAggregate, perRow);
  if (!MEASURE_AGGREGATES.has(name) || inAggregate) return `${name}(…)`;
  if (fc.agg_filter) return `a FILTER on ${name}(…)`;
  if (fc.agg_order || fc.agg_within_group || fc.agg_distinct) return `${name}(DISTINCT or ORDER BY …)`;
  if (name === 'count' && fc.agg_star !== true) return "a second count, of something other than all of the cell's rows (count(*))";
  const inner = measureProblem(fc.args, true, true);
  // A member picked by an expression is the member the expression chose, not the cell's extreme.
  if (!inner && PICKING.has(name) && !plainColumn((fc.args as unknown[] | undefined)?.[0])) return `${name}(…) of a computed value, which picks the member the computation chose (${name} a column as stored)`;
  return inner;
}

/** A column, or a cast of one (`cast(x AS numeric)`). */
function plainColumn(x: unknown): boolean {
  if (!isObject(x)) return false;
  return isObject(x.ColumnRef) || (isObject(x.TypeCast) && plainColumn(x.TypeCast.arg));
}

/** The outputs of a published aggregate computed over each cell's rows (not keys, not the count), with their SELECT: every arm of a set operation. */
export function cellMeasures(s: Json, kCount: string): { select: Json; target: Json; index: number }[] {
  const names = targetsOf(setArms(s)[0]!).map((t) => targetName(t)?.toLowerCase());
  return setArms(s).flatMap((arm) => {
    const keys = groupKeys((arm.groupClause as unknown[]) ?? []);
    return targetsOf(arm)
      .map((target, index) => ({ select: arm, target, index }))
      .filter(({ target, index }) => names[index] !== kCount.toLowerCase() && !isKey(target, index, keys));
  });
}

/**
 * HAVING, and ORDER BY under LIMIT or OFFSET, choose which cells are published. Chosen by their
 * members' values (`HAVING max(birth_year) > 2020`, `ORDER BY max(zip3) LIMIT 1`), the choice
 * tells something of those members that no cell count covers, so these clauses may read only the
 * cells' keys and counts.
 */
function cellChoiceProblem(s: Json, targets: readonly Json[], keys: readonly Json[], count: Json): string | undefined {
  const clauses: [string, unknown][] = [['HAVING', s.havingClause]];
  if (s.limitCount || s.limitOffset) clauses.push(['an ORDER BY under LIMIT or OFFSET', s.sortClause]);
  const keyTargets = targets.filter((t, i) => isKey(t, i, keys));
  const keyShapes = new Set([...keys, ...keyTargets.map((t) => t.val)].map(withoutLocations));
  // The published count itself may choose (`HAVING count(DISTINCT person_token) >= 20`); another
  // count is read like any expression: `count(CASE WHEN zip3 = '021' AND birth_year = 1956 THEN 1 END) = 1`
  // published the cells holding exactly one such person.
  keyShapes.add(withoutLocations(count.val));
  const outputs = new Set([...keyTargets, count].map((t) => targetName(t)?.toLowerCase()));
  for (const [clause, tree] of clauses) {
    const read = nonKeyRead(tree, keyShapes, outputs);
    if (read) return `chooses its cells in ${clause} by ${read}, not by its keys and counts only (which cells are published tells of their members' values)`;
  }
  return undefined;
}

/** The first thing `tree` reads that is neither a key nor the published count, or undefined. */
/**
 * Inside a call (not itself a key or the count), nothing is one per cell: a key expression inside
 * `sum(…)` is read row by row (and, in a grouping set that lacks it, is not grouped at all), and a
 * bare name there is an input column (`sum(CASE WHEN n = '109838007' …)` read a column named like
 * the count).
 */
function nonKeyRead(tree: unknown, keyShapes: ReadonlySet<string>, outputs: ReadonlySet<string | undefined>, inCall = false): string | undefined {
  if (Array.isArray(tree)) {
    for (const item of tree) {
      const read = nonKeyRead(item, keyShapes, outputs, inCall);
      if (read) return read;
    }
    return undefined;
  }
  if (!isObject(tree)) return undefined;
  if (!inCall && keyShapes.has(withoutLocations(tree))) return undefined;
  if (isObject(tree.SubLink)) return 'a sub-select';
  if (isObject(tree.ColumnRef)) {
    const fields = ((tree.ColumnRef.fields as unknown[]) ?? []).map(sval);
    if (!inCall && fields.length === 1 && outputs.has(fields[0]?.toLowerCase())) return undefined;
    return fields.every((f) => f !== undefined) ? fields.join('.') : 'a whole row';
  }
  const call = inCall || isObject(tree.FuncCall);
  for (const value of Object.values(tree)) {
    const read = nonKeyRead(value, keyShapes, outputs, call);
    if (read) return read;
  }
  return undefined;
}

/**
 * Output columns of a published aggregate that are computed over the rows of their cell rather
 * than being one of its keys (or the count): `max(zip3)`, `string_agg(…)`. Every arm of a set
 * operation counts, by position. Lower case; undefined when the SQL does not parse as a SELECT.
 */
export function cellComputedColumns(sql: string, kCount: string): string[] | undefined {
  const stmt = parseSelect(sql);
  if (!stmt) return undefined;
  const names = targetsOf(setArms(stmt)[0]!).map((t) => targetName(t)?.toLowerCase());
  const computed = new Set(cellMeasures(stmt, kCount).map((m) => m.index));
  return [...computed].map((i) => names[i] ?? `column ${i + 1}`);
}

export function setArms(s: Json): Json[] {
  if (s.op !== undefined && s.op !== 'SETOP_NONE') return [...setArms((s.larg as Json) ?? {}), ...setArms((s.rarg as Json) ?? {})];
  return [s];
}

/** A grouped output: named by position, written as a key, or a column output under its name that a key names. */
function isKey(target: Json, index: number, keys: readonly Json[]): boolean {
  const shape = withoutLocations(target.val);
  return keys.some((key) => {
    if (isObject(key.A_Const)) return isObject(key.A_Const.ival) && Number(key.A_Const.ival.ival) === index + 1;
    if (withoutLocations(key) === shape) return true;
    const fields = isObject(key.ColumnRef) ? ((key.ColumnRef.fields as unknown[]) ?? []).map(sval) : [];
    const name = fields.length === 1 ? fields[0]?.toLowerCase() : undefined;
    // Unqualified: PostgreSQL groups by the input column of that name, so it must be the one output here.
    return name !== undefined && columnName(target.val)?.toLowerCase() === name && (aliasOf(target) === undefined || aliasOf(target) === name);
  });
}

/** The keys of a GROUP BY, through ROLLUP, CUBE and GROUPING SETS (each of their keys makes cells). */
function groupKeys(items: readonly unknown[]): Json[] {
  // `(a, b)` inside GROUPING SETS (or a whole GROUP BY (a, b)) is a row of keys: each is a key.
  return items.filter(isObject).flatMap((item) => {
    if (isObject(item.GroupingSet)) return groupKeys((item.GroupingSet.content as unknown[]) ?? []);
    if (isObject(item.RowExpr)) return groupKeys((item.RowExpr.args as unknown[]) ?? []);
    return [item];
  });
}

/**
 * Why a GROUP BY key may make cells the output does not show (one per person, say), or
 * undefined when it is a position, an output expression written again, or the name of a column
 * output as it is. An output alias is not enough: where the alias is also an input column's
 * name, PostgreSQL groups by the input column, so `min(age_band) AS person_token … GROUP BY
 * person_token` outputs an age band per person.
 */
function groupKeyProblem(key: Json, targets: readonly Json[]): string | undefined {
  // Any position: PostgreSQL refuses one out of range or on an aggregate.
  if (isObject(key.A_Const) || targets.some((t, i) => isKey(t, i, [key]))) return undefined;
  const fields = isObject(key.ColumnRef) ? ((key.ColumnRef.fields as unknown[]) ?? []).map(sval) : [];
  const name = fields.length === 1 ? fields[0]?.toLowerCase() : undefined;
  const advice = 'group by output columns only, by position (GROUP BY 1, 2) or by the output expression itself';
  if (name !== undefined && targets.some((t) => aliasOf(t) === name)) {
    return `groups by ${name}, an output alias that an input column of that name would take the place of; ${advice}`;
  }
  const what = fields.length > 0 && fields.every((f) => f !== undefined) ? fields.join('.') : 'an expression';
  return `groups by ${what}, which it does not output (cells it hides, e.g. one per person); ${advice}`;
}

/**
 * The tree with its aliases renamed by the order they are declared in, where they qualify columns
 * too: `from e … where e.x = 1` and `from x … where x.x = 1` read the same rows.
 */
function positionalAliases(tree: unknown): unknown {
  const order = new Map<string, string>();
  const declare = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(declare);
    if (!isObject(n)) return;
    if (typeof n.aliasname === 'string' && !order.has(n.aliasname)) order.set(n.aliasname, `\u0000a${order.size}`);
    Object.values(n).forEach(declare);
  };
  declare(tree);
  const rename = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(rename);
    if (!isObject(n)) return n;
    if (isObject(n.ColumnRef)) {
      const fields = (n.ColumnRef.fields as unknown[]) ?? [];
      const first = fields.length > 1 ? sval(fields[0]) : undefined;
      if (first !== undefined && order.has(first)) return { ColumnRef: { ...n.ColumnRef, fields: [order.get(first), ...fields.slice(1)] } };
    }
    return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, k === 'aliasname' && typeof v === 'string' ? (order.get(v) ?? v) : rename(v)]));
  };
  return rename(tree);
}

/** The tree as text without its source offsets, so that one expression written twice compares equal. */
function withoutLocations(tree: unknown): string {
  return JSON.stringify(tree, (k, v: unknown) => (k === 'location' ? undefined : v));
}

/** Where the leftmost arm of a set operation outputs `kCount` (-1: nowhere). */
function positionOf(s: Json, kCount: string): number {
  if (s.op !== undefined && s.op !== 'SETOP_NONE') return positionOf((s.larg as Json) ?? {}, kCount);
  return targetsOf(s).findIndex((t) => targetName(t)?.toLowerCase() === kCount);
}

function aliasOf(t: Json): string | undefined {
  return typeof t.name === 'string' ? t.name.toLowerCase() : undefined;
}

function targetName(t: Json): string | undefined {
  return typeof t.name === 'string' ? t.name : columnName(t.val);
}

function columnName(val: unknown): string | undefined {
  const fields = isObject(val) && isObject(val.ColumnRef) ? ((val.ColumnRef.fields as unknown[]) ?? []) : [];
  return sval(fields.at(-1));
}

function isAggregate(val: unknown): boolean {
  return isObject(val) && isObject(val.FuncCall) && !val.FuncCall.over && ['count', 'sum', 'min', 'max', 'avg'].includes(sval(((val.FuncCall.funcname as unknown[]) ?? []).at(-1))?.toLowerCase() ?? '');
}
