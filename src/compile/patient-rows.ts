/**
 * A tokenizing model (one that reads the vault's token map) gives each patient record's row the
 * patient's person token, and everything downstream takes that row's values to be that person's.
 * A row that carries another patient's values breaks it: `stg_patients p join stg_patients o on
 * o.practice_id = p.practice_id … where o.ssn = '…'` gave every patient of a practice the
 * condition of the patient with that SSN, and a published count of them reached k. So the select
 * list of every SELECT from a tokenizing model down to the sources reads only one patient's rows:
 * the inputs it takes values from that hold patients are joined on equal practice and patient id
 * (AND-ed equalities in ON, USING or WHERE, each followed to those columns of a source or of the
 * vault; an equal person token links too), it has no window, it groups (if at all) by practice
 * and patient, and a sub-select or an input read only by WHERE or ON that reads patients is
 * correlated or joined the same way: rows picked by another patient's values (`where code in
 * (select … where o.ssn = '…')`) are that patient's values too. An incremental model's
 * high-water mark over its own rows is the one exception. Seeds, and sources without a patient
 * id column, hold no patients and join on anything.
 */
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { ColumnTracer, TokenTracer, type ColumnBase, type RelationLookup } from './counted-persons.ts';
import { isCorrelated } from './sub-select-correlation.ts';
import { contains, emptyEnv, firstApart, fromItems, isSetOp, joinedPairs, parseSelect, rowClauses, refFields, selectOver, starQualifier, subLinks, subSelectOf, targetsOf, withCtes, type Env, type FromItem, type Source } from './select-scope.ts';

/** The columns that name a patient record: the tenant column and the vault's patient id. */
export interface PatientKeys {
  tenant: string;
  patient: string;
}

type Rows = { problem: string } | { patients: boolean };

const MAX_DEPTH = 40;

/** Why a row of this tokenizing model may hold several patients' values, or undefined. */
export function patientRowsProblem(sql: string, lookup: RelationLookup, keys: PatientKeys): string | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined; // model-sql.ts reports what the grammar cannot read
  // One checker per compile (per lookup), so that a model read by many is followed once.
  const checker = checkers.get(lookup) ?? new PatientRows(lookup, keys);
  checkers.set(lookup, checker);
  const rows = checker.select(select, emptyEnv(), 0);
  return 'problem' in rows ? rows.problem : undefined;
}

const checkers = new WeakMap<RelationLookup, PatientRows>();

class PatientRows {
  /** Each model's rows, once followed. */
  private readonly models = new Map<string, Rows>();
  private readonly tenant: ColumnTracer;
  private readonly patient: ColumnTracer;
  /** An equal person token is the same person too (one patient's records at several practices). */
  private readonly token: ColumnTracer;

  constructor(
    private readonly lookup: RelationLookup,
    keys: PatientKeys,
  ) {
    this.tenant = new ColumnTracer(lookup, keyColumn(keys.tenant));
    this.patient = new ColumnTracer(lookup, keyColumn(keys.patient));
    this.token = new TokenTracer(lookup);
  }

