import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { Project } from '../../src/project/types.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * Issue 12: a model pull request cannot leak PHI. Each hostile model below is added to the demo
 * project (in memory) and must be refused at compile, with its file and a stable code: TSF222
 * (what the SQL does: statements, relations, functions), TSF215 (PHI lineage, fail closed),
 * TSF205 (config), TSF208 (scope), TSF223 (generalizer approval). What compile refuses never
 * runs; the engine walls underneath are tested in one-statement.test.ts.
 */
const base = loadProject(REPO_ROOT);

function compileWith(models: Record<string, string>, edit?: (p: Project) => void): Diagnostic[] {
  const project = structuredClone(base);
  for (const [file, sql] of Object.entries(models)) project.models.push({ name: basename(file, '.sql'), file, sql, line: 1 });
  edit?.(project);
  try {
    compileLoadedProject(project, { write: false });
    return [];
  } catch (err) {
    if (err instanceof DiagnosticsError) return err.diagnostics;
    throw err;
  }
}

const PUB = 'models/research/published/x_attack.sql';
const PSEUDO = 'models/research/x_attack.sql';
const MART = 'models/marts/x_attack.sql';

/** [what, file, sql, expected code] */
const attacks: [string, string, string, string][] = [
  // issue item 1: relations named directly
  ['published model reads staging by name', PUB, `select lower(p.first_name) a, replace(p.ssn,'-','') c, p.birth_date d, p.zip e, lower(p.address) f from staging.stg_patients p`, 'TSF222'],
  ['published model reads the vault key', PUB, `select key_hex from vault.keys`, 'TSF222'],
  // item 2: other ways past the lineage gate
  ['DuckDB positional reference', PSEUDO, `select p.practice_id, #9 as x from {{ref "stg_patients"}} p`, 'TSF222'],
  ['DuckDB columns() star expression', PSEUDO, `select p.practice_id, columns('first_name') from {{ref "stg_patients"}} p`, 'TSF231'],
  ['DuckDB columns() star expression, one practice per statement', PSEUDO, `{{config materialized="incremental" unique_key="person_token"}}\nselect p.practice_id, columns('first_name') from {{ref "stg_patients"}} p`, 'TSF215'],
  ['read_csv of the demo extract', PUB, `select * from read_csv('data/ehr/patients.csv.gz')`, 'TSF222'],
  ['read_csv as a scalar subquery', PSEUDO, `select practice_id, (select count(*) from read_csv('data/ehr/patients.csv.gz')) n from {{ref "pseudo_persons"}}`, 'TSF222'],
  ['query_table', PUB, `select * from query_table('staging.stg_patients')`, 'TSF222'],
  ['query() runs SQL text', PUB, `select * from query('select ssn from staging.stg_patients')`, 'TSF222'],
  ['pseudonymized switched off in the research folder', PSEUDO, `{{config pseudonymized=false}}\nselect p.practice_id, p.ssn from {{ref "stg_patients"}} p`, 'TSF205'],
  ['research schema without pseudonymization', MART, `{{config schema="research" pseudonymized=false scope="global"}}\nselect 1 as a`, 'TSF205'],
  // Published research is gated when built: a view (read live, ungated) or a per-practice table there is refused.
  ['published research as a view', PUB, `{{config materialized="view"}}\nselect person_token, birth_year from {{ref "pseudo_persons"}}`, 'TSF205'],
  ['published research as a tenant-scoped table', MART, `{{config schema="research" scope="tenant"}}\nselect practice_id, person_token from {{ref "pseudo_persons"}}`, 'TSF205'],
  ['model writing into the vault schema', MART, `{{config schema="vault"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  // DuckDB matches names without regard to case, PostgreSQL quoted names exactly: each check must hold on both
  ['the research schema in capitals', MART, `{{config schema="RESEARCH"}}\nselect p.practice_id, p.ssn from {{ref "stg_patients"}} p`, 'TSF205'],
  ['the vault schema in another case', MART, `{{config schema="Vault"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  ['the metadata schema in another case', MART, `{{config schema="TSFORM_META"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  // identities and tokens meet only in the vault: a mart with names and person tokens is an unaudited identity map
  ['a mart reading the vault tokens', MART, `select p.practice_id, p.first_name, v.person_token from {{ref "stg_patients"}} p join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`, 'TSF208'],
  ['a mart reading a pseudonymized model', MART, `select p.practice_id, p.first_name, x.person_token from {{ref "stg_patients"}} p join {{ref "pseudo_persons"}} x on x.practice_id = p.practice_id`, 'TSF208'],
  ['an ephemeral model reading a pseudonymized model', MART, `{{config materialized="ephemeral"}}\nselect e.practice_id, e.person_token from {{ref "pseudo_encounters"}} e`, 'TSF208'],
  // a model writes its own relation, never a source's, a seed's or another model's
  ['a model replacing a source', 'models/marts/patients.sql', `{{config schema="raw"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  ['a model replacing a source, in another case', 'models/marts/Patients.sql', `{{config schema="raw"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  ['a model replacing a seed, in another case', 'models/marts/Encounter_Classes.sql', `{{config schema="ref" scope="global"}}\nselect 1 as code`, 'TSF205'],
  ['a model replacing another model, in another case', 'models/marts/Stg_Patients.sql', `{{config schema="staging"}}\nselect practice_id from {{ref "stg_patients"}}`, 'TSF205'],
  [
    'implicit flow: join on digits of the SSN',
    PSEUDO,
    `select p.practice_id, g.n from {{ref "stg_patients"}} p join generate_series(0, 9999) g(n) on g.n = cast(substring(p.ssn, 8, 4) as int)`,
    'TSF215',
  ],
  // item 3: several statements
  [
    'grant and policy after a select',
    MART,
    `{{config scope="global" schema="research" pseudonymized=true}}\nselect 1 as a; grant select on staging.stg_patients to research_reader; create policy zz on staging.stg_patients for select to research_reader using (true); select 1 as a`,
    'TSF222',
  ],
  ['COPY the key to a file', MART, `copy (select key_hex from vault.keys) to 'stolen.csv'`, 'TSF222'],
  ['trailing statement after a comment', MART, `select practice_id from {{ref "stg_patients"}}; -- done\ndrop table staging.stg_patients`, 'TSF222'],
  ['ATTACH', MART, `attach 'target/vault.duckdb' as v2`, 'TSF222'],
  ['SELECT INTO creates a table', MART, `select practice_id into marts.copy_of from {{ref "stg_patients"}}`, 'TSF222'],
  ['DELETE in a WITH clause', MART, `with d as (delete from staging.stg_patients returning practice_id) select practice_id from d`, 'TSF222'],
  ['INSERT in a nested WITH clause', MART, `select x.a from (with i as (insert into marts.t select 1 returning 1 as a) select a from i) x`, 'TSF222'],
  // Incremental: `{{this}}` elsewhere is TSF205 before the SQL is read, and this case is about the SQL gate.
  [
    'UPDATE of {{this}} in a WITH clause',
    MART,
    `{{config materialized="incremental" unique_key="practice_id"}}\nwith u as (update {{this}} set practice_id = 'p' returning practice_id) select practice_id from u`,
    'TSF222',
  ],
  ['MERGE in a WITH clause', MART, `with m as (merge into marts.t using (select 1 a) s on true when matched then delete returning 1 as a) select a from m`, 'TSF222'],
  // item 7: generalization and classification gaps
  ['a zero shift', PSEUDO, `select p.practice_id, {{month_of (shift_date "p.birth_date" "0")}} as m from {{ref "stg_patients"}} p`, 'TSF215'],
  ['shift by a constant', PSEUDO, `select p.practice_id, {{shift_date "p.birth_date" "42"}} as d from {{ref "stg_patients"}} p`, 'TSF215'],
  [
    'shift by the vault shift times zero',
    PSEUDO,
    `select p.practice_id, {{month_of (shift_date "p.birth_date" "v.date_shift_days * 0")}} as m from {{ref "stg_patients"}} p join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`,
    'TSF215',
  ],
  ['month of a real birth date', PSEUDO, `select p.practice_id, {{month_of "p.birth_date"}} as birth_month from {{ref "stg_patients"}} p`, 'TSF215'],
  [
    'publishing the vault shift undoes it',
    PSEUDO,
    `select e.practice_id, v.person_token, v.date_shift_days as s from {{ref "stg_encounters"}} e join {{ref "vault_person_tokens"}} v on v.practice_id = e.practice_id and v.patient_id = e.patient_id`,
    'TSF215',
  ],
  ['an event date published raw', PSEUDO, `select e.practice_id, e.started_at from {{ref "stg_encounters"}} e`, 'TSF215'],
  ['an event id published raw', PSEUDO, `select e.practice_id, e.encounter_id from {{ref "stg_encounters"}} e`, 'TSF215'],
  // variants of our own: quoting, search_path, aliases, scoping
  ['quoted upper-case names', PUB, `select * from "STAGING"."STG_PATIENTS"`, 'TSF222'],
  ['half-quoted name', PUB, `select "first_name" from "staging".stg_patients`, 'TSF222'],
  ['bare name through search_path', MART, `select practice_id, ssn from stg_patients`, 'TSF222'],
  ['a CTE that shadows only inside a subquery', MART, `select a.x from (with stg_patients as (select 1 as x) select x from stg_patients) a, stg_patients`, 'TSF222'],
  ['a CTE name that differs in case', MART, `with "Stg" as (select 1 as x) select x from stg`, 'TSF222'],
  ['an author CTE with the reserved prefix', MART, `with __tsf_ref_stg_patients as (select * from staging.stg_patients) select * from __tsf_ref_stg_patients`, 'TSF222'],
  ['a reserved name of a relation not referenced', MART, `select practice_id from __tsf_ref_stg_patients`, 'TSF222'],
  ['UNION with a direct read', PUB, `select person_token from {{ref "pseudo_persons"}} union all select first_name from staging.stg_patients`, 'TSF222'],
  ['a subquery in WHERE reading by name', PUB, `select count(*) as n from {{ref "pseudo_persons"}} where exists (select 1 from staging.stg_patients where ssn like '9%')`, 'TSF222'],
  ['a view in another schema', MART, `select * from marts.practice_patient_roster`, 'TSF222'],
  ['a tenant mart reading all practices by name', MART, `select practice_id, count(*) as n from marts.practice_daily_activity group by practice_id`, 'TSF222'],
  ['an ephemeral model reading by name', MART, `{{config materialized="ephemeral"}}\nselect * from raw.patients`, 'TSF222'],
  ['catalog-qualified name', MART, `select * from vault.vault.keys`, 'TSF222'],
  ['a function in the vault schema', MART, `select * from vault.reidentify('pt_x', 'curious')`, 'TSF222'],
  ['a scalar function in another schema', MART, `select vault.reidentify('pt_x', 'curious') as r`, 'TSF222'],
  ['regclass cast', MART, `select 'staging.stg_patients'::regclass as r`, 'TSF222'],
  // A catalog type's input function parses a row's value as SQL names (its syntax error quoted the value).
  ['regtypein', MART, `select regtypein(('x''' || last_name)::cstring)::text as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['regclassin', MART, `select regclassin(textout(last_name))::text as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['cstring cast', MART, `select cast(last_name as cstring) as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['textout into array_in', MART, `select array_in(textout(last_name), 2206, -1)::text as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['a catalog row type', MART, `select (('(a,b,c,' || last_name || ',1,1,1,1,f,1,1)')::pg_sequences) is not null as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['populate a catalog row type', MART, `select jsonb_populate_record(null::pg_catalog.pg_sequences, jsonb_build_object('data_type', last_name)) is not null as r from {{ref "stg_patients"}}`, 'TSF222'],
  ['json_serialize_plan', MART, `select json_serialize_plan('select * from ' || last_name) as r from {{ref "stg_patients"}}`, 'TSF222'],
  // A type's input function or a domain's CHECK, and an operator's function, run as the owner.
  ['a cast to a type in public', MART, `select p.practice_id, cast(p.gender as public.evil_domain) as g from {{ref "stg_patients"}} p`, 'TSF222'],
  ['a cast to an array of a type in public', MART, `select p.practice_id, p.gender::public.evil_domain[] as g from {{ref "stg_patients"}} p`, 'TSF222'],
  ['a typed literal of a type in public', MART, `select p.practice_id, public.evil_domain 'x' as g from {{ref "stg_patients"}} p`, 'TSF222'],
  ['an operator in public', MART, `select p.practice_id from {{ref "stg_patients"}} p where p.gender OPERATOR(public.=) 'F'`, 'TSF222'],
  ['an operator in the vault', MART, `select p.practice_id, p.patient_id OPERATOR(vault.~>) 'x' as t from {{ref "stg_patients"}} p`, 'TSF222'],
  // PostgreSQL reserves the lower-case pg_ prefix only: a role may create a schema "PG_CATALOG".
  ['a function in a quoted "PG_CATALOG"', MART, `select "PG_CATALOG".lower(p.gender) as g from {{ref "stg_patients"}} p`, 'TSF222'],
  ['a cast to a type in a quoted "PG_CATALOG"', MART, `select cast(p.gender as "PG_CATALOG".text) as g from {{ref "stg_patients"}} p`, 'TSF222'],
  ['pg_read_file', MART, `select pg_read_file('/etc/passwd') as f`, 'TSF222'],
  ['pg_catalog-qualified pg_read_file', MART, `select pg_catalog.pg_read_file('/etc/passwd') as f`, 'TSF222'],
  ['getenv', MART, `select getenv('TSFORM_VAULT_KEY') as k`, 'TSF222'],
  ['current_setting', MART, `select current_setting('search_path') as s`, 'TSF222'],
  ['glob in FROM', MART, `select * from glob('target/*')`, 'TSF222'],
  ['a DuckDB replacement scan', MART, `select * from 'data/ehr/patients.csv.gz'`, 'TSF222'],
  ['duckdb_settings()', MART, `select * from duckdb_settings()`, 'TSF222'],
  ['json_execute_serialized_sql', MART, `select json_execute_serialized_sql('{}') as x`, 'TSF222'],
  // PostgreSQL functions that run SQL text or read a relation by name, as the warehouse's owner:
  // every practice's patients in one practice's mart (engine-function-catalogs.test.ts checks
  // the deny list against the engines' catalogs)
  ['query_to_xml of every practice', MART, `select s.practice_id, query_to_xml('select first_name, ssn from raw.patients', true, false, '') as x from {{ref "stg_patients"}} s`, 'TSF222'],
  ['pg_catalog-qualified query_to_xml', PSEUDO, `select pg_catalog.query_to_xml('select ssn from staging.stg_patients', true, false, '') as x`, 'TSF222'],
  ['table_to_xml by name', MART, `select table_to_xml('raw.patients', true, false, '') as x`, 'TSF222'],
  ['query_to_xml_and_xmlschema', MART, `select query_to_xml_and_xmlschema('select ssn from raw.patients', true, false, '') as x`, 'TSF222'],
  ['schema_to_xml', MART, `select schema_to_xml('raw', true, false, '') as x`, 'TSF222'],
  ['database_to_xml', MART, `select database_to_xml(true, false, '') as x`, 'TSF222'],
  ['cursor_to_xml', MART, `select cursor_to_xml('c', 10, true, false, '') as x`, 'TSF222'],
  ['ts_stat in a scalar subquery', MART, `select (select string_agg(word, ' ') from ts_stat('select to_tsvector(ssn) from raw.patients')) as w`, 'TSF222'],
  ['ts_rewrite with a query text', MART, `select ts_rewrite(to_tsquery('a'), 'select to_tsquery(ssn), to_tsquery(ssn) from raw.patients') as w`, 'TSF222'],
  ['currtid2 by relation name', MART, `select currtid2('raw.patients', '(0,1)') as t`, 'TSF222'],
  ['a DuckDB table function in another case', MART, `select * from "QUERY_TABLE"('raw.patients')`, 'TSF222'],
  ['write_log of a name', MART, `select write_log(first_name) as l from {{ref "stg_patients"}}`, 'TSF222'],
  ['FOR UPDATE', MART, `select practice_id from {{ref "stg_patients"}} for update`, 'TSF222'],
  // lineage variants in research models: lateral, windows, JSON/struct, recursion, grouping (each
  // batch-safe, so that TSF231 does not refuse it first)
  [
    'LATERAL subquery carrying the SSN',
    PSEUDO,
    `select p.practice_id, l.s from {{ref "pseudo_persons"}} p, lateral (select s.ssn as s from {{ref "stg_patients"}} s where s.practice_id = p.practice_id limit 1) l`,
    'TSF215',
  ],
  ['window ordered by SSN', PSEUDO, `select p.practice_id, row_number() over (partition by p.practice_id order by p.ssn) as rn from {{ref "stg_patients"}} p`, 'TSF215'],
  ['window partitioned by name', PSEUDO, `select p.practice_id, count(*) over (partition by p.practice_id, p.last_name) as n from {{ref "stg_patients"}} p`, 'TSF215'],
  ['whole-row JSON', PSEUDO, `select p.practice_id, to_json(p) as j from {{ref "stg_patients"}} p`, 'TSF215'],
  ['struct_pack (an unreviewed function)', PSEUDO, `select p.practice_id, struct_pack(s := p.ssn) as j from {{ref "stg_patients"}} p`, 'TSF215'],
  ['a hash of the SSN', PSEUDO, `select p.practice_id, md5(p.ssn) as h from {{ref "stg_patients"}} p`, 'TSF215'],
  [
    'recursive CTE carrying a name',
    PSEUDO,
    `with recursive r(practice_id, n, v) as (select practice_id, 1, first_name from {{ref "stg_patients"}} union all select practice_id, n + 1, v from r where n < 2) select practice_id, v from r`,
    'TSF215',
  ],
  ['WHERE on the SSN', PSEUDO, `select p.practice_id, count(*) as n from {{ref "stg_patients"}} p where p.ssn like '999%' group by p.practice_id`, 'TSF215'],
  ['GROUP BY a name', PSEUDO, `select p.practice_id, count(*) as n from {{ref "stg_patients"}} p group by p.practice_id, p.first_name`, 'TSF215'],
  ['FILTER on a name', PSEUDO, `select p.practice_id, count(*) filter (where p.first_name = 'X') as n from {{ref "stg_patients"}} p group by p.practice_id`, 'TSF215'],
  [
    'EXISTS with a predicate on the SSN',
    PSEUDO,
    `select p.practice_id, v.person_token from {{ref "pseudo_persons"}} v join {{ref "stg_patients"}} p on p.practice_id = v.practice_id and false where exists (select 1 from {{ref "stg_patients"}} s where s.practice_id = p.practice_id and s.ssn like '999%')`,
    'TSF215',
  ],
  [
    'correlated EXISTS selecting persons by name',
    PSEUDO,
    `select v.practice_id, v.person_token from {{ref "vault_person_tokens"}} v where exists (select 1 from {{ref "stg_patients"}} s where s.practice_id = v.practice_id and s.patient_id = v.patient_id and s.last_name like 'A%')`,
    'TSF215',
  ],
  // A sub-select in LIMIT reads every practice of a batch: refused as mixing practices first.
  ['LIMIT from the SSN', PSEUDO, `select p.practice_id from {{ref "stg_patients"}} p limit (select length(min(ssn)) from {{ref "stg_patients"}})`, 'TSF231'],
  [
    'the vault join abused as a filter',
    PSEUDO,
    `select p.practice_id, v.person_token from {{ref "stg_patients"}} p join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id and v.date_shift_days = length(p.first_name)`,
    'TSF215',
  ],
  [
    'the vault joined on the wrong column',
    PSEUDO,
    `select p.practice_id, v.person_token from {{ref "stg_patients"}} p join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.ssn`,
    'TSF215',
  ],
  ['a global model reading identifiable data through ref', PUB, `select count(distinct ssn) as n from {{ref "stg_patients"}}`, 'TSF208'],
];

describe('hostile model pull requests are refused at compile (issue 12)', () => {
  it('the demo project itself compiles with no diagnostic from these gates', () => {
    expect(compileWith({}).filter((d) => d.severity === 'error')).toEqual([]);
  });

  // The read check alone missed these (a DML statement's target is not a RangeVar node).
  it.each(attacks.filter(([what]) => what.includes('in a WITH clause') || what.includes('in a nested WITH clause')))('%s: refused as a data change', (_what, file, sql) => {
    const diags = compileWith({ [file]: `${sql}\n` });
    expect(diags.some((d) => d.code === 'TSF222' && d.file === file && /modifies data \((DELETE|INSERT|UPDATE|MERGE) in a WITH clause\)/.test(d.message))).toBe(true);
  });

  it.each(attacks)('%s', (_what, file, sql, code) => {
    const diags = compileWith({ [file]: `${sql}\n` }).filter((d) => d.severity === 'error');
    const mine = diags.filter((d) => d.file === file || d.file === undefined);
    expect(
      mine.map((d) => d.code),
      diags.map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`).join('\n'),
    ).toContain(code);
    // Every refusal names the file and a line.
    expect(mine.filter((d) => d.code === code).every((d) => d.file === file && typeof d.line === 'number')).toBe(true);
  });

  it("pg_catalog's own types, operators and functions may be named with their schema", () => {
    const sql = `select p.practice_id, cast(p.gender as pg_catalog.text) as g, pg_catalog.lower(p.gender) as l, p.gender OPERATOR(pg_catalog.=) 'F' as f, date '2026-01-01' as d\nfrom {{ref "stg_patients"}} p\n`;
    expect(compileWith({ [MART]: sql }).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('a singular test gets the same check (it runs as the owner too)', () => {
    const diags = compileWith({}, (p) =>
      p.singularTests.push({ name: 'steal', file: 'tests/steal.sql', line: 1, sql: `select practice_id from {{ref "stg_patients"}} where exists (select 1 from vault.keys)\n` }),
    );
    expect(diags.find((d) => d.code === 'TSF222')).toMatchObject({ file: 'tests/steal.sql' });
  });

  it('names the line of the offending relation', () => {
    const diags = compileWith({ [MART]: `select practice_id\nfrom {{ref "stg_patients"}} p\njoin staging.stg_providers s on true\n` });
    expect(diags.find((d) => d.code === 'TSF222')).toMatchObject({ file: MART, line: 3 });
  });
});

describe('generalization is approved in one reviewed place (tsform.yml privacy.generalizers)', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');

  it('a macro that says it generalizes is not a generalizer until approved with its hash', () => {
    const body = '{{!-- params: v --}}\n{{!-- generalizes: trust me --}}\n{{v}}\n';
    const diags = compileWith({ [PSEUDO]: `select p.practice_id, {{launder "p.birth_date"}} as x from {{ref "stg_patients"}} p\n` }, (p) =>
      p.macros.push({ name: 'launder', body, file: 'macros/launder.hbs', line: 1 }),
    );
    const unapproved = diags.find((d) => d.code === 'TSF223');
    expect(unapproved).toMatchObject({ file: 'macros/launder.hbs', line: 1 });
    expect(unapproved?.message).toContain(sha(body));
  });

  it('an unapproved macro generalizes nothing: its output keeps its class', () => {
    const body = '{{!-- params: v --}}\n{{v}}\n';
    const diags = compileWith({ [PSEUDO]: `select p.practice_id, {{launder "p.birth_date"}} as x from {{ref "stg_patients"}} p\n` }, (p) =>
      p.macros.push({ name: 'launder', body, file: 'macros/launder.hbs', line: 1 }),
    );
    expect(diags.some((d) => d.code === 'TSF215' && d.file === PSEUDO && /quasi/.test(d.message))).toBe(true);
  });

  it('a changed approved macro is unapproved until its new hash is listed', () => {
    const diags = compileWith({}, (p) => {
      const zip3 = p.macros.find((m) => m.name === 'zip3')!;
      zip3.body = zip3.body.replace("'000'", "'001'");
    });
    const changed = diags.find((d) => d.code === 'TSF223');
    expect(changed?.file).toBe('macros/zip3.hbs');
    expect(changed?.message).toMatch(/changed since it was approved/);
    // Without its approval, the demo's zip3 column is an ungeneralized quasi-identifier.
    const unlisted = compileWith({}, (p) => {
      delete p.config.privacy!.generalizers.zip3;
      const zip3 = p.macros.find((m) => m.name === 'zip3')!;
      zip3.body = zip3.body.replace(/\{\{!--\s*generalizes:[^}]*--\}\}\n?/, '');
    });
    expect(unlisted.some((d) => d.code === 'TSF215' && /pseudo_persons\.zip3/.test(d.message))).toBe(true);
  });

  it('even an approved generalizer leaves a direct identifier direct', () => {
    const diags = compileWith({ [PSEUDO]: `select p.practice_id, {{zip3 "p.ssn"}} as z from {{ref "stg_patients"}} p\n` });
    expect(diags.some((d) => d.code === 'TSF215' && d.file === PSEUDO)).toBe(true);
  });
});

describe('a source is read from outside tsform, declared once, and shared only without practices', () => {
  const patients = () => structuredClone(base.sources.find((s) => s.source === 'ehr' && s.name === 'patients')!);
  const withSource = (change: (s: Project['sources'][number]) => void, mart?: string) =>
    compileWith(mart ? { [MART]: mart } : {}, (p) => {
      const s = patients();
      s.source = 'x';
      s.line = 900;
      change(s);
      p.sources.push(s);
    }).filter((d) => d.severity === 'error' && d.file === 'models/sources.yml' && d.line === 900);

  it.each([
    ['the vault', 'vault', 'keys'],
    ['the vault in another case', 'VAULT', 'keys'],
    ['tsform metadata', 'tsform_meta', 'tenants'],
    ['staging, where models write', 'staging', 'stg_patients'],
    ['published research', 'research', 'research_diabetes_cohort'],
  ])('a source in %s is refused at its line', (_what, schema, table) => {
    const diags = withSource(
      (s) => {
        s.schema = schema;
        s.name = table;
        s.identifier = table;
        s.columns = [{ name: 'key_hex', phi: 'none', phiExplicit: true, tests: [], file: 'models/sources.yml', line: 900 }];
      },
      `select k.key_hex from {{source "x" "${table}"}} k`,
    );
    expect(diags.map((d) => d.code)).toContain('TSF205');
  });

  it('a second declaration of raw.patients, shared with every practice, is refused twice', () => {
    const diags = withSource((s) => {
      s.scope = 'shared';
    }, `select p.first_name, p.ssn from {{source "x" "patients"}} p`);
    expect(diags.map((d) => d.code).sort()).toEqual(['TSF205', 'TSF208']);
  });

  it('the demo source switched to shared is refused: its tables carry practice_id', () => {
    const diags = compileWith({}, (p) => {
      for (const s of p.sources) if (s.source === 'ehr') s.scope = 'shared';
    }).filter((d) => d.code === 'TSF208' && d.file === 'models/sources.yml');
    expect(diags.length).toBe(base.sources.filter((s) => s.source === 'ehr').length);
  });
});
