import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { ColumnSpec, PhiClass, Project } from '../../src/project/types.ts';
import { checkPseudonymizedLineage } from '../../src/security/phi-gate.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * A model's yml is not the last word on what it holds (phi-gate.ts): a staging or mart model that
 * renames or re-encodes an identifier and declares the result `none` is read by research models
 * as what its SQL derives, so the pull request fails at compile (TSF215, naming the upstream
 * derivation), with a warning at the laundering model (TSF229). Every case adds models to the
 * demo in memory; the runtime backstop (the leak scan) is tested in test/research.
 */
const base = loadProject(REPO_ROOT);
const STG = 'models/staging/x_launder.sql';
const MART = 'models/marts/x_mid.sql';
const PSEUDO = 'models/research/x_reader.sql';

interface Case {
  models: Record<string, string>;
  /** Model name → column → declared class (a yml entry). */
  yml?: Record<string, Record<string, PhiClass>>;
}

function projectFor(c: Case): Project {
  const project: Project = structuredClone(base);
  for (const [file, sql] of Object.entries(c.models)) project.models.push({ name: basename(file, '.sql'), file, sql, line: 1 });
  for (const [model, columns] of Object.entries(c.yml ?? {})) {
    const specs: ColumnSpec[] = Object.entries(columns).map(([name, phi], i) => ({ name, phi, phiExplicit: true, tests: [], file: 'models/x.yml', line: i + 3 }));
    project.properties.push({ name: model, columns: specs, file: 'models/x.yml', line: 2 });
  }
  return project;
}

function compileCase(c: Case): { ok: boolean; diagnostics: Diagnostic[] } {
  try {
    return { ok: true, diagnostics: compileLoadedProject(projectFor(c), { write: false }).diagnostics };
  } catch (err) {
    if (err instanceof DiagnosticsError) return { ok: false, diagnostics: err.diagnostics };
    throw err;
  }
}

const codes = (ds: Diagnostic[], severity: 'error' | 'warning') => ds.filter((d) => d.severity === severity).map((d) => d.code);
const reader = (column: string) => `select s.practice_id, s.${column} from {{ref "x_launder"}} s`;