  /** `perPatient`: a sub-select correlated on practice and patient id, whose aggregates are one patient's. */
  select(s: Json, env: Env, depth: number, perPatient = false): Rows {
    if (depth > MAX_DEPTH) return { problem: 'its inputs nest too deep to follow' };
    const local = withCtes(s, env);
    if (isSetOp(s)) {
      const arms = [this.select(s.larg as Json, local, depth), this.select(s.rarg as Json, local, depth)];
      return arms.find((r) => 'problem' in r) ?? { patients: arms.some((r) => 'patients' in r && r.patients) };
    }
    const items = fromItems((s.fromClause as unknown[]) ?? [], local);
    const outputs = [s.targetList, s.groupClause, s.havingClause];
    // A sub-select over seeds (a macro's lookup list) holds no patient; one over other patients'
    // rows gives their values (select list) or picks rows by them (`where c.code in (select …
    // where o.ssn = '…')` kept exactly one patient's conditions): both must be correlated.
    for (const link of subLinks(rowClauses(s))) {
      const sub = subSelectOf(link);
      if (!this.readsOthers({ kind: 'select', select: sub, env: local }, depth)) continue;
      const correlated = isCorrelated(link, s, local, [[this.tenant, this.patient], [this.token]]);
      const rows = this.select(sub, local, depth + 1, correlated);
      if ('problem' in rows) return rows;
      if (rows.patients && !correlated) return { problem: `${selectOver(items)} has a sub-select over other patients' rows; correlate it on practice and patient id (or join)` };
    }
    // A window in ORDER BY or DISTINCT ON picks rows by other patients' values as one in the select list gives them.
    if (contains([outputs, s.sortClause, s.distinctClause], (n) => isObject(n.FuncCall) && n.FuncCall.over !== undefined)) return { problem: `${selectOver(items)} has a window, whose values span patients` };

    // Inputs the select list reads, and inputs read only by WHERE or ON that read patients other
    // than this model's own previous rows (a high-water mark over {{this}} is not followed).
    const read = contributors(s, items);
    const filters = items.filter((i) => !read.includes(i) && this.readsOthers(i.source, depth));
    const patients: FromItem[] = [];
    for (const item of [...read, ...filters]) {
      const rows = this.item(item, depth);
      if ('problem' in rows) return rows;
      if (rows.patients || filters.includes(item)) patients.push(item);
    }
    const apart = this.unlinked(s, local, patients);
    if (apart) return { problem: `${selectOver(items)} reads ${patients[0]!.qualifier || 'an input'} and ${apart.qualifier || 'an input'} without joining them on practice and patient id (a row would hold, or be picked by, another patient's values)` };
    if (patients.length > 0 && !perPatient && this.groupedAcrossPatients(s, local)) return { problem: `${selectOver(items)} aggregates rows of several patients (group by practice and patient id)` };
    return { patients: patients.length > 0 };
  }

  private item(item: FromItem, depth: number): Rows {
    const source = item.source;
    if (source.kind === 'other') return { problem: source.why };
    if (source.kind === 'select') return this.select(source.select, source.env, depth + 1);
    const found = this.lookup(source.name);
    if (!found) return { problem: `it takes values from ${source.name}, which cannot be followed` };
    if (found.kind === 'seed') return { patients: false };
    if (found.kind === 'source') return { patients: found.patients };
    // This model's own rows are checked by this rule where they are made.
    if (found.kind === 'vault' || found.kind === 'self') return { patients: true };
    const known = this.models.get(source.name);
    if (known) return known;
    let result: Rows = { patients: false };
    for (const sql of found.sqls) {
      const select = parseSelect(sql);
      const rows = select ? this.select(select, emptyEnv(), depth + 1) : { problem: 'it cannot be read' };
      if ('problem' in rows) {
        result = { problem: `${modelName(source.name)}: ${rows.problem}` };
        break;
      }
      if (rows.patients) result = rows;
    }
    this.models.set(source.name, result);
    return result;
  }

  /** Whether a source of rows reads patients other than this model's own previous rows (fails closed). */
  private readsOthers(source: Source, depth: number): boolean {
    if (depth > MAX_DEPTH || source.kind === 'other') return true;
    if (source.kind === 'relation') {
      const r = this.lookup(source.name);
      return !(r?.kind === 'seed' || (r?.kind === 'source' && !r.patients));
    }
    const s = source.select;
    const local = withCtes(s, source.env);
    if (this.isHighWaterMark(s, local)) return false;
    if (isSetOp(s)) return [s.larg, s.rarg].some((arm) => this.readsOthers({ kind: 'select', select: arm as Json, env: local }, depth + 1));
    const from = (s.fromClause as unknown[]) ?? [];
    if (fromItems(from, local).some((i) => this.readsOthers(i.source, depth + 1))) return true;
    return subLinks(rowClauses(s)).some((l) => this.readsOthers({ kind: 'select', select: subSelectOf(l), env: local }, depth + 1));
  }

