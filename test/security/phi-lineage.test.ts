import { beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ManifestNode } from '../../src/artifacts/manifest.ts';
import { compileProject } from '../../src/compile/compile.ts';
import { hasErrors, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { PhiClass } from '../../src/project/types.ts';
import { columnLineage, type ColumnLineage, type LineageInput } from '../../src/security/phi-lineage.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

// Relations as the compiler names them: tsform's tenant-filtered CTEs and plain schema.table.
const PATIENTS: Record<string, PhiClass> = {
  practice_id: 'none',
  patient_id: 'direct',
  mrn: 'direct',
  ssn: 'direct',
  first_name: 'direct',
  last_name: 'direct',
  birth_date: 'quasi',
  sex: 'quasi',
  zip: 'quasi',
  updated_at: 'none',
};
const ENCOUNTERS: Record<string, PhiClass> = {
  practice_id: 'none',
  encounter_id: 'none',
  patient_id: 'direct',
  encounter_class: 'none',
  started_at: 'quasi',
  total_claim_cost: 'none',
};
const RELATIONS: LineageInput['relations'] = {
  __tsf_ref_stg_patients: PATIENTS,
  __tsf_ref_stg_encounters: ENCOUNTERS,
  'staging.stg_patients': PATIENTS,
  'staging.stg_encounters': ENCOUNTERS,
  'tsform_meta.tenants': { practice_id: 'none', name: 'none', timezone: 'none' },
};

/** tsform's CTE for a tenant-scoped input, exactly as src/compile/relations.ts renders it. */
const tsfCte = (name: string, schema: string, table: string) =>
  `"${name}" AS (\n  SELECT * FROM "${schema}"."${table}" WHERE "practice_id" = ANY($1::VARCHAR[])\n)`;
const PATIENTS_CTE = tsfCte('__tsf_ref_stg_patients', 'staging', 'stg_patients');
const ENCOUNTERS_CTE = tsfCte('__tsf_ref_stg_encounters', 'staging', 'stg_encounters');

function lineageOf(sql: string, extra: Partial<LineageInput> = {}): Record<string, ColumnLineage> {
  const r = columnLineage({ sql, relations: RELATIONS, ...extra });
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.columns;
}
const classes = (cols: Record<string, ColumnLineage>) => Object.fromEntries(Object.entries(cols).map(([k, v]) => [k, v.phi]));

describe('columnLineage: xmltable and json_table in FROM', () => {
  it('every column of xmltable carries what the call reads: the document, paths and defaults', () => {
    const cols = lineageOf(`select p.practice_id, x.v, x.w, x.n
      from staging.stg_patients p,
           xmltable('/r' passing xmlparse(document '<r>' || p.ssn || '</r>') columns v text path '.', w text path 'w' default p.zip, n for ordinality) x`);
    expect(classes(cols)).toEqual({ practice_id: 'none', v: 'direct', w: 'direct', n: 'direct' });
    expect(cols.v!.lineage[0]).toContain('ssn (direct)');
    const byDefault = lineageOf(`select x.v from staging.stg_patients p, xmltable('/r' passing xmlparse(document '<r/>') columns v text path 'v' default p.birth_date::text) x`);
    expect(byDefault.v!.phi).toBe('quasi');
  });

  it('json_table columns, NESTED PATH ones included, carry the document and PASSING values', () => {
    const cols = lineageOf(`select j.a, j.b from staging.stg_patients p,
      json_table(json_build_object('s', p.first_name), '$' columns (a text path '$.s', nested path '$.n[*]' columns (b text path '$.b'))) j`);
    expect(classes(cols)).toEqual({ a: 'direct', b: 'direct' });
    const passing = lineageOf(`select j.a from staging.stg_patients p, json_table('{}'::jsonb, '$ ? (@ == $x)' passing p.mrn as x columns (a text path '$')) j`);
    expect(passing.a!.phi).toBe('direct');
  });

  it('over a constant document it reads nothing identifying', () => {
    const cols = lineageOf(`select x.v from xmltable('/r' passing xmlparse(document '<r><v>1</v></r>') columns v int path 'v') x`);
    expect(cols.v!.phi).toBe('none');
  });
});

describe('columnLineage: classes through select lists', () => {
  it('a direct column passed through a CTE and an alias stays direct, with its path', () => {
    const cols = lineageOf(`-- research extract
WITH ${PATIENTS_CTE},
ids as (
  select p.practice_id, p.ssn as social, p.updated_at from "__tsf_ref_stg_patients" p
)
select i.practice_id, i.social as ssn_out, updated_at
from ids i`);
    expect(classes(cols)).toEqual({ practice_id: 'none', ssn_out: 'direct', updated_at: 'none' });
    expect(cols.ssn_out!.lineage).toEqual(['ssn_out <- i.social <- ids.social <- p.ssn <- __tsf_ref_stg_patients.ssn (direct)']);
    expect(cols.ssn_out!.generalized).toBe(false);
  });

  it('select * from a relation with a direct column exposes it (and t.* too)', () => {
    expect(classes(lineageOf(`WITH ${PATIENTS_CTE}\nselect * from "__tsf_ref_stg_patients"`))).toEqual(PATIENTS);
    const cols = lineageOf(`select e.*, t.timezone from "staging"."stg_encounters" e join "tsform_meta"."tenants" t on t.practice_id = e.practice_id`);
    expect(classes(cols)).toEqual({ ...ENCOUNTERS, timezone: 'none' });
    expect(cols.patient_id!.lineage).toEqual(['patient_id <- e.patient_id <- staging.stg_encounters.patient_id (direct)']);
  });

  it('a quasi birth_date through tsf_generalized(...) is none and generalized', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}
select p.practice_id, tsf_generalized(p.birth_date) as birth_year, tsf_generalized(p.zip) as zip3
from "__tsf_ref_stg_patients" p`);
    expect(cols.birth_year).toEqual({
      phi: 'none',
      generalized: true,
      // Computed from a quasi-identifier: a generalizer downstream would not take it as stored.
      computed: true,
      data: true,
      lineage: ['birth_year <- tsf_generalized(…) <- p.birth_date <- __tsf_ref_stg_patients.birth_date (quasi)'],
    });
    expect(cols.zip3?.phi).toBe('none');
  });

  it('a generalizer does not make a direct identifier safe', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}\nselect tsf_generalized(ssn) as ssn_band, tsf_generalized(birth_date || last_name) as mix from "__tsf_ref_stg_patients"`);
    expect(cols.ssn_band).toMatchObject({ phi: 'direct', generalized: true });
    expect(cols.mix?.phi).toBe('direct');
  });

  it('only the configured generalizers count; a plain extract(year from birth_date) stays quasi', () => {
    const sql = `WITH ${PATIENTS_CTE}\nselect extract(year from birth_date) as birth_year, age_band(birth_date) as band from "__tsf_ref_stg_patients"`;
    const plain = lineageOf(sql);
    expect(plain.birth_year).toMatchObject({ phi: 'quasi', generalized: false });
    // An unreviewed function fails closed (direct); listed as a generalizer it generalizes.
    expect(plain.band?.phi).toBe('direct');
    expect(plain.band?.lineage).toContain('unknown function age_band(): its output cannot be classified (src/security/phi-lineage-functions.ts lists reviewed functions)');
    expect(lineageOf(sql, { generalizers: ['AGE_BAND'] }).band).toMatchObject({ phi: 'none', generalized: true });
  });

  it('count(distinct patient_id) and count(*) are none; min/max/sum keep the class', () => {
    const cols = lineageOf(`WITH ${ENCOUNTERS_CTE}
select
  practice_id,
  count(distinct patient_id) as distinct_patients,
  count(*) as encounters,
  max(started_at) as last_visit,
  min(patient_id) as some_patient,
  sum(total_claim_cost) as cost
from "__tsf_ref_stg_encounters"
group by practice_id`);
    expect(classes(cols)).toEqual({
      practice_id: 'none',
      distinct_patients: 'none',
      encounters: 'none',
      last_visit: 'quasi',
      some_patient: 'direct',
      cost: 'none',
    });
  });

  it('a join of two CTEs with the same column names resolves qualified refs per side; unqualified ambiguous ones take the max', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE},
