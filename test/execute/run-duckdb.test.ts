import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { referencePracticeDailyActivity, referenceProviderPanel } from '../reference/demo-marts.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

const MARTS = ['practice_daily_activity', 'provider_panel', 'practice_claims_outstanding', 'practice_chronic_panel'];

async function withDb<T>(dir: string, fn: (db: DuckDBAdapter) => Promise<T>): Promise<T> {
  const db = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Per-practice row count and an order-independent checksum of the rows. */
async function checksums(db: DuckDBAdapter, table: string): Promise<Map<string, string>> {
  const { rows } = await db.query(`SELECT practice_id, count(*) AS n, sum(hash(t)) AS h FROM marts.${table} t GROUP BY 1`);
  return new Map(rows.map((r) => [String(r.practice_id), `${r.n}:${r.h}`]));
}

describe('the demo project on DuckDB, every practice', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject();
  });
  afterAll(() => demo.remove());

  it('builds every model for every practice and matches an independent computation from the CSVs', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    const failures = run.results.filter((r) => r.status !== 'success');
    expect(failures.map((f) => `${f.node}: ${f.message}`)).toEqual([]);
    expect(Object.keys(run.tenants)).toHaveLength(221);
    const run_results = readRunResults(join(demo.dir, 'target/run_results.json'));
    expect(run_results.results.length).toBe(run.results.length);

    await withDb(demo.dir, async (db) => {
      const activity = await db.query(
        `SELECT practice_id, CAST(activity_date AS VARCHAR) AS activity_date, encounter_class, encounters, distinct_patients,
                CAST(total_claim_cost AS VARCHAR) AS total_claim_cost
           FROM marts.practice_daily_activity ORDER BY practice_id, activity_date, encounter_class`,
      );
      const expected = await referencePracticeDailyActivity();
      expect(activity.rows.length).toBe(expected.length);
      expect(activity.rows).toEqual(expected);

      const panel = await db.query(`SELECT practice_id, provider_id, active_patients_12m FROM marts.provider_panel ORDER BY practice_id, provider_id`);
      expect(panel.rows).toEqual(await referenceProviderPanel());
    });
  });

  it('run --tenant rebuilds that practice only and leaves every other practice untouched', async () => {
    const target = 'p_79a06fd69f';
    const other = 'p_41e2a44c47';
    // the warehouse of every practice: the first case's build, or (this case alone) one of its own
    if (!existsSync(join(demo.dir, 'target/tsform.duckdb'))) {
      const built = await runWorkspace({ projectDir: demo.dir, command: 'build' });
      expect(built.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    }
    const before = await withDb(demo.dir, async (db) => {
      // A stray row in each of two practices' slices: the run must remove only the target's.
      await db.query(`INSERT INTO marts.provider_panel VALUES ($1, 'stray', 99), ($2, 'stray', 99)`, [target, other]);
      return Object.fromEntries(await Promise.all(MARTS.map(async (m) => [m, await checksums(db, m)] as const)));
    });
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', tenants: [target] });
    expect(new Set(run.results.map((r) => r.tenant))).toEqual(new Set([target, null]));
    expect(run.results.every((r) => r.status === 'success')).toBe(true);
    await withDb(demo.dir, async (db) => {
      for (const m of MARTS) {
        const after = await checksums(db, m);
        for (const [practice, sum] of before[m]!) {
          if (practice !== target) expect(after.get(practice), `${m} ${practice}`).toBe(sum);
        }
      }
      const stray = await db.query(`SELECT practice_id FROM marts.provider_panel WHERE provider_id = 'stray' ORDER BY 1`);
      expect(stray.rows.map((r) => r.practice_id)).toEqual([other]);
    });
  });
});

describe('failures stay inside their practice', () => {
  let demo: DemoCopy;
  const broken = 'p_00ffb20407';
  let brokenLine = 0;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(60) });
    // One practice's extract carries a value that cannot be cast: its batch fails, is split,
    // and only that practice fails.
    const path = join(demo.dir, 'data/ehr/encounters.csv.gz');
    const lines = gunzipSync(readFileSync(path)).toString('utf8').split('\n');
    const header = lines[0]!.split(',');
    const costIdx = header.indexOf('total_claim_cost');
    const i = lines.findIndex((l) => l.startsWith(`${broken},`));
    brokenLine = i + 1;
    const cells = lines[i]!.split(',');
    cells[costIdx] = 'Walker122';
    lines[i] = cells.join(',');
    writeFileSync(path, gzipSync(lines.join('\n')));
  });
  afterAll(() => demo.remove());

  it('fails that practice, skips its downstream, and every other practice succeeds', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run' });
    const errors = run.results.filter((r) => r.status === 'error');
    expect(errors.map((e) => e.node)).toEqual([`source:ehr.encounters@${broken}`]);
    // a value its type cannot hold: the extract's file, line (1-based, after the header) and column
    expect(errors[0]!.code).toBe('TSF422');
    expect(errors[0]!.message).toContain(`data/ehr/encounters.csv.gz:${brokenLine}: column 'total_claim_cost' holds a value that is not a valid DECIMAL(18,2)`);
    // The offending value is never echoed (it could be PHI).
    expect(errors[0]!.message, errors[0]!.message!).not.toContain('Walker122');
    const skipped = run.results.filter((r) => r.status === 'skipped');
    expect(new Set(skipped.map((s) => s.tenant))).toEqual(new Set([broken]));
    expect(skipped.map((s) => s.model)).toEqual(expect.arrayContaining(['stg_encounters', 'practice_daily_activity', 'provider_panel']));
    expect(skipped.map((s) => s.model)).not.toContain('stg_claims');
    const others = Object.entries(run.tenants).filter(([t]) => t !== broken);
    expect(others.every(([, s]) => s.status === 'success')).toBe(true);
    expect(run.tenants[broken]!.status).toBe('error');
  });
});

