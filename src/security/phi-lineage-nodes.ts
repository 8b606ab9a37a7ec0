/**
 * Reading libpg-query's typed nodes for the lineage walk (phi-lineage-analyze.ts): names, stars,
 * leaves, table functions' columns, and the tokenization join and high-water test the walk exempts.
 */
import type { ColumnRef, FuncCall, Node } from 'libpg-query';
import { asStored, lineageLines, type Info } from './phi-lineage-info.ts';
import { nameFloor } from './declared-classes.ts';
import { sval } from './phi-lineage-shape.ts';

export const lower = (s: string) => s.toLowerCase();

/** The vault's token map and per-person shift as the lineage gate keys them (phi-gate.ts). */
const VAULT_TOKENS_CTE = '__tsf_ref_vault_person_tokens';
export const VAULT_SHIFT = `${VAULT_TOKENS_CTE}.date_shift_days`;
/** Columns the tokenization join may match on (the vault's unique key). */
const VAULT_KEYS = ['practice_id', 'patient_id'];

/**
 * A join condition that is the tokenization join: an equality of one of the vault's key columns
 * (tenant column, patient id) with the same-named plain column of another relation, as stored
 * (`stored`): not a VALUES list's or a seed's, nor one computed on the way (a CASE that leaves
 * one patient's id), each of which would choose patients by their ids.
 */
export function isVaultKeyJoin(c: Node, columnRef: (cr: ColumnRef) => Info, stored: (i: Info) => boolean): boolean {
  if (!('A_Expr' in c) || c.A_Expr.kind !== 'AEXPR_OP' || sval(c.A_Expr.name?.[c.A_Expr.name.length - 1]) !== '=') return false;
  const sides = [c.A_Expr.lexpr, c.A_Expr.rexpr];
  if (!sides.every((s) => s !== undefined && 'ColumnRef' in s)) return false;
  const names = sides.map((s) => {
    const f = (s as { ColumnRef: ColumnRef }).ColumnRef.fields ?? [];
    return lower(sval(f[f.length - 1]) ?? '');
  });
  if (names[0] !== names[1]) return false;
  const infos = sides.map((s) => columnRef((s as { ColumnRef: ColumnRef }).ColumnRef));
  const keyOfVault = (i: Info) =>
    i.notes.length === 0 && i.traces.length > 0 && i.traces.every((t) => VAULT_KEYS.some((k) => t.base.toLowerCase() === `${VAULT_TOKENS_CTE}.${k}` && names[0] === k));
  return infos.some(keyOfVault) && infos.every((i) => keyOfVault(i) || stored(i));
}

/** `JOIN … USING (name)`: one side the vault's key column of that name, the other stored (isVaultKeyJoin). */
export function isVaultKeyUsing(name: string, sides: readonly Info[], stored: (i: Info) => boolean): boolean {
  const keyOfVault = (i: Info) => i.notes.length === 0 && i.traces.length > 0 && i.traces.every((t) => t.base.toLowerCase() === `${VAULT_TOKENS_CTE}.${name}`);
  return VAULT_KEYS.includes(name) && sides.some(keyOfVault) && sides.every((i) => keyOfVault(i) || stored(i));
}

const THIS_PREFIX = '__tsf_this_';

/**
 * An incremental model's high-water test, `x.col > …` or `>=`: an input column as stored against
 * values picked (max, coalesce) from the same-named column of the model's own relation
 * (`{{this}}`) only, a column that holds that input column as stored (`selfStored`: its base),
 * with no literal but a floor (onlyFloors: `coalesce(max(t.col), timestamptz '-infinity')` for
 * a practice with no rows yet, or whose rows hold only NULLs there). It keeps the rows not loaded
 * before, whoever they are about, so the relation it builds over time leaves nobody out (a
 * quasi-identifier beside it in the same WHERE is another conjunct, still read). Not a CASE or an
 * operator over `{{this}}`'s values, a fallback of one's choosing, or a column the model fills
 * itself, each of which makes the bound any constant (`ssn >= coalesce(max(t.ssn),
 * '123-45-6789')` over a relation built empty); nor a bound on anything but a source's record
 * timestamp (`origin`, followed through renames upstream): `zip > max(t.zip)`, or a city's,
 * keeps loading the persons at its top only.
 */
