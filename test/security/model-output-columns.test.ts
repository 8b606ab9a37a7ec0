import { afterAll, describe, expect, it } from 'vitest';
import { deriveOutputColumns } from '../../src/security/model-output-columns.ts';
import { compileDir, MINIMAL_PROJECT, removeTempProjects, REPO_ROOT, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(() => removeTempProjects());

describe('deriveOutputColumns: a model’s output columns from its compiled SQL', () => {
  const dir = writeTempProject({
    ...MINIMAL_PROJECT,
    'seeds/codes.csv': 'code,label\nA,a\n',
    'models/sources.yml': 'sources:\n  - name: ehr\n    tables:\n      - name: visits\n        columns:\n          - { name: practice_id, phi: none }\n',
    'models/base.sql': 'select practice_id, 1 as n from {{source "ehr" "visits"}}\n',
    'models/star_model.sql': 'with b as (select * from {{ref "base"}}) select b.*, c.label from b join {{ref "codes"}} c on true\n',
    'models/star_tenants.sql': 'select t.*, 1 as x from {{ref "tenants"}} t\n',
    'models/star_source.sql': 'select * from {{source "ehr" "visits"}}\n',
    'models/over_opaque.sql': 'select * from {{ref "star_source"}}\n',
    'models/named_over_opaque.sql': 'select practice_id, visit_id as id from {{ref "star_source"}}\n',
  });
  const { project, manifest, diagnostics } = compileDir(dir);

  it('expands * over models, seeds and tenants through CTEs; names survive an opaque input', () => {
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const { known } = deriveOutputColumns(project, manifest);
    expect(known.star_model).toEqual(['practice_id', 'n', 'label']);
    expect(known.star_tenants).toEqual(['practice_id', 'name', 'timezone', 'ready_by', 'pool', 'tags', 'x']);
    expect(known.named_over_opaque).toEqual(['practice_id', 'id']);
  });

  it('leaves * over a source, and over a model that does it, unknown with a reason', () => {
    const { unknown } = deriveOutputColumns(project, manifest);
    expect(Object.keys(unknown).sort()).toEqual(['over_opaque', 'star_source']);
    expect(unknown.star_source).toContain('select * over a relation whose columns are not known for certain');
  });

  it('takes described columns as given, and expands * over them downstream', () => {
    const { known, unknown } = deriveOutputColumns(project, manifest, { star_source: ['practice_id', 'visit_id'] });
    expect(known.star_source).toEqual(['practice_id', 'visit_id']);
    expect(known.over_opaque).toEqual(['practice_id', 'visit_id']);
    expect(unknown).toEqual({});
  });

  it('reports SQL the PostgreSQL grammar cannot read as unknown, without the SQL text', () => {
    const broken = structuredClone(manifest);
    broken.models.base!.compiled_sql = 'select * exclude (secret_col) from x';
    const { unknown } = deriveOutputColumns(project, broken);
    expect(unknown.base).toMatch(/^SQL parse error/);
    expect(unknown.base).not.toContain('secret_col');
  });

  it('derives every model of the demo project', () => {
    const demo = compileDir(REPO_ROOT);
    const { known, unknown } = deriveOutputColumns(demo.project, demo.manifest);
    expect(unknown).toEqual({});
    expect(Object.keys(known).sort()).toEqual(Object.keys(demo.manifest.models).sort());
  });
});
