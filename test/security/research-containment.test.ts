import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/**
 * Research rows stay in research schemas (DESIGN §1, §4). A relation built from pseudonymized rows
 * is research itself: were it not, a global model in marts over pseudo_encounters would put every
 * practice's rows, practice ids and tokens in a schema each practice role reads (no row-level
 * security on a global relation, no publication gate), and a tenant-scoped mart reading it would
 * set tokens beside its own patients' identities. Each route compiled clean before this check.
 */

const ALL_TOKENS = '{{config scope="global"}}\nselect person_token, practice_token, practice_id from {{ref "pseudo_encounters"}}\n';

let demo: DemoCopy | undefined;
afterEach(() => demo?.remove());

function errorsWith(files: Record<string, string>): Diagnostic[] {
  demo = copyDemoProject({ files });
  return compileErrors(loadProject(demo.dir));
}

/** The errors of loading a project (policies.yml is read there), [] when none. */
function loadErrors(edit: (dir: string) => void): Diagnostic[] {
  demo = copyDemoProject();
  edit(demo.dir);
  return loadProject(demo.dir).diagnostics.filter((d) => d.severity === 'error');
}

const brief = (ds: Diagnostic[]) => ds.map((d) => ({ code: d.code, file: d.file, line: d.line }));

describe('a relation built from research rows is research', () => {
  it('a global model outside the research folders reading a pseudonymized model is TSF208 at the ref, naming both', () => {
    const errors = errorsWith({ 'models/marts/all_tokens.sql': ALL_TOKENS });
    expect(brief(errors)).toEqual([{ code: Codes.globalReadsIdentifiable, file: 'models/marts/all_tokens.sql', line: 2 }]);
    expect(errors[0]!.message).toContain("'all_tokens'");
    expect(errors[0]!.message).toContain("'pseudo_encounters'");
  });

  it('as a view, an ephemeral or an incremental model too', () => {
    for (const materialized of ['view', 'ephemeral', 'incremental" unique_key="person_token']) {
      const sql = ALL_TOKENS.replace('scope="global"', `scope="global" materialized="${materialized}"`);
      expect(brief(errorsWith({ 'models/marts/all_tokens.sql': sql })), materialized).toEqual([
        { code: Codes.globalReadsIdentifiable, file: 'models/marts/all_tokens.sql', line: 2 },
      ]);
      demo!.remove();
    }
  });

  it('a tenant-scoped mart reading such a model: no route through it compiles, declared pseudonymized or not', () => {
    const MART = 'select p.practice_id, p.patient_id, g.person_token\nfrom {{ref "stg_patients"}} p\njoin {{ref "all_tokens"}} g on g.practice_id = p.practice_id\n';
    // and the mart itself: a global relation built from every practice's rows (scope-checks.ts)
    expect(brief(errorsWith({ 'models/marts/all_tokens.sql': ALL_TOKENS, 'models/marts/mart_tokens.sql': MART }))).toEqual([
      { code: Codes.globalReadsIdentifiable, file: 'models/marts/all_tokens.sql', line: 2 },
      { code: Codes.batchMixesPractices, file: 'models/marts/mart_tokens.sql', line: 3 },
    ]);
    demo!.remove();
    const declared = ALL_TOKENS.replace('scope="global"', 'scope="global" pseudonymized=true');
    const errors = brief(errorsWith({ 'models/marts/all_tokens.sql': declared, 'models/marts/mart_tokens.sql': MART }));
    expect(errors).toEqual(
      expect.arrayContaining([
        { code: Codes.invalidConfig, file: 'models/marts/all_tokens.sql', line: 1 },
        { code: Codes.globalReadsIdentifiable, file: 'models/marts/mart_tokens.sql', line: 3 },
      ]),
    );
  });

  it('a pseudonymized model outside a research schema is TSF205, whatever its scope', () => {
    for (const scope of ['global', 'tenant']) {
      const sql = ALL_TOKENS.replace('scope="global"', `scope="${scope}" pseudonymized=true`);
      const errors = errorsWith({ 'models/marts/all_tokens.sql': sql });
      expect(brief(errors), scope).toEqual([{ code: Codes.invalidConfig, file: 'models/marts/all_tokens.sql', line: 1 }]);
      expect(errors[0]!.message).toMatch(/research schema/);
      demo!.remove();
    }
  });

  it("a global model outside research over tenants still compiles (the demo's research models compile: demo-project tests)", () => {
    // in a schema practice roles do not read: in marts it would show them the practice list (practice-list.test.ts)
    expect(
      errorsWith({
        'models/marts/practice_count.sql': '{{config scope="global" schema="ops_internal"}}\nselect count(*) as practices from {{ref "tenants"}}\n',
      }),
    ).toEqual([]);
  });
});

