import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compileWorkspace } from '../../src/cli/api.ts';
import { renderPoliciesText } from '../../src/cli/policies.ts';
import { DiagnosticsError } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

function diagnosticsOf(dir: string) {
  try {
    compileWorkspace(dir, { write: false });
    return [];
  } catch (err) {
    if (err instanceof DiagnosticsError) return err.diagnostics;
    throw err;
  }
}

describe('policies/policies.yml', () => {
  let demo: DemoCopy | undefined;
  afterEach(() => demo?.remove());

  it('protects every tenant-scoped relation of raw, staging and marts, and renders no practice id', () => {
    demo = copyDemoProject({ tenants: sampleTenants(10) });
    const ws = compileWorkspace(demo.dir, { write: false });
    const names = ws.protectedRelations.map((r) => r.node);
    expect(names).toEqual(expect.arrayContaining(['source:ehr.patients', 'stg_patients', 'practice_daily_activity', 'practice_patient_roster']));
    expect(names).not.toContain('tenants');
    expect(names).not.toContain('int_encounters_local'); // ephemeral: not a relation
    const ddl = renderPoliciesText(demo.dir);
    // piped to psql, the script reads literals and resolves names as tsform's own sessions do
    expect(ddl.split('\n').slice(0, 4)).toEqual(expect.arrayContaining(['SET standard_conforming_strings = on;', 'SET search_path = pg_catalog, pg_temp;']));
    for (const r of ws.protectedRelations.filter((x) => x.kind === 'table')) {
      expect(ddl).toContain(`ALTER TABLE "${r.schema}"."${r.identifier}" FORCE ROW LEVEL SECURITY;`);
    }
    expect(ddl).toContain('ALTER VIEW "marts"."practice_patient_roster" SET (security_invoker = true);');
    for (const id of demo.tenantIds) expect(ddl).not.toContain(`'${id}'`);
  });

  it('reports a policy on an unknown relation and on a relation without the tenant column, with file and line', () => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
    writeFileSync(
      join(demo.dir, 'policies/policies.yml'),
      ['roles:', '  owner: tsform_owner', 'protect:', '  schemas: [raw, staging, marts]', '  relations: [marts.no_such_table, encounter_classes]', ''].join('\n'),
    );
    const d = diagnosticsOf(demo.dir);
    expect(d.map((x) => x.code).sort()).toEqual(['TSF213', 'TSF214']);
    expect(d.every((x) => x.file === 'policies/policies.yml' && x.line === 5)).toBe(true);
    expect(d.find((x) => x.code === 'TSF213')!.message).toContain('marts.no_such_table');
    expect(d.find((x) => x.code === 'TSF214')!.message).toContain('encounter_classes');
  });

  it('rejects a hostile role name instead of rendering it', () => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
    writeFileSync(join(demo.dir, 'policies/policies.yml'), 'roles:\n  research_reader: "r\\"; DROP TABLE marts.provider_panel; --"\n');
    const d = diagnosticsOf(demo.dir);
    expect(d.map((x) => [x.code, x.file, x.line])).toEqual([['TSF112', 'policies/policies.yml', 2]]);
  });

  it('refuses a practice-readable schema that is not protected', () => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
    writeFileSync(join(demo.dir, 'policies/policies.yml'), 'protect:\n  schemas: [raw, staging]\ngrants:\n  practice_roles: [marts]\n');
    const d = diagnosticsOf(demo.dir);
    expect(d.length).toBeGreaterThan(0);
    expect(d.every((x) => x.code === 'TSF213' && /not protected/.test(x.message))).toBe(true);
  });
});