describe('a yml cannot lower what an upstream model derives', () => {
  const laundered: [string, string, PhiClass][] = [
    ['a plain alias', 'ssn', 'direct'],
    ['upper()', 'upper(ssn)', 'direct'],
    ['coalesce', "coalesce(ssn, 'none')", 'direct'],
    ['a CASE branch', "case when sex = 'F' then first_name else last_name end", 'direct'],
    ['a hash', 'md5(ssn)', 'direct'],
    ['concatenation', "first_name || ' ' || last_name", 'direct'],
    ['a scalar subquery', '(select max(q.mrn) from {{source "ehr" "patients"}} q where q.practice_id = p.practice_id and q.patient_id = p.patient_id)', 'direct'],
    ['a cast of the birth date', 'cast(birth_date as varchar)', 'quasi'],
    ['the death date', 'death_date', 'quasi'],
  ];
  it.each(laundered)('%s declared none in staging fails the research model that reads it', (_what, expr, phi) => {
    const r = compileCase({
      models: { [STG]: `select p.practice_id, ${expr} as visit_code from {{source "ehr" "patients"}} p`, [PSEUDO]: reader('visit_code') },
      yml: { x_launder: { practice_id: 'none', visit_code: 'none' } },
    });
    expect(r.ok).toBe(false);
    const error = r.diagnostics.find((d) => d.code === 'TSF215' && d.file === PSEUDO);
    expect(error?.message).toContain(`x_reader.visit_code exposes a ${phi === 'direct' ? 'direct identifier' : 'quasi-identifier'}`);
    expect(error?.message).toContain('x_launder.visit_code is declared none in its yml, but its SQL derives it');
    expect(error?.line).toBe(1);
    const warning = r.diagnostics.find((d) => d.code === 'TSF229');
    expect(warning).toMatchObject({ severity: 'warning', file: STG, line: 1 });
    expect(warning?.message).toContain(`declared none but its SQL derives it as ${phi}`);
  });

  it('through a mart table and an ephemeral model, each declaring none', () => {
    const r = compileCase({
      models: {
        [STG]: `{{config materialized="ephemeral"}}\nselect p.practice_id, p.mrn as ref_no from {{source "ehr" "patients"}} p`,
        [MART]: `select s.practice_id, s.ref_no as chart from {{ref "x_launder"}} s`,
        [PSEUDO]: `select m.practice_id, m.chart from {{ref "x_mid"}} m`,
      },
      yml: { x_launder: { ref_no: 'none' }, x_mid: { chart: 'none' } },
    });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.find((d) => d.code === 'TSF215')?.message).toContain('x_reader.chart exposes a direct identifier');
    expect(codes(r.diagnostics, 'warning').filter((c) => c === 'TSF229')).toHaveLength(2);
  });

  it('matches the yml column case-insensitively', () => {
    const r = compileCase({
      models: { [STG]: `select p.practice_id, p.ssn as visit_code from {{source "ehr" "patients"}} p`, [PSEUDO]: reader('visit_code') },
      yml: { x_launder: { Visit_Code: 'none' } },
    });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.some((d) => d.code === 'TSF215' && d.message.includes('x_reader.visit_code exposes a direct identifier'))).toBe(true);
  });

  it('a join on the laundered column is an implicit read of a direct identifier', () => {
    const r = compileCase({
      models: {
        [STG]: `select p.practice_id, p.patient_id as k, p.ssn as visit_code from {{source "ehr" "patients"}} p`,
        [PSEUDO]: `select v.practice_id, v.person_token from {{ref "vault_person_tokens"}} v join {{ref "x_launder"}} s on s.practice_id = v.practice_id and s.k = v.patient_id and s.visit_code = v.patient_id`,
      },
      yml: { x_launder: { k: 'none', visit_code: 'none' } },
    });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.find((d) => d.code === 'TSF215')?.message).toContain('reads a direct identifier outside its select list');
  });

  it('a value generalized upstream passes, and k-anonymity must know it is a quasi-identifier', () => {
    const models = { [STG]: `select p.practice_id, {{age_band "p.birth_date"}} as band from {{source "ehr" "patients"}} p`, [PSEUDO]: reader('band') };
    const undeclared = compileCase({ models, yml: { x_launder: { band: 'none' } } });
    expect(undeclared.ok).toBe(false);
    expect(undeclared.diagnostics.find((d) => d.code === 'TSF215')?.message).toContain('x_reader.band is a generalized quasi-identifier; declare it phi: quasi');
    const declared = compileCase({ models, yml: { x_launder: { band: 'none' }, x_reader: { band: 'quasi' } } });
    expect(declared.ok).toBe(true);
    expect(codes(declared.diagnostics, 'warning')).not.toContain('TSF229');
  });

  it('an honest upstream raises nothing', () => {
    const r = compileCase({
      models: { [STG]: `select e.practice_id, e.encounter_class, count(*) as visits from {{source "ehr" "encounters"}} e group by 1, 2`, [PSEUDO]: reader('visits') },
      yml: { x_launder: { encounter_class: 'none', visits: 'none' } },
    });
    expect(r.ok).toBe(true);
    expect(r.diagnostics.filter((d) => d.code === 'TSF229' || d.code === 'TSF230')).toEqual([]);
  });

  it('the demo project compiles without these warnings', () => {
    const r = compileCase({ models: {} });
    expect(r.ok).toBe(true);
    expect(r.diagnostics.filter((d) => d.code === 'TSF229' || d.code === 'TSF230')).toEqual([]);
  });

  it('an SSN laundered through xmltable or json_table in staging is refused like any other', () => {
    for (const from of [
      `xmltable('/r' passing xmlparse(document '<r>' || p.ssn || '</r>') columns v text path '.') x`,
      `json_table(json_build_object('s', p.ssn), '$' columns (v text path '$.s')) x`,
    ]) {
      const r = compileCase({
        models: { [STG]: `select p.practice_id, x.v as visit_code from {{source "ehr" "patients"}} p, ${from}`, [PSEUDO]: reader('visit_code') },
        yml: { x_launder: { practice_id: 'none', visit_code: 'none' } },
      });
      expect(r.ok).toBe(false);
      // A tenant-scoped model: the FROM item is refused first, as one whose practices cannot be checked.
      const lineage = r.diagnostics.find((d) => d.code === 'TSF215')?.message ?? '';
      const isolation = r.diagnostics.find((d) => d.code === 'TSF231')?.message ?? '';
      expect(lineage.includes('x_launder.visit_code is declared none in its yml, but its SQL derives it') || /reads a FROM item/.test(isolation), JSON.stringify(r.diagnostics.map((d) => [d.code, d.message]))).toBe(true);
    }
  });

  // Every construct compile accepts is analysable today; a model the analysis cannot follow
  // (a future grammar, an analyzer gap) keeps its yml, and the research model reading it says so.
  it('an upstream the analysis cannot follow keeps its yml, and the research model says so', () => {
    const c: Case = {
      models: {
        [STG]: `select p.practice_id, p.last_name from {{source "ehr" "patients"}} p`,
        [MART]: `select s.practice_id, s.last_name as surname from {{ref "x_launder"}} s`,
        [PSEUDO]: `select m.practice_id from {{ref "x_mid"}} m`,
      },
      yml: { x_launder: { practice_id: 'none', last_name: 'direct' }, x_mid: { practice_id: 'none', surname: 'direct' } },
    };
    expect(compileCase(c).ok).toBe(true);
    const ws = compileLoadedProject(projectFor(c), { write: false });
    ws.manifest.models['x_launder']!.lineage_sql = 'select * exclude (first_name) from raw.patients';
    const diagnostics = checkPseudonymizedLineage(ws.manifest, ws.dag.order);
    const notice = diagnostics.find((d) => d.code === 'TSF230');
    expect(notice).toMatchObject({ severity: 'warning', file: PSEUDO });
    expect(notice?.message).toContain('reads x_launder (through x_mid), whose yml classes stand unverified: its SQL cannot be analysed (SQL parse error');
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});

