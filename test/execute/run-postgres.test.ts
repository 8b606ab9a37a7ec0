import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/** Every mart and staging table, compared row by row between the two targets. */
const RELATIONS = [
  'marts.practice_daily_activity',
  'marts.provider_panel',
  'marts.practice_claims_outstanding',
  'marts.practice_chronic_panel',
  'marts.practice_patient_roster',
  'staging.stg_encounters',
  'staging.stg_claims',
];

async function rowsOf(db: Adapter, relation: string): Promise<string[]> {
  const { rows } = await db.query(`SELECT * FROM ${relation}`);
  // Text form of each row with numbers normalised, sorted: an order-free, exact comparison.
  return rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, normalise(v)]))).sort();
}

function normalise(v: unknown): unknown {
  if (typeof v === 'string' && /^-?\d+\.\d+$/.test(v)) return Number(v).toFixed(2);
  if (typeof v === 'number' && !Number.isInteger(v)) return v.toFixed(6);
  return v;
}

describe('the demo project on PostgreSQL', () => {
  let pgServer: ThrowawayPostgres;
  let demo: DemoCopy;
  beforeAll(async () => {
    pgServer = await startThrowawayPostgres();
    demo = copyDemoProject({ tenants: sampleTenants(40) });
  });
  afterAll(async () => {
    demo?.remove();
    await pgServer?.stop();
  });

  it('builds every model for every practice and produces exactly the DuckDB rows', async () => {
    process.env.TSFORM_PG_URL = pgServer.url;
    try {
      const onPg = await runWorkspace({ projectDir: demo.dir, command: 'build', target: 'postgres' });
      expect(onPg.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.message}`)).toEqual([]);
    } finally {
      delete process.env.TSFORM_PG_URL;
    }
    const onDuck = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(onDuck.results.filter((r) => r.status !== 'success')).toEqual([]);

    const duck = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    const pg = await createPostgresAdapter({ url: pgServer.url, poolSize: 2 });
    try {
      for (const rel of RELATIONS) {
        const [a, b] = [await rowsOf(duck, rel), await rowsOf(pg, rel)];
        expect(a.length, rel).toBeGreaterThan(0);
        expect(b, rel).toEqual(a);
      }
    } finally {
      await duck.close();
      await pg.close();
    }
  });
});

describe('two tsform runs at once on PostgreSQL', () => {
  let pgServer: ThrowawayPostgres;
  let demo: DemoCopy;
  beforeAll(async () => {
    pgServer = await startThrowawayPostgres();
    demo = copyDemoProject({ tenants: sampleTenants(4) });
  });
  afterAll(async () => {
    demo?.remove();
    await pgServer?.stop();
  });

  it('never write one practice at once: a run waits for the process holding a practice and names it', async () => {
    process.env.TSFORM_PG_URL = pgServer.url;
    // Another "tsform process": a second adapter holding one practice's lock.
    const other = await createPostgresAdapter({ url: pgServer.url, poolSize: 1, applicationName: 'tsform' });
    try {
      const lock = await other.tryLockTenants(['p_41e2a44c47']);
      expect(lock.held).toEqual([]);
      // What happened, in order: the run must report its wait, and write nothing before the release.
      const events: string[] = [];
      let waiting!: () => void;
      const waited = new Promise<void>((resolve) => (waiting = resolve));
      const running = runWorkspace({
        projectDir: demo.dir,
        command: 'run',
        target: 'postgres',
        tenants: ['p_79a06fd69f', 'p_41e2a44c47'],
        select: ['+stg_providers'],
        onLockWait: (holder) => {
          events.push(`wait: ${holder}`);
          waiting();
        },
        onTaskEnd: (step) => events.push(`task ${step.id}`),
      });
      // the run is now blocked on the lock (it said so); only then does the other process let go
      const first = await Promise.race([waited.then(() => 'waiting'), running.then(() => 'ended', () => 'ended')]);
      expect(first, 'the run ended without waiting for the lock').toBe('waiting');
      events.push('released');
      await lock.release();
      const run = await running;
      expect(run.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
      expect(events[0]).toMatch(/^wait: practice p_41e2a44c47 and 0 more held by tsform pid \d+ /);
      expect(events[1]).toBe('released');
      // every node ran after the release, and some did
      expect(events.slice(2).every((e) => e.startsWith('task '))).toBe(true);
      expect(events.length).toBeGreaterThan(2);
    } finally {
      await other.close();
      delete process.env.TSFORM_PG_URL;
    }
  });
});
