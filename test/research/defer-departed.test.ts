import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { editTenants, failuresOf, fingerprintRows, PUBLISHED_MODELS, withWarehouse } from '../support/research-fixture.ts';

/**
 * `--defer` against a production state published before a practice left research: its
 * pseudonymized slices still hold the practice's rows (and the persons it linked), and a deferred
 * published build counted it again, recorded as clean (red-team, 2026-12-07). Refused by the
 * state's manifest, and by its rows when the database is older than the manifest. Ids and counts only.
 */

function publishState(dir: string, name: string): string {
  const state = join(dir, name);
  mkdirSync(state);
  cpSync(join(dir, 'target/manifest.json'), join(state, 'manifest.json'));
  cpSync(join(dir, 'target/tsform.duckdb'), join(state, 'tsform.duckdb'));
  return state;
}

const published = (dir: string) => withWarehouse(dir, async (q) => Promise.all(PUBLISHED_MODELS.map((m) => fingerprintRows(q, `research.${m}`))));

describe('--defer does not read research data from before a practice left research', () => {
  let demo: DemoCopy;
  let x: string;
  let before: string;
  let after: string;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
    x = [...demo.tenantIds].sort()[0]!;
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    before = publishState(demo.dir, 'prod-before');
    editTenants(demo.dir, (ts) => ts.map((t) => (t.id === x ? { ...t, research: false } : t)));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    after = publishState(demo.dir, 'prod-after');
  }, 600_000);

  afterAll(() => demo?.remove());

  const deferred = (state: string, extra: { deferDatabase?: string } = {}) =>
    runWorkspace({ projectDir: demo.dir, command: 'run', select: PUBLISHED_MODELS, state, defer: true, ...extra });

  async function refused(run: Promise<unknown>, evidence: RegExp): Promise<void> {
    const err = await run.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.privacyGate);
    expect((err as TsformError).message).toMatch(evidence);
    expect((err as TsformError).message).toContain(x);
  }

  it('a state compiled while the practice was in research: refused, nothing written', async () => {
    const clean = await published(demo.dir);
    await refused(deferred(before), /^--defer would read research data from production \(pseudo_\w+.*\), whose manifest was compiled with practice\(s\) /);
    expect(await published(demo.dir)).toEqual(clean);
  }, 600_000);

  it('a newer manifest beside an older database (--defer-database): refused by the rows', async () => {
    const clean = await published(demo.dir);
    await refused(deferred(after, { deferDatabase: join(before, 'tsform.duckdb') }), /whose database holds rows of practice\(s\) /);
    expect(await published(demo.dir)).toEqual(clean);
  }, 600_000);

  it('a state from after the withdrawal is read as before', async () => {
    const run = await deferred(after);
    expect(failuresOf(run)).toEqual([]);
  }, 600_000);

  it('a practice gone from tenants.yml since the state: refused', async () => {
    editTenants(demo.dir, (ts) => ts.filter((t) => t.id !== x));
    await refused(deferred(before), /whose manifest was compiled with/);
  }, 600_000);
});
