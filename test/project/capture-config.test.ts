import { afterAll, describe, expect, it } from 'vitest';
import { buildDag } from '../../src/graph/dag.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { brief, compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(() => removeTempProjects());

describe('sources with capture in yml', () => {
  it('a postgres loader becomes the source\'s capture in the manifest, and one extract node per practice in the plan', () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': `sources:
  - name: ehr
    loader:
      postgres: { schema: oltp, url_env: TSFORM_OLTP_URL, timeout_seconds: 30, chunk_rows: 10000 }
    tables:
      - { name: encounters, key: encounter_id }
      - { name: notes, key: [note_id, version] }
`,
      'models/stg_encounters.sql': 'select * from {{source "ehr" "encounters"}}\n',
    });
    const { manifest, diagnostics } = compileDir(dir);
    expect(diagnostics).toEqual([]);
    expect(manifest.sources['source:ehr.encounters']!.capture).toEqual({
      kind: 'postgres',
      schema: 'oltp',
      table: 'encounters',
      url_env: 'TSFORM_OLTP_URL',
      key: ['encounter_id'],
      updated_at: 'updated_at',
      deleted_at: 'deleted_at',
      timeout_ms: 30_000,
      chunk_rows: 10_000,
    });
    expect(manifest.sources['source:ehr.notes']!.capture).toMatchObject({ key: ['note_id', 'version'] });
    const dag = buildDag(manifest).dag!;
    const plan = buildPlan(manifest, dag, { command: 'run', selected: new Set(dag.order), tenants: [{ id: 'acme', name: 'a', timezone: 'UTC', readyBy: '06:00', tags: [], pool: 'steady', research: true, file: 'tenants.yml' }], allTenantCount: 1, batchSize: 50, fullRefresh: false });
    const step = plan.steps.find((s) => s.id === 'source:ehr.encounters')!;
    expect(step).toMatchObject({ build: true, fanOut: true, singleTenant: true });
    expect(plan.steps.find((s) => s.id === 'stg_encounters')!.upstream).toEqual(['source:ehr.encounters']);
  });

  it('every loader mistake is a diagnostic with its file, line and code, all reported together', () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': `sources:
  - name: ehr
    loader:
      postgres:
        url: postgres://someone:secret@db/oltp
        url_env: TSFORM_OLTP_URL
    tables:
      - name: encounters
  - name: files
    loader:
      csv_landing:
        path: ../outside
        layout: by_month
    tables:
      - { name: visits, key: visit_id }
  - name: both
    loader:
      csv: data/x.csv
      postgres: { url_env: X }
    tables:
      - { name: t, key: id }
  - name: nowhere
    loader:
      postgres: { schema: oltp }
    tables:
      - { name: u, key: id }
  - name: reference
    scope: shared
    loader:
      csv_landing: { path: landing/ref }
    tables:
      - { name: codes }
`,
    });
    const { diagnostics } = compileDir(dir);
    expect(brief(diagnostics)).toEqual([
      { code: 'TSF205', file: 'models/sources.yml', line: 5 },
      { code: 'TSF205', file: 'models/sources.yml', line: 8 },
      { code: 'TSF205', file: 'models/sources.yml', line: 12 },
      { code: 'TSF205', file: 'models/sources.yml', line: 13 },
      { code: 'TSF205', file: 'models/sources.yml', line: 19 },
      { code: 'TSF102', file: 'models/sources.yml', line: 24 },
      { code: 'TSF205', file: 'models/sources.yml', line: 30 },
    ]);
    const text = diagnostics.map((d) => d.message).join('\n');
    expect(text).toContain('never put a connection URL in a file');
    expect(text).not.toContain('secret');
    expect(text).toContain("a captured table needs 'key:'");
    expect(text).toContain('one loader per source, not csv and postgres');
    expect(text).toContain("missing required key 'url_env'");
    expect(text).toContain('the source\'s scope must be tenant');
  });
});
