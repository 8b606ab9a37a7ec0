import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ModelNode } from '../../src/artifacts/manifest.ts';
import { compileDir, REPO_ROOT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

// The real demo project (repo root). Compiled once: the compiler is pure, so sharing is safe.
let manifest: Manifest;
let tenantIds: string[];
let tenantsYml: string;

beforeAll(() => {
  const compiled = compileDir(REPO_ROOT);
  expect(compiled.diagnostics).toEqual([]);
  manifest = compiled.manifest;
  tenantsYml = readFileSync(join(REPO_ROOT, 'tenants.yml'), 'utf8');
  tenantIds = (parse(tenantsYml) as { tenants: { id: string }[] }).tenants.map((t) => t.id);
});
afterAll(removeTempProjects);

const models = (): ModelNode[] => Object.values(manifest.models);
const tenantTables = (): ModelNode[] =>
  models().filter((m) => m.scope === 'tenant' && (m.materialized === 'table' || m.materialized === 'incremental'));
const sqlTexts = (m: ModelNode): string[] => [m.compiled_sql, m.compiled_incremental_sql].filter((s): s is string => s !== undefined);

describe('demo project: a model is rendered once, never per practice', () => {
  it('has the tenant-scoped tables the rest of these tests rely on', () => {
    expect(tenantTables().map((m) => m.name)).toEqual(expect.arrayContaining([
      'practice_chronic_panel',
      'practice_claims_outstanding',
      'practice_daily_activity',
      'provider_panel',
      'stg_claims',
      'stg_conditions',
      'stg_encounters',
      'stg_medications',
      'stg_patients',
      'stg_procedures',
      'stg_providers',
    ]));
  });

  it('no compiled SQL (models, incremental variants, tests) contains a practice id from tenants.yml', () => {
    expect(tenantIds.length).toBeGreaterThan(200);
    const texts = [...models().flatMap(sqlTexts), ...Object.values(manifest.tests).map((t) => t.sql)];
    for (const text of texts) {
      for (const id of tenantIds) expect(text.includes(id), `practice id ${id} in compiled SQL:\n${text}`).toBe(false);
    }
  });

  it('every tenant-scoped table reads its inputs through the bound practice array $1::VARCHAR[]', () => {
    for (const m of tenantTables()) {
      for (const text of sqlTexts(m)) {
        expect(text, m.name).toContain('= ANY($1::VARCHAR[])');
        // Every tenant-scoped input is filtered: no unfiltered raw/staging relation is read.
        expect(text, m.name).not.toMatch(/"(raw|staging)"\."\w+"(?! WHERE "practice_id" = ANY\(\$1::VARCHAR\[\]\))/);
      }
    }
  });

  it('a tenant-scoped view (practice_patient_roster) is one relation over every practice: no $1', () => {
    const roster = manifest.models.practice_patient_roster!;
    expect(roster).toMatchObject({ scope: 'tenant', materialized: 'view' });
    expect(roster.compiled_sql).toBeDefined();
    expect(roster.compiled_sql).not.toContain('$1');
    expect(roster.compiled_sql).toContain('"staging"."stg_patients"');
  });

  it('the incremental model stg_encounters has both variants, only the incremental one reads its own slice', () => {
    const stg = manifest.models.stg_encounters!;
    expect(stg).toMatchObject({ materialized: 'incremental', unique_key: ['encounter_id'] });
    const full = stg.compiled_sql!;
    const incremental = stg.compiled_incremental_sql!;
    expect(full).toBeDefined();
    expect(incremental).toBeDefined();
    expect(incremental).toContain('"__tsf_this_stg_encounters"');
    // one high-water mark per practice, joined (not a sub-select correlated per source row)
    expect(incremental).toMatch(/from "__tsf_this_stg_encounters" t group by t\.practice_id\) hw\s+on hw\.practice_id = e\.practice_id/);
    expect(incremental).toContain('where e.updated_at >');
    expect(full).not.toContain('where e.updated_at >');
    // The first build of a practice runs the full variant while staging.stg_encounters may not
    // exist yet: PostgreSQL resolves every CTE, used or not, so the full variant must not
    // mention its own relation at all.
    expect(full).not.toContain('__tsf_this_stg_encounters');
    expect(full).not.toContain('"staging"."stg_encounters"');
  });

  it('inlines the ephemeral int_encounters_local as a CTE of practice_daily_activity', () => {
    const pda = manifest.models.practice_daily_activity!;
    expect(manifest.models.int_encounters_local).toMatchObject({ materialized: 'ephemeral' });
    expect(pda.depends_on).toEqual(['int_encounters_local']);
    const sql = pda.compiled_sql!;
    expect(sql.startsWith('WITH "__tsf_ref_int_encounters_local" AS (')).toBe(true);
    expect(sql).toContain('from "__tsf_ref_int_encounters_local"');
    // Never read as a relation of its own: it does not exist in the warehouse.
    expect(sql).not.toContain('"int_encounters_local"');
    expect(sql).not.toContain('"marts"."int_encounters_local"');
    // The ephemeral's own inputs are still filtered to the bound practices.
    expect(sql).toContain('SELECT * FROM "staging"."stg_encounters" WHERE "practice_id" = ANY($1::VARCHAR[])');
    expect(sql).toContain('"tsform_meta"."tenants"');
  });

  it('merges tsform CTEs into an author\'s own WITH (one WITH per statement)', () => {
    for (const name of ['provider_panel', 'practice_chronic_panel', 'practice_claims_outstanding']) {
      const sql = manifest.models[name]!.compiled_sql!;
      const body = sql.replace(/--[^\n]*\n/g, '');
      expect(body.match(/\bwith\b/gi), name).toHaveLength(1);
      expect(body.trimStart().startsWith('WITH "__tsf_ref_'), name).toBe(true);
    }
  });

  it('renders vars from tsform.yml as literals', () => {
    expect(manifest.models.provider_panel!.compiled_sql).toContain("l.latest_at - 12 * interval '1 month'");
    expect(manifest.models.provider_panel!.vars).toEqual(['panel_months']);
  });
});

