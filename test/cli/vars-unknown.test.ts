import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { cli } from '../support/cli.ts';

/**
 * Red-team, 2026-12-08: tsform.yml `vars: {min_visits: 0}` and `tsform run --vars '{min_visit: 5}'`
 * ran with min_visits at 0 and exit code 0. A --vars name that tsform.yml does not declare and no
 * `{{var}}` of the project reads is TSF206 with the closest name, before anything runs.
 */
afterAll(removeTempProjects);

const project = () =>
  writeTempProject({
    ...MINIMAL_PROJECT,
    'tsform.yml': 'name: generated\nvars:\n  min_visits: 0\n',
    // `cap` is declared nowhere but read with a default; `band` is read by a macro only.
    'macros/banded.hbs': '{{var "band" 1}}\n',
    'models/m.sql': 'select practice_id, {{var "min_visits"}} as min_visits, {{var "cap" 10}} as cap, {{banded}} as band\nfrom {{ref "tenants"}}\n',
  });

describe('--vars names a var the project knows', () => {
  it('run --vars with a misspelt name is TSF206 with did-you-mean, and nothing runs', async () => {
    const dir = project();
    const r = await cli('run', '--project-dir', dir, '--vars', '{min_visit: 5}');
    expect(r.code).toBe(2);
    expect(r.err).toContain("TSF206: --vars sets 'min_visit', which tsform.yml vars does not declare and no {{var}} of the project reads (did you mean 'min_visits'?)");
    expect(r.out.join('\n')).not.toContain('"event":"node"');
    expect(existsSync(join(dir, 'target/tsform.duckdb'))).toBe(false);
  });

  it('compile --vars: a declared var, one read with a default and one read by a macro are accepted', async () => {
    const dir = project();
    const r = await cli('compile', '--project-dir', dir, '--vars', '{min_visits: 5, cap: 3, band: 7}');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'target/compiled/m.sql'), 'utf8')).toMatch(/5 as min_visits, 3 as cap, 7\s*as band/);
  });
});
