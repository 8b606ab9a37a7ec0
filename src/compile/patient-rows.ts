/**
 * A tokenizing model (one that reads the vault's token map) gives each patient record's row the
 * patient's person token, and everything downstream takes that row's values to be that person's.
 * A row that carries another patient's values breaks it: `stg_patients p join stg_patients o on
 * o.practice_id = p.practice_id … where o.ssn = '…'` gave every patient of a practice the
 * condition of the patient with that SSN, and a published count of them reached k. So the select
 * list of every SELECT from a tokenizing model down to the sources reads only one patient's rows:
 * the inputs it takes values from that hold patients are joined on equal practice and patient id
 * (AND-ed equalities in ON, USING or WHERE, each followed to those columns of a source or of the
 * vault), it has no sub-select or window, and it groups (if at all) by practice and patient.
 * Inputs read only by WHERE or ON decide which rows exist, not what they hold: the demo's
 * high-water mark join is one (a channel of one bit per statement, not checked). Seeds, and
 * sources without a patient id column, hold no patients and join on anything.
 */
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { ColumnTracer, type ColumnBase, type RelationLookup } from './counted-persons.ts';
import { contains, emptyEnv, firstApart, fromItems, joinedPairs, isSetOp, parseSelect, refFields, selectOver, starQualifier, subSelects, targetsOf, withCtes, type Env, type FromItem } from './select-scope.ts';

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
  const rows = new PatientRows(lookup, keys).select(select, emptyEnv(), 0);
  return 'problem' in rows ? rows.problem : undefined;
}

class PatientRows {
  private readonly tenant: ColumnTracer;
  private readonly patient: ColumnTracer;

  constructor(
    private readonly lookup: RelationLookup,
    keys: PatientKeys,
  ) {
    this.tenant = new ColumnTracer(lookup, keyColumn(keys.tenant));
    this.patient = new ColumnTracer(lookup, keyColumn(keys.patient));
  }

  select(s: Json, env: Env, depth: number): Rows {
    if (depth > MAX_DEPTH) return { problem: 'its inputs nest too deep to follow' };
    const local = withCtes(s, env);
    if (isSetOp(s)) {
      const arms = [this.select(s.larg as Json, local, depth), this.select(s.rarg as Json, local, depth)];
      return arms.find((r) => 'problem' in r) ?? { patients: arms.some((r) => 'patients' in r && r.patients) };
    }
    if (Array.isArray(s.valuesLists) && s.valuesLists.length > 0) return { patients: false };
    const items = fromItems((s.fromClause as unknown[]) ?? [], local);
    const outputs = [s.targetList, s.groupClause, s.havingClause];
    for (const sub of subSelects(outputs)) {
      // A sub-select over seeds (a macro's lookup list) holds no patient: only one over patients is refused.
      const rows = this.select(sub, local, depth + 1);
      if ('problem' in rows) return rows;
      if (rows.patients) return { problem: `${selectOver(items)} has a sub-select over patients in its select list, whose values may be other patients'; join on practice and patient id instead` };
    }
    if (contains(outputs, (n) => isObject(n.FuncCall) && n.FuncCall.over !== undefined)) return { problem: `${selectOver(items)} has a window, whose values span patients` };

    const read = contributors(s, items);
    const patients: FromItem[] = [];
    for (const item of read) {
      const rows = this.item(item, depth);
      if ('problem' in rows) return rows;
      if (rows.patients) patients.push(item);
    }
    const apart = this.unlinked(s, local, patients);
    if (apart) return { problem: `${selectOver(items)} takes values from ${patients[0]!.qualifier || 'an input'} and ${apart.qualifier || 'an input'} without joining them on practice and patient id (a row would hold two patients' values)` };
    if (patients.length > 0 && this.groupedAcrossPatients(s, local)) return { problem: `${selectOver(items)} aggregates rows of several patients (group by practice and patient id)` };
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
    if (found.kind === 'vault') return { patients: true };
    let patients = false;
    for (const sql of found.sqls) {
      const select = parseSelect(sql);
      const rows = select ? this.select(select, emptyEnv(), depth + 1) : { problem: 'it cannot be read' };
      if ('problem' in rows) return { problem: `${modelName(source.name)}: ${rows.problem}` };
      patients ||= rows.patients;
    }
    return { patients };
  }

  /** The first input holding patients not joined to the first on practice and patient id, or undefined. */
  private unlinked(s: Json, env: Env, patients: readonly FromItem[]): FromItem | undefined {
    if (patients.length < 2) return undefined;
    const on = (tracer: ColumnTracer) => joinedPairs(s, (fields) => tracer.column(fields, s, env) === undefined);
    // Inputs joined on an equal tenant column and on an equal patient id: both make a link.
    const tenant = on(this.tenant);
    return firstApart(patients, [...on(this.patient)].filter((pair) => tenant.has(pair)));
  }

  private groupedAcrossPatients(s: Json, env: Env): boolean {
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject);
    const aggregated = contains([s.targetList, s.havingClause], (n) => isObject(n.FuncCall) && (n.FuncCall.agg_star === true || n.FuncCall.agg_distinct === true || isAggregateName(n.FuncCall)));
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
    if (relation?.kind !== 'source' && relation?.kind !== 'vault') return `it reads ${relationName}, which is not a source or the vault`;
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