  /**
   * An incremental model's mark over its own rows, `select [keys,] max(t.updated_at) from {{this}}
   * t [group by keys]`: aggregates only, unfiltered, so it picks rows by no one patient's values.
   */
  private isHighWaterMark(s: Json, env: Env): boolean {
    if (isSetOp(s) || s.whereClause || s.havingClause) return false;
    const items = fromItems((s.fromClause as unknown[]) ?? [], env);
    const self = items.length === 1 && items[0]!.source.kind === 'relation' && this.lookup(items[0]!.source.name)?.kind === 'self';
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject).map((k) => refFields(k).join('.'));
    return self && targetsOf(s).every((t) => {
      const val = isObject(t.val) ? t.val : {};
      if (isObject(val.ColumnRef)) return keys.includes(refFields(val).join('.'));
      return isObject(val.FuncCall) && !val.FuncCall.over && ['max', 'min'].includes(String(sval(((val.FuncCall.funcname as unknown[]) ?? []).at(-1))).toLowerCase());
    });
  }

  /** The first input holding patients not joined to the first on practice and patient id (or token), or undefined. */
  private unlinked(s: Json, env: Env, patients: readonly FromItem[]): FromItem | undefined {
    if (patients.length < 2) return undefined;
    const on = (tracer: ColumnTracer) => joinedPairs(s, (fields) => tracer.column(fields, s, env) === undefined);
    // Inputs joined on an equal tenant column and on an equal patient id (both), or on an equal person token.
    const tenant = on(this.tenant);
    return firstApart(patients, [...[...on(this.patient)].filter((pair) => tenant.has(pair)), ...on(this.token)]);
  }

  private groupedAcrossPatients(s: Json, env: Env): boolean {
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject);
    const aggregated = contains([s.targetList, s.havingClause], (n) => isObject(n.FuncCall) && (n.FuncCall.agg_star === true || n.FuncCall.agg_distinct === true || isAggregateName(n.FuncCall)), true);
    if (keys.length === 0 && !aggregated) return false;
    if (keys.some((k) => isObject(k.GroupingSet))) return true;
    const targets = targetsOf(s);
    const fieldsOf = (key: Json): string[] => {
      const position = isObject(key.A_Const) && isObject(key.A_Const.ival) ? Number(key.A_Const.ival.ival ?? 0) : 0;
      const val = position > 0 ? targets[position - 1]?.val : key;
      return isObject(val) && isObject(val.ColumnRef) ? refFields(val) : [];
    };
    const by = (tracer: ColumnTracer) => keys.some((k) => tracer.column(fieldsOf(k), s, env) === undefined);
    return !(by(this.tenant) && by(this.patient));
  }
}

/** A key column ends at a source's or the vault's column of that name. */
function keyColumn(name: string): ColumnBase {
  return (relation, relationName, column) => {
    if (relation?.kind !== 'source' && relation?.kind !== 'vault' && relation?.kind !== 'self') return `it reads ${relationName}, which is not a source or the vault`;
    return column === name ? undefined : `${column} is not ${name}`;
  };
}

/** The FROM items the select list, grouping and HAVING take values from (all of them where a name is unqualified). */
function contributors(s: Json, items: readonly FromItem[]): FromItem[] {
  const qualifiers = new Set<string>();
  let all = false;
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(visit);
    if (!isObject(n)) return;
    if (isObject(n.ColumnRef)) {
      const star = starQualifier({ val: n });
      const fields = refFields(n);
      if (star !== undefined) star === '' ? (all = true) : qualifiers.add(star);
      else if (fields.length >= 2) qualifiers.add(fields[0]!);
      else all = true;
      return;
    }
    Object.values(n).forEach(visit);
  };
  visit([s.targetList, s.groupClause, s.havingClause]);
  return items.filter((i) => all || items.length === 1 || qualifiers.has(i.qualifier));
}

const AGGREGATE_NAMES = new Set(['count', 'sum', 'min', 'max', 'avg', 'array_agg', 'string_agg', 'listagg', 'bool_and', 'bool_or', 'every', 'any_value', 'arbitrary', 'first', 'last', 'mode', 'median', 'list', 'arg_max', 'arg_min', 'max_by', 'min_by', 'json_agg', 'jsonb_agg', 'histogram']);

function isAggregateName(fc: Json): boolean {
  const name = ((fc.funcname as unknown[]) ?? []).filter(isObject).map((f) => (isObject(f.String) ? String(f.String.sval) : '')).at(-1)?.toLowerCase() ?? '';
  return AGGREGATE_NAMES.has(name) || fc.agg_order !== undefined || fc.agg_filter !== undefined;
}

const modelName = (relation: string): string => relation.replace(/^__tsf_ref_/, '');