describe('the is_incremental rendering is checked like the full one', () => {
  const join = `from {{ref "stg_patients"}} p join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`;
  const inc = `{{config materialized="incremental" unique_key="person_token"}}\n`;

  it('a direct identifier selected only when incremental', () => {
    const r = compileCase({ models: { [PSEUDO]: `${inc}select p.practice_id, v.person_token, {{#if is_incremental}}p.ssn{{else}}null{{/if}} as x ${join}` } });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.find((d) => d.code === 'TSF215')?.message).toMatch(/x_reader\.x exposes a direct identifier: .*ssn.*\(in the is_incremental rendering\)/);
  });

  it('a direct identifier read in a predicate only when incremental', () => {
    const r = compileCase({
      models: { [PSEUDO]: `${inc}select p.practice_id, v.person_token ${join}{{#if is_incremental}} where p.ssn > (select max(person_token) from {{this}}){{/if}}` },
    });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.find((d) => d.code === 'TSF215')?.message).toMatch(/reads a direct identifier outside its select list.*\(in the is_incremental rendering\)/);
  });

  it('an upstream incremental model that launders only when incremental', () => {
    const r = compileCase({
      models: {
        [STG]: `${inc}select p.practice_id, p.patient_id as k, {{#if is_incremental}}p.mrn{{else}}'x'{{/if}} as visit_code from {{source "ehr" "patients"}} p`,
        [PSEUDO]: reader('visit_code'),
      },
      yml: { x_launder: { k: 'direct', visit_code: 'none' } },
    });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.find((d) => d.code === 'TSF215' && d.file === PSEUDO)?.message).toContain('x_reader.visit_code exposes a direct identifier');
  });

  it('an incremental model whose branches both stay pseudonymized passes', () => {
    const r = compileCase({
      models: { [PSEUDO]: `${inc}select p.practice_id, v.person_token ${join}{{#if is_incremental}} where v.person_token not in (select person_token from {{this}}){{/if}}` },
    });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});