${ENCOUNTERS_CTE},
pat as (select practice_id, patient_id, zip as code from "__tsf_ref_stg_patients"),
enc as (select practice_id, patient_id, encounter_class as code from "__tsf_ref_stg_encounters")
select p.code as zip, e.code as klass, p.practice_id, code as either
from pat p
join enc e on e.practice_id = p.practice_id and e.patient_id = p.patient_id`);
    expect(classes(cols)).toEqual({ zip: 'quasi', klass: 'none', practice_id: 'none', either: 'quasi' });
    expect(cols.klass!.lineage).toEqual(['klass <- e.code <- enc.code <- encounter_class <- __tsf_ref_stg_encounters.encounter_class (none)']);
    expect(cols.either!.lineage).toHaveLength(2);
  });

  it('CASE mixing a direct and a none value is direct; COALESCE and concatenation carry the max', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}
select
  case when p.sex = 'F' then p.last_name else 'n/a' end as label,
  case when p.updated_at > now() - interval '1 day' then 'new' else 'old' end as freshness,
  coalesce(p.mrn, 'none') as any_id,
  p.first_name || ' ' || p.last_name as full_name
from "__tsf_ref_stg_patients" p`);
    expect(classes(cols)).toEqual({ label: 'direct', freshness: 'none', any_id: 'direct', full_name: 'direct' });
  });

  it('a nested subquery in FROM', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}