export function isHighWater(c: Node, read: (n: Node) => Info, selfStored: Readonly<Record<string, string>>, origin: (base: string) => string | undefined): boolean {
  if (!('A_Expr' in c) || c.A_Expr.kind !== 'AEXPR_OP') return false;
  const op = sval(c.A_Expr.name?.[c.A_Expr.name.length - 1]);
  const { lexpr, rexpr } = c.A_Expr;
  if ((op !== '>' && op !== '>=') || !lexpr || !rexpr || !('ColumnRef' in lexpr)) return false;
  const [left, right] = [read(lexpr), read(rexpr)];
  if (left.notes.length > 0 || right.notes.length > 0 || left.traces.length !== 1 || left.traces[0]!.computed || right.traces.length === 0) return false;
  const column = (base: string) => lower(base.slice(base.lastIndexOf('.') + 1));
  const { base, baseClass } = left.traces[0]!;
  const name = column(base);
  // Only a source's record timestamp, followed through renames: any other column (a ZIP, a city,
  // a birth date called `bd` upstream) keeps loading the persons at its top only.
  const source = origin(base);
  if (baseClass === 'direct' || source === undefined || !RECORD_TIME.test(column(source)) || nameFloor(column(source)) !== undefined || !onlyFloors(rexpr)) return false;
  return right.traces.every((t) => lower(t.base).startsWith(THIS_PREFIX) && column(t.base) === name && !t.reshaped && selfStored[name] === base);
}

/** A source column that says when its row was written or changed, not anything about the person. */
const RECORD_TIME = /^(updated|modified|changed|last_modified|last_updated|loaded|ingested|inserted|created|synced)(_at|_on|_ts|_time|_timestamp)?$/;

type Constant = Extract<Node, { A_Const: unknown }>['A_Const'];
const TEMPORAL = new Set(['date', 'timestamp', 'timestamptz']);

/**
 * Whether every literal in a high-water bound is a floor, below any value the column can hold:
 * NULL, '' (the least text), or '-infinity' typed as a date or timestamp (which a text or number
 * column refuses to be compared with). Not a number (a column of negative longitudes has no floor
 * at 0: -71.1713 cut one patient's strip out of Massachusetts), an untyped date-shaped string,
 * which compares as text (`zip >= '0213-01-01'`), nor an old date: over a first build of one
 * row per practice holding NULLs, the fallback is the bound, and `birth_date >= date '1900-01-01'`
 * leaves out whoever was born before.
 */
function onlyFloors(n: unknown): boolean {
  if (Array.isArray(n)) return n.every(onlyFloors);
  if (n === null || typeof n !== 'object') return true;
  if ('TypeCast' in n && isNode(n)) {
    const cast = (n as { TypeCast: { arg?: Node; typeName?: { names?: Node[] } } }).TypeCast;
    const type = lower(sval(cast.typeName?.names?.[cast.typeName.names.length - 1]) ?? '');
    if (cast.arg && 'A_Const' in cast.arg) return TEMPORAL.has(type) && cast.arg.A_Const.sval?.sval?.trim().toLowerCase() === '-infinity';
  }
  if ('A_Const' in n && isNode(n)) {
    const c = (n as { A_Const: Constant }).A_Const;
    return c.isnull === true || c.sval?.sval === '';
  }
  return Object.values(n).every(onlyFloors);
}

/** An expression whose value is one of the values it reads: `max(x)`, `coalesce(x, …)`, a scalar sub-select. */
export function picksValue(n: Node): boolean {
  if ('CoalesceExpr' in n || 'SelectStmt' in n) return true;
  if ('SubLink' in n) return n.SubLink.subLinkType === 'EXPR_SUBLINK';
  if (!('FuncCall' in n)) return false;
  const fc = n.FuncCall;
  return ['max', 'coalesce'].includes(lastName(fc)) && !fc.over && !fc.agg_filter && (fc.args?.length ?? 0) >= 1;
}

/**
 * Functions that return rows, not a value: in a select list, a call returning none drops its row
 * (`unnest(case when zip = '02139' then array[] else array[1] end)`), so what it reads chooses rows.
 */
const SET_RETURNING = new Set([
  'unnest', 'generate_series', 'generate_subscripts', 'regexp_matches', 'regexp_split_to_table', 'string_to_table', 'range',
  'json_array_elements', 'json_array_elements_text', 'jsonb_array_elements', 'jsonb_array_elements_text', 'json_each', 'json_each_text',
  'jsonb_each', 'jsonb_each_text', 'json_object_keys', 'jsonb_object_keys', 'jsonb_path_query', 'json_to_recordset', 'jsonb_to_recordset',
  'json_populate_recordset', 'jsonb_populate_recordset', 'unnest_list',
]);

/**
 * Calls in an expression (not under a sub-select, which is a query of its own) that may return
 * rows: a known set-returning function, or one `known` does not list (it could be one).
 */