describe('roles read research only where it is published', () => {
  const grant = (grants: string) => (dir: string) => {
    const file = join(dir, 'policies/policies.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/grants:\n(?: {2}.*\n)+/, `grants:\n${grants}`));
  };

  it('practice roles granted a research schema or the vault: an error at the grant in policies.yml', () => {
    for (const schema of ['pseudo', 'research', 'vault', 'Pseudo', 'VAULT']) {
      const errors = loadErrors(grant(`  practice_roles: [staging, marts, ${schema}]\n  research_reader: [research]\n`));
      expect(errors.map((d) => ({ code: d.code, file: d.file })), schema).toEqual([{ code: Codes.invalidConfig, file: 'policies/policies.yml' }]);
      expect(errors[0]!.message).toContain(`'${schema}'`);
      expect(errors[0]!.line).toBeGreaterThan(1);
      demo!.remove();
    }
  });

  it('the research reader granted anything but the published research schema: an error', () => {
    for (const schema of ['pseudo', 'marts', 'staging', 'vault']) {
      const errors = loadErrors(grant(`  practice_roles: [staging, marts]\n  research_reader: [research, ${schema}]\n`));
      expect(errors.map((d) => d.code), schema).toEqual([Codes.invalidConfig]);
      expect(errors[0]!.message).toContain(`'${schema}'`);
      demo!.remove();
    }
  });

  it("the demo's grants load", () => {
    expect(loadErrors(() => {})).toEqual([]);
  });
});

/**
 * A practice's id names a place of care, finer than any geography Safe Harbor lets research keep
 * (ZIP3): across practices it is a quasi-identifier no generalizer approves, and the practice token
 * stands in for it. Before this a published model grouped by practice_id compiled clean.
 */
describe('a relation over every practice holds practice tokens, not practice ids', () => {
  const PER_PRACTICE = (column: string) =>
    `{{config k_anonymity_count="persons"}}\nselect ${column}, count(distinct person_token) as persons\nfrom {{ref "pseudo_persons"}}\ngroup by 1\n`;

  it('a published model exposing practice_id, as stored or computed: TSF215 at the column', () => {
    for (const column of ['practice_id', "upper(practice_id) || '' as p", 'md5(practice_id) as practice_hash']) {
      const errors = errorsWith({ 'models/research/published/per_practice.sql': PER_PRACTICE(column) });
      expect(brief(errors), column).toEqual([{ code: Codes.phiLineage, file: 'models/research/published/per_practice.sql', line: 2 }]);
      expect(errors[0]!.message, column).toMatch(/holds a practice's id or tenants.yml attributes across practices .*practice_token/);
      demo!.remove();
    }
  });

  it('a global model in the pseudonymized folder too (it is research, read by published models)', () => {
    const errors = errorsWith({ 'models/research/practice_rows.sql': '{{config scope="global"}}\nselect practice_id, count(*) as n\nfrom {{ref "pseudo_encounters"}}\ngroup by 1\n' });
    expect(brief(errors)).toEqual([{ code: Codes.phiLineage, file: 'models/research/practice_rows.sql', line: 2 }]);
  });

  it('renamed on the way, in a pseudonymized slice or in staging: TSF215 at the published column', () => {
    const PUBLISHED = '{{config k_anonymity_count="persons"}}\nselect clinic, count(distinct person_token) as persons\nfrom {{ref "pseudo_clinic"}}\ngroup by 1\n';
    const viaSlice = errorsWith({
      'models/research/pseudo_clinic.sql': 'select practice_id, person_token, lower(practice_id) as clinic from {{ref "pseudo_persons"}}\n',
      'models/research/published/per_clinic.sql': PUBLISHED,
    });
    expect(brief(viaSlice)).toEqual([{ code: Codes.phiLineage, file: 'models/research/published/per_clinic.sql', line: 2 }]);
    demo!.remove();
    const viaStaging = errorsWith({
      'models/staging/stg_clinic.sql': 'select practice_id, patient_id, practice_id as clinic from {{ref "stg_patients"}}\n',
      'models/research/pseudo_clinic.sql':
        'select s.practice_id, v.person_token, s.clinic\nfrom {{ref "stg_clinic"}} s\njoin {{ref "vault_person_tokens"}} v on v.practice_id = s.practice_id and v.patient_id = s.patient_id\n',
      'models/research/published/per_clinic.sql': PUBLISHED,
    });
    expect(brief(viaStaging)).toEqual([{ code: Codes.phiLineage, file: 'models/research/published/per_clinic.sql', line: 2 }]);
    expect(viaStaging[0]!.message).toMatch(/holds a practice's id or tenants.yml attributes across practices/);
  });

  it("a practice's name or time zone from tenants.yml, carried by a slice: TSF215 at the global column", () => {
    for (const column of ['name', 'timezone']) {
      const errors = errorsWith({
        'models/research/pseudo_clinic.sql': `select c.practice_id, c.person_token, t.${column} as clinic\nfrom {{ref "pseudo_persons"}} c\njoin {{ref "tenants"}} t on t.practice_id = c.practice_id\n`,
        // A global research model (a published one reading tenants' rows is refused by its cell checks already).
        'models/research/per_clinic.sql': '{{config scope="global"}}\nselect clinic, count(distinct person_token) as persons\nfrom {{ref "pseudo_clinic"}}\ngroup by 1\n',
      });
      expect(brief(errors), column).toEqual([{ code: Codes.phiLineage, file: 'models/research/per_clinic.sql', line: 2 }]);
      demo!.remove();
    }
  });

  it('the practice token compiles, and a tenant-scoped slice keeps its practice_id', () => {
    expect(errorsWith({ 'models/research/published/per_practice.sql': PER_PRACTICE('practice_token') })).toEqual([]);
  });
});

