import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { addBridge, addBridgeConditions, bridgePersons } from '../support/bridge-person.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { editTenants, failuresOf, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * Linkage moves a record of practice A to another person token in a batch that does not build A
 * (here: the practice that linked it comes back to research and is built alone). A's incremental
 * research slice was merged into on its next build: the rows under the old token stayed beside the
 * new ones, the person counted twice under two date shifts, and privacy check passed (red-team,
 * 2026-12-07). Now a practice whose records moved token has its incremental slices (and the global
 * incremental models over them) built in full next time. Counts only.
 */

// Every column is the key, over distinct rows: a diagnosis recorded twice in a month is one row
// twice, and an incremental unique_key must be a key of the rows (TSF423).
const INCREMENTAL_CONDITIONS = `{{config materialized="incremental" unique_key="person_token,condition_code,condition_description,onset_month,is_active" batch_incremental=true}}
${readFileSync(join(REPO_ROOT, 'models/research/pseudo_conditions.sql'), 'utf8').replace(/^select$/m, 'select distinct')}
{{#if is_incremental}}
where not exists (select 1 from {{this}} t where t.practice_id = c.practice_id and t.person_token = v.person_token)
{{/if}}
`;

const setResearch = (dir: string, id: string, research: boolean) => editTenants(dir, (ts) => ts.map((t) => (t.id === id ? { ...t, research } : t)));

/** Rows of the incremental research slice whose person token the vault does not hold at the row's practice. */
const staleRows = (q: Query) =>
  q(`SELECT count(*) AS n FROM pseudo.pseudo_conditions p
      WHERE NOT EXISTS (SELECT 1 FROM vault.person_tokens v WHERE v.practice_id = p.practice_id AND v.person_token = p.person_token)`).then((r) => Number(r[0]!.n));

describe('an incremental research slice of a practice whose records linkage moved to another token', () => {
  let demo: DemoCopy;
  let a: string, x: string, b: string;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(3), files: { 'models/research/pseudo_conditions.sql': INCREMENTAL_CONDITIONS } });
    [a, x, b] = [...demo.tenantIds].sort() as [string, string, string];
    addBridge(demo.dir, { a, x, b }, true);
    addBridgeConditions(demo.dir, { a, x, b });
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    setResearch(demo.dir, x, false);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [a, b] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(2);
  }, 600_000);
  afterAll(() => demo?.remove());

  it('is built in full on its next build: no row keeps the token the vault moved it from', async () => {
    setResearch(demo.dir, x, true);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [x] }))).toEqual([]);
    expect(await withWarehouse(demo.dir, bridgePersons)).toBe(1);
    // Until A and B are built, their slices hold the tokens of before: stale, not doubled.
    const before = await withWarehouse(demo.dir, staleRows);
    expect(before).toBeGreaterThan(0);
    const rebuilt = await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [a, b] });
    expect(failuresOf(rebuilt)).toEqual([]);
    expect(rebuilt.results.filter((r) => r.model === 'pseudo_conditions').flatMap((r) => r.notes ?? []).join('\n')).toMatch(/rebuilt in full/);
    expect(await withWarehouse(demo.dir, staleRows)).toBe(0);
  }, 600_000);
});
