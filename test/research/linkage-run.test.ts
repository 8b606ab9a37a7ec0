import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, failuresOf, fingerprintRows, PSEUDO_MODELS, resultsOf, VAULT_NODE, withWarehouse } from '../support/research-fixture.ts';

/**
 * Linkage through a whole run of the demo project (issue 17): the vault's notices are counts; a
 * change of the linkage settings is TSF421 for every practice, nothing re-tokenized, research
 * skipped, until `tsform vault retokenize`; then the same tokens come back.
 */

const tokenMap = (dir: string) => withWarehouse(dir, (q) => fingerprintRows(q, 'vault.person_tokens'));

describe('linkage settings through a run', () => {
  let demo: DemoCopy;
  let before: string;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(4) });
    const first = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(first)).toEqual([]);
    const notes = resultsOf(first, VAULT_NODE).flatMap((r) => r.notes ?? []);
    expect(notes.length).toBeGreaterThan(0);
    // counts only: every number-bearing note is one of the linkage forms
    for (const n of notes) expect(n).toMatch(/^linkage: (\d+ record\(s\) resolved into \d+ person\(s\); \d+ re-keyed|no identity of these practices changed)/);
    before = await tokenMap(demo.dir);
  }, 300_000);

  afterAll(() => demo?.remove());

  it('a changed privacy.identity setting is TSF421 for every practice; research is skipped there; the token map is untouched', async () => {
    const file = join(demo.dir, 'tsform.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('birth_date_tolerance: one_digit', 'birth_date_tolerance: exact'));
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    const vault = resultsOf(run, VAULT_NODE);
    expect(new Set(vault.map((r) => r.tenant))).toEqual(new Set(demo.tenantIds));
    expect(vault.filter((r) => r.status !== 'error' || r.code !== 'TSF421').map((r) => `${r.tenant}: ${r.status} ${r.code}`)).toEqual([]);
    for (const r of vault) expect(r.message ?? '').toMatch(/tsform vault retokenize/);
    for (const m of PSEUDO_MODELS) expect(resultsOf(run, m).every((r) => r.status === 'skipped' && r.code === 'TSF405'), m).toBe(true);
    expect(await tokenMap(demo.dir)).toBe(before);
  }, 300_000);

  it('after `tsform vault retokenize` the build passes and every record keeps its token', async () => {
    const { code, lines } = await cli(['vault', 'retokenize', '--project-dir', demo.dir]);
    expect(code).toBe(0);
    expect(lines.join('\n')).toMatch(/match keys of \d+ record\(s\) forgotten; person tokens kept/);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(run)).toEqual([]);
    expect(await tokenMap(demo.dir)).toBe(before);
  }, 300_000);
});