describe('demo project: manifest shape', () => {
  it('is schema version 2 with the project, tenant column and every practice id', () => {
    expect(manifest.schema_version).toBe(2);
    expect(manifest.project).toBe('ehr_analytics');
    expect(manifest.tenant_column).toBe('practice_id');
    expect(manifest.tenants).toHaveLength(221);
    expect(manifest.tenants).toEqual(tenantIds);
  });

  it('describes every model with scope, materialized, depends_on, columns and path', () => {
    expect(Object.keys(manifest.models).length).toBeGreaterThanOrEqual(13);
    for (const [name, m] of Object.entries(manifest.models)) {
      expect(m.name).toBe(name);
      expect(m.kind).toBe('model');
      expect(['tenant', 'global', 'shared']).toContain(m.scope);
      expect(['view', 'table', 'incremental', 'ephemeral']).toContain(m.materialized);
      expect(Array.isArray(m.depends_on)).toBe(true);
      expect(typeof m.columns).toBe('object');
      expect(m.path.startsWith('models/') && m.path.endsWith(`/${name}.sql`), m.path).toBe(true);
      expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(manifest.models.provider_panel).toMatchObject({
      scope: 'tenant',
      materialized: 'table',
      schema: 'marts',
      tags: ['marts'],
      depends_on: ['stg_encounters', 'stg_providers'],
      columns: { practice_id: { phi: 'none' }, provider_id: { phi: 'none' }, active_patients_12m: { phi: 'none' } },
    });
    expect(manifest.models.stg_encounters!.path).toBe('models/staging/stg_encounters.sql');
    expect(manifest.models.stg_encounters!.depends_on).toEqual(['source:ehr.encounters']);
    expect(manifest.models.int_encounters_local!.depends_on).toEqual(['stg_encounters', 'tenants']);
  });

  it('holds sources, seeds and the tenants relation', () => {
    expect(Object.keys(manifest.sources)).toEqual(
      expect.arrayContaining(['claims', 'conditions', 'encounters', 'medications', 'patients', 'procedures', 'providers'].map((t) => `source:ehr.${t}`)),
    );
    expect(manifest.sources['source:ehr.patients']!.columns.mrn).toEqual({ phi: 'direct' });
    expect(manifest.builtins.tenants).toMatchObject({ kind: 'tenants', scope: 'shared', schema: 'tsform_meta', path: 'tenants.yml' });
    expect(manifest.seeds.encounter_classes).toMatchObject({ kind: 'seed', scope: 'shared', schema: 'ref' });
  });

  it('is JSON-serializable as is', () => {
    expect(JSON.parse(JSON.stringify(manifest))).toEqual(manifest);
  });
});

describe('demo project: adding a practice does not recompile any model', () => {
  it('the compiled SQL of every model and test is identical with one more tenant', () => {
    const extra = [
      '  - id: p_zz_new_practice',
      '    name: The 222nd practice',
      '    timezone: America/Chicago',
      '    sla:',
      '      ready_by: "06:15"',
      '    tags: [small]',
      '    pool: steady',
      '',
    ].join('\n');
    const dir = writeTempProject(
      { 'tenants.yml': `${tenantsYml.trimEnd()}\n${extra}` },
      { dir: REPO_ROOT, copy: ['tsform.yml', 'models', 'macros', 'seeds', 'tests', 'policies'] },
    );
    const grown = compileDir(dir);
    expect(grown.diagnostics).toEqual([]);
    expect(grown.manifest.tenants).toEqual([...tenantIds, 'p_zz_new_practice']);
    expect(Object.keys(grown.manifest.models)).toEqual(Object.keys(manifest.models));
    for (const [name, m] of Object.entries(manifest.models)) {
      expect(grown.manifest.models[name]!.compiled_sql, name).toBe(m.compiled_sql);
      expect(grown.manifest.models[name]!.compiled_incremental_sql, name).toBe(m.compiled_incremental_sql);
    }
    // Everything but the practice list is byte-for-byte the same.
    expect({ ...grown.manifest, tenants: [] }).toEqual({ ...manifest, tenants: [] });
  });
});