describe('the runner enforces the practice boundary', () => {
  let demo: DemoCopy;
  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(8) });
    await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'] });
  });
  afterAll(() => demo.remove());

  it('refuses rows of practices that were not bound, and leaves the table as it was', async () => {
    // Reading the table by its schema-qualified name would bypass ref(): compile refuses it.
    writeFileSync(join(demo.dir, 'models/marts/leaky_mart.sql'), 'select practice_id, encounter_id from "staging"."stg_encounters"\n');
    await expect(runWorkspace({ projectDir: demo.dir, command: 'run', select: ['leaky_mart'], tenants: ['p_79a06fd69f'] })).rejects.toMatchObject({
      diagnostics: [expect.objectContaining({ code: 'TSF222', file: 'models/marts/leaky_mart.sql' })],
    });
    // A practice id computed over a practice's rows is refused at compile (TSF231).
    const other = demo.tenantIds.find((t) => t !== 'p_79a06fd69f')!;
    writeFileSync(join(demo.dir, 'models/marts/leaky_mart.sql'), `select '${other}' as practice_id, e.encounter_id from {{ref "stg_encounters"}} e\n`);
    await expect(runWorkspace({ projectDir: demo.dir, command: 'run', select: ['leaky_mart'], tenants: ['p_79a06fd69f'] })).rejects.toMatchObject({
      diagnostics: [expect.objectContaining({ code: 'TSF231', file: 'models/marts/leaky_mart.sql' })],
    });
    // One that reads no practice's rows passes every compile check and can still write another
    // practice's id: the runner's checkpoint refuses the rows.
    writeFileSync(join(demo.dir, 'models/marts/leaky_mart.sql'), `select '${other}' as practice_id, 1 as visits\n`);
    const first = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['leaky_mart'], tenants: ['p_79a06fd69f'] });
    expect(first.results.map((r) => [r.status, r.code])).toEqual([['error', 'TSF402']]);
    expect(first.results[0]!.message).toMatch(/not bound/);
    await withDb(demo.dir, async (db) => {
      expect(await db.describe('marts', 'leaky_mart')).toBeUndefined();
    });
    rmSync(join(demo.dir, 'models/marts/leaky_mart.sql'));
  });

  it('a model with a SQL error fails with its file and the database message; unrelated models succeed', async () => {
    writeFileSync(join(demo.dir, 'models/marts/broken_mart.sql'), 'select practice_id, count(*) as n from {{ref "stg_encounters"}} group by practice_id, no_such_column\n');
    writeFileSync(join(demo.dir, 'models/marts/after_broken.sql'), 'select * from {{ref "broken_mart"}}\n');
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['broken_mart+', '+stg_providers'] });
    const errors = run.results.filter((r) => r.status === 'error');
    expect(errors.map((e) => e.node).sort()).toEqual(demo.tenantIds.map((t) => `broken_mart@${t}`).sort());
    expect(errors.every((e) => e.model === 'broken_mart' && e.message!.startsWith('models/marts/broken_mart.sql:'))).toBe(true);
    expect(errors[0]!.message).toMatch(/no_such_column/);
    expect(run.results.filter((r) => r.model === 'after_broken').every((r) => r.status === 'skipped')).toBe(true);
    expect(run.results.filter((r) => r.model === 'stg_providers').every((r) => r.status === 'success')).toBe(true);
  });
});

describe('incremental models', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(5) });
  });
  afterAll(() => demo.remove());

  it('merge changed rows per practice and equal a full refresh', async () => {
    await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'] });
    // Change one encounter of one practice at the source, newer than its high-water mark.
    const path = join(demo.dir, 'data/ehr/encounters.csv.gz');
    const lines = gunzipSync(readFileSync(path)).toString('utf8').split('\n');
    const header = lines[0]!.split(',');
    const i = lines.findIndex((l) => l.startsWith('p_79a06fd69f,'));
    const cells = lines[i]!.split(',');
    cells[header.indexOf('encounter_class')] = 'virtual';
    cells[header.indexOf('updated_at')] = '2030-01-01T00:00:00Z';
    const changedId = cells[header.indexOf('encounter_id')]!;
    lines[i] = cells.join(',');
    writeFileSync(path, gzipSync(lines.join('\n')));

    const inc = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'] });
    const step = inc.results.find((r) => r.node === 'stg_encounters@p_79a06fd69f')!;
    expect(step.status).toBe('success');
    expect(step.rows).toBe(1); // only the changed row was staged
    const incremental = await withDb(demo.dir, (db) => db.query('SELECT * FROM staging.stg_encounters ORDER BY encounter_id'));
    expect(incremental.rows.find((r) => r.encounter_id === changedId)!.encounter_class).toBe('virtual');

    await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'], fullRefresh: true });
    const full = await withDb(demo.dir, (db) => db.query('SELECT * FROM staging.stg_encounters ORDER BY encounter_id'));
    expect(incremental.rows).toEqual(full.rows);
  });
});
