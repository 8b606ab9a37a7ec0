import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compileWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/rls-fixture.ts';

/** What needs no PostgreSQL: DuckDB refuses to apply, render is plain text, hostile names stop at load. */
describe('policies without a PostgreSQL server', () => {
  let demo: DemoCopy | undefined;
  afterEach(() => demo?.remove());

  it('apply and verify on DuckDB exit 2 and point to --target postgres', async () => {
    demo = copyDemoProject();
    for (const command of ['apply', 'verify']) {
      const run = await cli(['policies', command, '--project-dir', demo.dir]);
      expect(run.code, command).toBe(2);
      expect(run.stderr, command).toContain('TSF408');
      expect(run.stderr, command).toContain('--target postgres');
    }
  });

  it('render protects every relation (FORCE for tables, security_invoker for views) and holds no practice id', async () => {
    demo = copyDemoProject();
    const run = await cli(['policies', 'render', '--project-dir', demo.dir]);
    expect(run.code, run.stderr).toBe(0);
    const ws = compileWorkspace(demo.dir, { write: false });
    expect(ws.protectedRelations.length).toBe(22); // 7 raw, 7 staging, 5 marts, 3 pseudo
    for (const r of ws.protectedRelations) {
      const rel = `${quoteIdent(r.schema)}.${quoteIdent(r.identifier)}`;
      if (r.kind === 'table') {
        expect(run.stdout).toContain(`ALTER TABLE ${rel} ENABLE ROW LEVEL SECURITY;`);
        expect(run.stdout).toContain(`ALTER TABLE ${rel} FORCE ROW LEVEL SECURITY;`);
        // one-practice roles compare with a scalar, group roles with an array; nobody else matches
        expect(run.stdout).toContain(
          `CREATE POLICY tsform_practice_isolation ON ${rel} AS PERMISSIVE FOR ALL TO "tsform_practices"\n  USING ("practice_id" = (SELECT m."practice_id" FROM "tsform_security"."members" m WHERE m.role_name = current_user))`,
        );
        expect(run.stdout).toContain(
          `CREATE POLICY tsform_group_isolation ON ${rel} AS PERMISSIVE FOR ALL TO "tsform_practice_groups"\n  USING ("practice_id" = ANY (ARRAY(SELECT m."practice_id" FROM "tsform_security"."members" m WHERE m.role_name = current_user)))`,
        );
      } else {
        expect(run.stdout).toContain(`ALTER VIEW ${rel} SET (security_invoker = true);`);
      }
    }
    // Practice ids appear only inside the practice role names (practice_{tenant}); memberships
    // are bound parameters at apply, so no id is a value anywhere in the DDL.
    expect(demo.tenantIds.length).toBeGreaterThan(200);
    const withoutRoleNames = demo.tenantIds.reduce((text, id) => text.replaceAll(quoteIdent(`practice_${id}`), '"practice_…"'), run.stdout);
    for (const id of demo.tenantIds) expect(withoutRoleNames.includes(id), id).toBe(false);
    const policyDdl = run.stdout.slice(run.stdout.indexOf('-- security schema and membership table'));
    for (const id of demo.tenantIds) expect(policyDdl.includes(id), id).toBe(false);
  });

  it('a group role that is also a practice role is a compile error; a group naming an unknown practice warns', async () => {
    demo = copyDemoProject();
    const [first, second] = demo.tenantIds;
    const policies = (groups: string[]) => ['practice_roles:', '  groups:', ...groups, ''].join('\n');
    writeFileSync(join(demo.dir, 'policies/policies.yml'), policies([`    - role: practice_${first}`, `      practices: [${first}, ${second}]`]));
    const clash = await cli(['policies', 'render', '--project-dir', demo.dir]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(new RegExp(`policies/policies\\.yml:3: error TSF116: group role 'practice_${first}' is also a practice role`));

    writeFileSync(join(demo.dir, 'policies/policies.yml'), policies(['    - role: tsform_practices', `      practices: [${first}]`, '    - role: north', `      practices: [${first}, p_gone]`]));
    const fixed = await cli(['policies', 'render', '--project-dir', demo.dir]);
    expect(fixed.code).toBe(2);
    expect(fixed.stderr).toContain("error TSF116: group role 'tsform_practices' is also one of roles:");

    writeFileSync(join(demo.dir, 'policies/policies.yml'), policies(['    - role: north', `      practices: [${first}, p_gone]`]));
    const ws = compileWorkspace(demo.dir, { write: false });
    expect(ws.diagnostics.filter((d) => d.severity === 'warning').map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`)).toEqual([
      "policies/policies.yml:3 TSF302 group role 'north' names 1 practice(s) not in tenants.yml (left out of the group): p_gone",
    ]);
  });

  it('a hostile group role name in policies.yml is a load error (TSF112, exit 2), never SQL', async () => {
    demo = copyDemoProject();
    const hostile = 'bad"; DROP TABLE marts.provider_panel; --';
    writeFileSync(
      join(demo.dir, 'policies/policies.yml'),
      ['practice_roles:', '  groups:', `    - role: '${hostile}'`, '      practices: [p_79a06fd69f]', ''].join('\n'),
    );
    for (const args of [['policies', 'apply', '--target', 'postgres'], ['policies', 'render'], ['policies', 'verify', '--target', 'postgres']]) {
      const run = await cli([...args, '--project-dir', demo.dir], { TSFORM_PG_URL: 'postgres://nobody@127.0.0.1:1/none' });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/policies\/policies\.yml:3(:\d+)?: error TSF112: role name/);
      expect(run.stdout).not.toContain('DROP TABLE');
    }
  });
});
