import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, failuresOf, PSEUDO_MODELS, PUBLISHED_MODELS, resultsOf, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * A practice removed from tenants.yml (offboarded, not yet purged) is never built again, so
 * nothing withdrew its pseudonymized slices, and every published build counted it until `tsform
 * purge`. Now a global research build removes the slices of practices tenants.yml no longer names
 * from the research tables it reads, the vault forgets its records at its next build
 * (departed-linkage.ts), and its reporting data waits for purge. Counts only.
 */

const RELATIONS = [...PSEUDO_MODELS.map((m) => `pseudo.${m}`), 'staging.stg_patients', 'vault.person_tokens'];

async function counts(q: Query): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of RELATIONS) out[r] = Object.fromEntries((await q(`SELECT practice_id AS p, count(*) AS n FROM ${r} GROUP BY 1`)).map((row) => [String(row.p), Number(row.n)]));
  return out;
}

function setTenants(dir: string, keep: (id: string) => boolean, all: readonly Record<string, unknown>[]): void {
  writeFileSync(join(dir, 'tenants.yml'), stringify({ tenants: all.filter((t) => keep(String(t.id))) }));
}

describe('a practice removed from tenants.yml leaves the research layer on the next published build', () => {
  let demo: DemoCopy;
  let all: Record<string, unknown>[];
  let before: Record<string, Record<string, number>>;
  let gone: string;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
    all = (parse(readFileSync(join(demo.dir, 'tenants.yml'), 'utf8')) as { tenants: Record<string, unknown>[] }).tenants;
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    before = await withWarehouse(demo.dir, counts);
    gone = demo.tenantIds.filter((t) => PSEUDO_MODELS.every((m) => (before[`pseudo.${m}`]![t] ?? 0) > 0)).sort()[0]!;
    expect(gone).toBeDefined();
  }, 300_000);
  afterAll(() => demo?.remove());

  it('its pseudonymized rows are removed before the published models are built; its other data waits for purge', async () => {
    setTenants(demo.dir, (id) => id !== gone, all);
    // until then `tsform privacy check` fails and says where (counts and practice ids only)
    const early = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(early.code).toBe(1);
    expect(early.lines.filter((l) => l.startsWith('no longer in tenants.yml'))).toEqual([
      expect.stringMatching(/^no longer in tenants\.yml: 1 practice\(s\): FAILED the vault still holds their records/),
      expect.stringMatching(new RegExp(`^no longer in tenants\\.yml: 1 practice\\(s\\): FAILED rows of theirs remain in pseudo\\.pseudo_conditions \\(\\d+ rows\\).*pseudo\\.pseudo_persons \\(\\d+ rows\\).*tsform purge --tenant ${gone}`)),
    ]);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build', select: PUBLISHED_MODELS });
    expect(failuresOf(run)).toEqual([]);
    const notes = PUBLISHED_MODELS.flatMap((m) => resultsOf(run, m).flatMap((r) => r.notes ?? [])).join('\n');
    expect(notes).toMatch(/1 practice\(s\) no longer in tenants\.yml: \d+ row\(s\) of theirs removed from pseudo\.pseudo_persons before this build/);
    const after = await withWarehouse(demo.dir, counts);
    // The published models read all three. A practice whose persons it linked loses its slices
    // until built again (departed-linkage.ts, with a note); every other practice keeps its rows.
    const linked = /(\d+) practice\(s\) held persons linked through/.exec(notes);
    for (const m of PSEUDO_MODELS) {
      expect(after[`pseudo.${m}`]![gone] ?? 0, m).toBe(0);
      for (const [t, n] of Object.entries(before[`pseudo.${m}`]!)) if (t !== gone) expect([n, ...(linked ? [0] : [])], `${m} ${t}`).toContain(after[`pseudo.${m}`]![t] ?? 0);
    }
    // everything outside research is purge's; the vault forgets its records at its next build
    expect(after['staging.stg_patients']![gone]).toBe(before['staging.stg_patients']![gone]);
    expect(after['vault.person_tokens']![gone]).toBe(before['vault.person_tokens']![gone]);
    const checked = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(checked.lines.filter((l) => l.startsWith('no longer in tenants.yml'))).toEqual([expect.stringMatching(/FAILED the vault still holds their records/)]);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    expect((await withWarehouse(demo.dir, counts))['vault.person_tokens']![gone] ?? 0).toBe(0);
    const clean = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(clean.lines.some((l) => l.startsWith('no longer in tenants.yml'))).toBe(false);
  }, 300_000);

  it('onboarded again, it is built in full: the same rows as before', async () => {
    setTenants(demo.dir, () => true, all);
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    const after = await withWarehouse(demo.dir, counts);
    for (const m of PSEUDO_MODELS) expect(after[`pseudo.${m}`]![gone], m).toBe(before[`pseudo.${m}`]![gone]);
  }, 300_000);
});