select s.pid, s.yob
from (
  select inner_q.patient_id as pid, tsf_generalized(inner_q.birth_date) as yob
  from (select * from "__tsf_ref_stg_patients" where sex = 'F') inner_q
) s`);
    expect(classes(cols)).toEqual({ pid: 'direct', yob: 'none' });
    expect(cols.pid!.lineage).toEqual(['pid <- s.pid <- inner_q.patient_id <- __tsf_ref_stg_patients.patient_id (direct)']);
  });

  it('window functions: max(x) over (partition by ...) keeps x’s class; the partition does not count', () => {
    const cols = lineageOf(`WITH ${ENCOUNTERS_CTE},
claims as (
  select
    c.practice_id,
    c.encounter_id,
    max(c.started_at) over (partition by c.practice_id) as latest,
    row_number() over (partition by c.patient_id order by c.started_at) as nth,
    lag(c.patient_id) over (order by c.started_at) as previous_patient
  from "__tsf_ref_stg_encounters" c
)
select * from claims`);
    expect(classes(cols)).toEqual({ practice_id: 'none', encounter_id: 'none', latest: 'quasi', nth: 'none', previous_patient: 'direct' });
  });

  it('cast(x as date), x::date and DuckDB’s AT TIME ZONE carry their input’s class', () => {
    const cols = lineageOf(`WITH ${ENCOUNTERS_CTE}
select
  e.*,
  cast(e.started_at at time zone t.timezone as date) as local_start_date,
  e.started_at::date as start_day,
  e.patient_id::varchar,
  cast(e.total_claim_cost as decimal(18, 2)) as cost