export function rowReturningCalls(n: unknown, known: ReadonlySet<string>): FuncCall[] {
  if (Array.isArray(n)) return n.flatMap((v) => rowReturningCalls(v, known));
  if (n === null || typeof n !== 'object') return [];
  if ('SubLink' in n || 'SelectStmt' in n) return [];
  const here = 'FuncCall' in n && isNode(n) ? [(n as { FuncCall: FuncCall }).FuncCall] : [];
  const mine = here.filter((fc) => SET_RETURNING.has(lastName(fc)) || !known.has(lastName(fc)));
  return [...mine, ...Object.values(n).flatMap((v) => rowReturningCalls(v, known))];
}

/** The top-level AND operands of a condition (nested ANDs flattened); none for no condition. */
export function conjunctsOf(n: Node | undefined): Node[] {
  if (!n) return [];
  return 'BoolExpr' in n && n.BoolExpr.boolop === 'AND_EXPR' ? (n.BoolExpr.args ?? []).flatMap(conjunctsOf) : [n];
}

export function starOf(val: Node): { qualifier?: string } | undefined {
  if (!('ColumnRef' in val)) return undefined;
  const fields = val.ColumnRef.fields ?? [];
  const last = fields[fields.length - 1];
  if (!last || !('A_Star' in last)) return undefined;
  const q = fields.slice(Math.max(0, fields.length - 3), -1).map((f) => sval(f) ?? '');
  return q.length > 0 ? { qualifier: q.join('.') } : {};
}

export function lastName(fc: FuncCall): string {
  return lower(sval(fc.funcname?.[fc.funcname.length - 1]) ?? '?');
}

/** `{ "Kind": payload }`, the shape of every node of libpg-query's tree. */
export function isNode(v: object): v is Node {
  const keys = Object.keys(v);
  return keys.length === 1 && /^[A-Z]/.test(keys[0]!);
}

/** Literals, parameters, `current_date`, type names: they read no column. */
export const LEAF_KINDS = new Set(['A_Const', 'ParamRef', 'SQLValueFunction', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'A_Star', 'TypeName']);

/** Output column names of an xmltable (RangeTableFuncCol) or a json_table (JsonTableColumn, NESTED PATH columns flattened). */
export function tableFunctionColumns(payload: object): string[] {
  const columns = (payload as { columns?: unknown[] }).columns ?? [];
  return columns.flatMap((c) => {
    const col = c as { RangeTableFuncCol?: { colname?: string }; JsonTableColumn?: { name?: string; coltype?: string; columns?: unknown[] } };
    if (col.RangeTableFuncCol?.colname) return [col.RangeTableFuncCol.colname];
    const j = col.JsonTableColumn;
    if (j?.coltype === 'JTC_NESTED') return tableFunctionColumns(j);
    return j?.name ? [j.name] : [];
  });
}

/**
 * Why the dates a shift_date rendering moves (its `argument(…)`-marked values) are not a source's
 * columns as stored, or undefined. A date someone knows, moved by the shift, gives the shift back:
 * a staging model's `date '1970-07-01' AS birth_date_0` declared quasi did, month by month; so
 * did a date shifted again and again (`shift_date(shift_date(…))`: month n of birth + n·shift).
 * `origin`: the source column a relation's column holds as stored, if any.
 */
export function movedDatesProblem(rendered: Node, shifted: string, argument: string, evaluate: (n: Node) => Info, origin: (base: string) => string | undefined): string | undefined {
  const args: Node[] = [];
  let nested = false;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (v === null || typeof v !== 'object') return;
    if (isNode(v) && 'FuncCall' in v) {
      const called = lastName(v.FuncCall);
      if (called === shifted) nested = true;
      if (called === argument && v.FuncCall.args?.length === 1) {
        args.push(v.FuncCall.args[0]!);
        return;
      }
    }
    Object.values(v).forEach(visit);
  };
  visit(rendered);
  if (nested) return 'moves a date already shifted; shift each date once';
  if (args.length === 0) return 'moves no column';
  for (const arg of args) {
    const info = evaluate(arg);
    // Computed from an identifying value, the generalizer's own argument check refuses it, and says so.
    if (!asStored(info)) continue;
    if (info.traces.length === 0 || info.traces.some((t) => t.computed || origin(t.base) === undefined)) {
      return `moves ${lineageLines(info)[0] ?? 'a constant'}, which is not a source's date as stored (a date written into a model, a seed or a constant, moved by the shift, gives the shift back)`;
    }
  }
  return undefined;
}
