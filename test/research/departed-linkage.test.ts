import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { addBridge, bridgePersons } from '../support/bridge-person.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, editTenants, failuresOf, PUBLISHED_MODELS, type Query, resultsOf, VAULT_NODE, withWarehouse } from '../support/research-fixture.ts';

/**
 * A practice X that leaves research (`research: false`) or the platform (gone from tenants.yml)
 * stops linking other practices' records at the next vault build, whichever practices that run
 * builds, and the research slices of the practices whose persons it linked go until they are
 * built again (red-team, 2026-12-07: a run without X kept A and B as one person; a run of X
 * alone split them in the vault but left A's and B's slices sharing the old token, privacy check
 * passing). The bridge person's records at A and B link only through X. Counts and ids only.
 */

/** Research rows whose person token the vault does not hold at the row's practice. */
const tokensNotInVault = (q: Query) =>
  q(`SELECT count(*) AS n FROM pseudo.pseudo_persons p
      WHERE NOT EXISTS (SELECT 1 FROM vault.person_tokens v WHERE v.practice_id = p.practice_id AND v.person_token = p.person_token)`).then((r) => Number(r[0]!.n));

const vaultRowsOf = (practice: string) => (q: Query) =>
  q(`SELECT (SELECT count(*) FROM vault.person_tokens WHERE practice_id = '${practice}') + (SELECT count(*) FROM vault.linkage_records WHERE tenant = '${practice}')
          + (SELECT count(*) FROM vault.linkage_keys WHERE tenant = '${practice}') AS n`).then((r) => Number(r[0]!.n));

const slicesOf = (practices: string[]) => (q: Query) =>
  q(`SELECT count(*) AS n FROM pseudo.pseudo_persons WHERE practice_id IN ('${practices.join("','")}')`).then((r) => Number(r[0]!.n));

describe('a departed practice links no persons after the next vault build, whatever it builds', () => {
  let demo: DemoCopy;
  let a: string, x: string, b: string, other: string;
  let all: string[];

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(4) });
    all = [...demo.tenantIds].sort();
    [a, x, b, other] = all as [string, string, string, string];
    addBridge(demo.dir, { a, x, b }, true);
    writeFileSync(join(demo.dir, 'tsform.yml'), readFileSync(join(demo.dir, 'tsform.yml'), 'utf8').replace('  k: 11', '  k: 2'));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(1);
  }, 600_000);

  afterAll(() => demo?.remove());

  it('withheld: a run of an unrelated practice forgets X and removes the linked practices\' slices', async () => {
    editTenants(demo.dir, (ts) => ts.map((t) => (t.id === x ? { ...t, research: false } : t)));
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [other] });
    expect(failuresOf(run)).toEqual([]);
    expect(resultsOf(run, VAULT_NODE).flatMap((r) => r.notes ?? [])).toContainEqual(
      expect.stringMatching(/^2 practice\(s\) held persons linked through a practice withheld from research or gone from tenants\.yml: [1-9]\d* row\(s\) of their research slices removed until they are built again$/),
    );
    expect(await withWarehouse(demo.dir, vaultRowsOf(x))).toBe(0);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(2);
    expect(await withWarehouse(demo.dir, slicesOf([a, b]))).toBe(0);
    expect(await withWarehouse(demo.dir, tokensNotInVault)).toBe(0);
    const published = await runWorkspace({ projectDir: demo.dir, command: 'run', select: PUBLISHED_MODELS });
    expect(failuresOf(published)).toEqual([]);
    expect((await cli(['privacy', 'check', '--project-dir', demo.dir])).code).toBe(0);
  }, 600_000);

  it('the linked practices come back with their own persons when built', async () => {
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [a, b] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, slicesOf([a, b]))).toBeGreaterThan(0);
    expect(await withWarehouse(demo.dir, tokensNotInVault)).toBe(0);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(2);
  }, 600_000);

  it('gone from tenants.yml: the same, before any purge', async () => {
    editTenants(demo.dir, (ts) => ts.map((t) => (t.id === x ? { ...t, research: true } : t)));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [x] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(1);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [a, b] }))).toEqual([]);
    editTenants(demo.dir, (ts) => ts.filter((t) => t.id !== x));
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [other] });
    expect(failuresOf(run)).toEqual([]);
    expect(await withWarehouse(demo.dir, vaultRowsOf(x))).toBe(0);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(2);
    expect(await withWarehouse(demo.dir, slicesOf([a, b]))).toBe(0);
    expect(await withWarehouse(demo.dir, tokensNotInVault)).toBe(0);
  }, 600_000);

  it('gone from tenants.yml, then only the research models run (no vault build): the published build removes the linked slices first; privacy check fails until the vault runs', async () => {
    const listed = readFileSync(join(demo.dir, 'tenants.yml'), 'utf8');
    editTenants(demo.dir, (ts) => [...ts, { id: x, name: 'Returning practice', timezone: 'America/New_York' }]);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [x, a, b] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(1);
    writeFileSync(join(demo.dir, 'tenants.yml'), listed);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['pseudo_persons', 'pseudo_encounters', 'pseudo_conditions', ...PUBLISHED_MODELS] });
    expect(failuresOf(run)).toEqual([]);
    expect(run.results.filter((r) => PUBLISHED_MODELS.includes(r.model ?? '')).flatMap((r) => r.notes ?? [])).toContainEqual(
      expect.stringMatching(/^2 practice\(s\) held persons linked through .*removed until they are built again; the vault forgets the departed practices' records at its next build$/),
    );
    expect(await withWarehouse(demo.dir, slicesOf([a, b]))).toBe(0);
    const failing = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(failing.code).toBe(1);
    expect(failing.lines).toContainEqual(expect.stringMatching(/^no longer in tenants\.yml: 1 practice\(s\): FAILED the vault still holds their records/));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [a, b] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(2);
    expect((await cli(['privacy', 'check', '--project-dir', demo.dir])).code).toBe(0);
  }, 600_000);
});