from "__tsf_ref_stg_encounters" e
join "tsform_meta"."tenants" t on t.practice_id = e.practice_id`);
    expect(cols.local_start_date?.phi).toBe('quasi');
    expect(cols.local_start_date!.lineage).toContain(
      'local_start_date <- at time zone(…) <- e.started_at <- __tsf_ref_stg_encounters.started_at (quasi)',
    );
    expect(cols.start_day?.phi).toBe('quasi');
    expect(cols.patient_id?.phi).toBe('direct'); // e.* and the unaliased cast are both named patient_id
    expect(cols.cost?.phi).toBe('none');
  });

  it('columns used only in WHERE, GROUP BY, HAVING, JOIN, ORDER BY, FILTER or EXISTS do not make an output identifying', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE},
${ENCOUNTERS_CTE}
select e.encounter_class, count(*) filter (where p.ssn is not null) as with_ssn, p.ssn is null as no_ssn,
  exists (select 1 from "__tsf_ref_stg_patients" x where x.mrn = p.mrn) as known
from "__tsf_ref_stg_encounters" e
join "__tsf_ref_stg_patients" p on p.patient_id = e.patient_id and p.mrn <> ''
where p.last_name like 'A%' and p.birth_date > date '1950-01-01'
group by e.encounter_class, p.ssn, p.mrn
having count(distinct p.zip) > 3
order by min(p.first_name)`);
    expect(classes(cols)).toEqual({ encounter_class: 'none', with_ssn: 'none', no_ssn: 'none', known: 'none' });
  });

  it('scalar subqueries, IN (subquery), UNION and recursive CTEs', () => {
    const cols = lineageOf(`WITH RECURSIVE ${PATIENTS_CTE},
chain(n, pid) as (
  select 1, patient_id from "__tsf_ref_stg_patients"
  union all
  select n + 1, pid from chain where n < 3
)
select
  (select max(x.mrn) from "__tsf_ref_stg_patients" x where x.practice_id = c.pid) as latest_mrn,
  c.n,
  c.pid in (select patient_id from "staging"."stg_encounters") as seen,
  c.pid
from chain c
union
select 'none', 0, false, 'zip ' || zip from "__tsf_ref_stg_patients"`);
    expect(classes(cols)).toEqual({ latest_mrn: 'direct', n: 'none', seen: 'direct', pid: 'direct' });
  });

  it('unknown relations fail closed: direct, with a note naming them', () => {
    const cols = lineageOf(`select a.token, b.* , mystery from "vault"."person_tokens" a cross join "raw"."extra" b`);
    expect(cols.token).toEqual({ phi: 'direct', generalized: false, computed: false, data: false, lineage: ['unknown relation vault.person_tokens'] });
    expect(cols['*']?.phi).toBe('direct');
    expect(cols['*']?.lineage).toEqual(['unknown relation raw.extra: its columns cannot be listed']);
    expect(cols.mystery?.lineage).toEqual(['unknown relation vault.person_tokens', 'unknown relation raw.extra']);
  });

  it('a column a declared relation does not list fails closed: direct, with a note', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}\nselect p.nickname, favourite_colour from "__tsf_ref_stg_patients" p`);
    expect(cols.nickname).toEqual({ phi: 'direct', generalized: false, computed: false, data: false, lineage: ['column p.nickname is not classified'] });
    expect(cols.favourite_colour?.phi).toBe('direct');
    expect(cols.favourite_colour?.lineage).toEqual(['column favourite_colour is not classified in p']);
  });

  it('a later select item may name an earlier alias (DuckDB), and keeps its class', () => {
    const cols = lineageOf(`WITH ${PATIENTS_CTE}\nselect p.ssn as s, 'SSN ' || s as shown from "__tsf_ref_stg_patients" p`);
    expect(cols.shown?.phi).toBe('direct');
  });

  it('a CTE declared in relations keeps a body-derived class that is higher than the declared one', () => {
    const cols = lineageOf(`WITH "__tsf_ref_thin" AS (select ssn as code, sex from "staging"."stg_patients")\nselect code, sex from "__tsf_ref_thin"`, {
      relations: { ...RELATIONS, __tsf_ref_thin: { code: 'none', sex: 'quasi' } },
    });
    expect(classes(cols)).toEqual({ code: 'direct', sex: 'quasi' });
    expect(cols.sex!.lineage).toEqual(['sex <- __tsf_ref_thin.sex (quasi)']);
  });
});

describe('columnLineage: SQL it cannot read', () => {
  it('unparsable SQL is ok:false with a short error that does not echo the SQL', () => {
    const secret = `'999-12-3456 ${'x'.repeat(500)}'`;
    const r = columnLineage({ sql: `select ${secret} as a, from t where`, relations: RELATIONS });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatch(/^SQL parse error at line 1, column \d+: syntax error/);
    expect(r.error.length).toBeLessThanOrEqual(200);
    expect(r.error).not.toContain('999-12-3456');
  });

  it('DuckDB-only syntax is reported, not guessed at (fail closed)', () => {
    const r = columnLineage({ sql: 'select * exclude (ssn) from "staging"."stg_patients"', relations: RELATIONS });
    expect(r).toEqual({ ok: false, error: expect.stringContaining('DuckDB-only syntax is not supported') });
  });

  it('not exactly one SELECT', () => {
    expect(columnLineage({ sql: 'select 1; select 2', relations: {} })).toEqual({ ok: false, error: 'expected one SELECT statement, found 2 statements' });
    expect(columnLineage({ sql: 'delete from t', relations: {} })).toEqual({ ok: false, error: 'expected a SELECT statement, found DeleteStmt' });
    expect(columnLineage({ sql: '   ', relations: {} }).ok).toBe(false);
  });
});

describe('columnLineage on every model of the demo project', () => {
  let manifest: Manifest;
  let diagnostics: Diagnostic[];
  // Every name under which compiled SQL may read a relation (see src/compile/render.ts).
  const relations: LineageInput['relations'] = {};
  const classesOf = (n: ManifestNode) => Object.fromEntries(Object.entries(n.columns).map(([c, v]) => [c, v.phi]));

  beforeAll(() => {
    ({ manifest, diagnostics } = compileProject(loadProject(REPO_ROOT)));
    for (const n of Object.values(manifest.sources)) {
      relations[`${n.schema}.${n.identifier}`] = classesOf(n);
      relations[`__tsf_src_${n.name.replace(/^source:/, '').replace('.', '__')}`] = classesOf(n);
    }
    for (const n of [...Object.values(manifest.seeds), ...Object.values(manifest.builtins)]) relations[`${n.schema}.${n.identifier}`] = classesOf(n);
    for (const n of Object.values(manifest.models)) {
      for (const key of [`${n.schema}.${n.identifier}`, `__tsf_ref_${n.name}`, `__tsf_this_${n.name}`]) relations[key] = classesOf(n);
    }
  });
  const lineage = (name: string) => {
    const sql = manifest.models[name]?.compiled_sql;
    if (sql === undefined) throw new Error(`demo model ${name} has no compiled SQL`);
    const r = columnLineage({ sql, relations });
    if (!r.ok) throw new Error(`${name}: ${r.error}`);
    return r.columns;
  };

  it('compiles', () => {
    expect(hasErrors(diagnostics), diagnostics.map((d) => d.message).join('\n')).toBe(false);
    expect(Object.keys(manifest.models).length).toBeGreaterThanOrEqual(13);
  });

  it('parses and analyses the compiled SQL (and incremental variant) of every model', () => {
    const failures: string[] = [];
    let analysed = 0;
    for (const m of Object.values(manifest.models)) {
      for (const [variant, sql] of [['compiled_sql', m.compiled_sql], ['compiled_incremental_sql', m.compiled_incremental_sql]] as const) {
        if (sql === undefined) continue;
        const r = columnLineage({ sql, relations });
        analysed++;
        if (!r.ok) failures.push(`${m.name} (${variant}): ${r.error}`);
        else if (Object.keys(r.columns).length === 0) failures.push(`${m.name} (${variant}): no output column`);
      }
    }
    expect(failures).toEqual([]);
    expect(analysed).toBeGreaterThanOrEqual(14);
  });

  it('finds the identifiers the marts expose and the counts that hide them', () => {
    const roster = lineage('practice_patient_roster');
    expect(roster.mrn).toMatchObject({ phi: 'direct', lineage: ['mrn <- p.mrn <- staging.stg_patients.mrn (direct)'] });
    expect(roster.birth_date?.phi).toBe('quasi');
    expect(roster.visits?.phi).toBe('none');
    expect(lineage('stg_patients').ssn?.lineage).toEqual(['ssn <- __tsf_src_ehr__patients.ssn (direct)']);
    expect(lineage('practice_chronic_panel').active_patients?.phi).toBe('none');
    expect(lineage('practice_daily_activity').distinct_patients?.phi).toBe('none');
  });
});
