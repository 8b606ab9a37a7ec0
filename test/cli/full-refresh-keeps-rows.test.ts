import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, SqlParam } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { NodeResult } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import type { RunRequest } from '../../src/cli/run-request.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * `run --full-refresh` over every practice used to drop each per-practice table first: a practice
 * whose rebuild then failed, or never ran (an interrupted run), had no rows until a later run
 * succeeded. Now each practice keeps its previous rows until its own rebuild commits, while what
 * a full refresh means stays: incremental models are rebuilt from scratch (a planted stale row
 * goes), rows of a practice that left tenants.yml go, a changed column list is applied, and on
 * PostgreSQL the recreated table keeps its row-level security.
 *
 * `refresh_probe` fails, by a cast of an encounter id, only for the practice named in its var.
 * Rows are compared as counts and digests of their keys, never printed.
 */

const PROBE = (extra: string) => `select
  e.practice_id,
  e.encounter_id,
  {{var "probe_generation" 1}} as generation,
  cast(case when e.practice_id = {{var "probe_fail_practice" "none"}} then e.encounter_id else '1' end as integer) as one${extra}
from {{ref "stg_encounters"}} e
`;

type Slices = Record<string, { n: number; digest: string; generations: string[]; extraNulls?: number }>;

interface EngineUnderTest {
  name: string;
  request: () => Pick<RunRequest, 'target' | 'env'>;
  open: () => Promise<Adapter>;
}

let server: ThrowawayPostgres | undefined;
let pgUrl = '';
afterAll(async () => server?.stop());

const demoDirs: Record<string, string> = {};
const engines: EngineUnderTest[] = [
  { name: 'duckdb', request: () => ({}), open: () => DuckDBAdapter.open({ path: join(demoDirs.duckdb!, 'target/tsform.duckdb'), connections: 1 }) },
  {
    name: 'postgres',
    request: () => ({ target: 'postgres', env: { ...process.env, TSFORM_PG_URL: pgUrl } }),
    open: () => createPostgresAdapter({ url: pgUrl, poolSize: 1 }),
  },
];

describe.each(engines)('--full-refresh over every practice keeps rows until rebuilt ($name)', (engine) => {
  let demo: DemoCopy;
  let a: string;
  let b: string;
  let c: string;

  async function sql(text: string, params: SqlParam[] = []): Promise<Record<string, unknown>[]> {
    const db = await engine.open();
    try {
      return (await db.query(text, params)).rows;
    } finally {
      await db.close();
    }
  }

  async function slices(rel: string, key: string, extra = false): Promise<Slices> {
    const rows = await sql(`SELECT practice_id, ${key} AS k, ${rel.endsWith('refresh_probe') ? 'generation' : 'NULL'} AS g${extra ? ', extra' : ''} FROM ${rel}`);
    const out: Slices = {};
    const keys: Record<string, string[]> = {};
    for (const r of rows) {
      const t = String(r.practice_id);
      (keys[t] ??= []).push(String(r.k));
      const s = (out[t] ??= { n: 0, digest: '', generations: [] });
      s.n++;
      if (!s.generations.includes(String(r.g))) s.generations.push(String(r.g));
      if (extra && r.extra === null) s.extraNulls = (s.extraNulls ?? 0) + 1;
    }
    for (const [t, k] of Object.entries(keys)) out[t]!.digest = createHash('sha256').update(k.sort().join('\n')).digest('hex').slice(0, 16);
    return out;
  }

  // The roster view reads stg_encounters: on PostgreSQL a refresh that does not rebuild it is refused (TSF310).
  const run = (o: Partial<RunRequest>) => runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+refresh_probe', 'practice_patient_roster'], ...engine.request(), ...o });
  const failed = (results: NodeResult[]) => results.filter((r) => r.status === 'error').map((r) => `${r.node}: ${r.code}`);

  /** A row no source has, in each practice's slice of the incremental stg_encounters: only a rebuild removes it. */
  async function plantStale(): Promise<void> {
    const columns = Object.keys((await sql(`SELECT * FROM staging.stg_encounters LIMIT 1`))[0]!);
    const values = columns.map((col) => (col === 'encounter_id' ? `'stale-' || encounter_id` : quoteIdent(col))).join(', ');
    for (const t of [a, b]) {
      await sql(
        `INSERT INTO staging.stg_encounters (${columns.map(quoteIdent).join(', ')}) SELECT ${values} FROM staging.stg_encounters WHERE practice_id = $1 AND encounter_id = (SELECT min(encounter_id) FROM staging.stg_encounters WHERE practice_id = $1)`,
        [t],
      );
    }
  }
  const stale = async () => Object.fromEntries((await sql(`SELECT practice_id, count(*) AS n FROM staging.stg_encounters WHERE encounter_id LIKE 'stale-%' GROUP BY practice_id`)).map((r) => [String(r.practice_id), Number(r.n)]));

  beforeAll(async () => {
    if (engine.name === 'postgres') {
      server ??= await startThrowawayPostgres();
      pgUrl = (await server.createDatabase()).url;
    }
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3), files: { 'models/marts/refresh_probe.sql': PROBE('') } });
    demoDirs[engine.name] = demo.dir;
    // one practice a batch: a run can be stopped between practices
    const config = join(demo.dir, 'tsform.yml');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 1'));
    [a, b, c] = [...demo.tenantIds].sort() as [string, string, string];
    const first = await run({ select: undefined });
    expect(failed(first.results)).toEqual([]);
  }, 300_000);
  afterAll(() => demo?.remove());

  it('a practice whose rebuild fails keeps exactly its previous rows; the others are rebuilt; a practice gone from tenants.yml loses its rows', async () => {
    const before = await slices('marts.refresh_probe', 'encounter_id');
    expect(Object.keys(before).sort()).toEqual([a, b, c].sort());
    expect(before[b]!.n).toBeGreaterThan(0);
    await plantStale();
    // c leaves tenants.yml
    const tenantsFile = join(demo.dir, 'tenants.yml');
    const doc = parse(readFileSync(tenantsFile, 'utf8')) as { tenants: { id: string }[] };
    writeFileSync(tenantsFile, stringify({ ...doc, tenants: doc.tenants.filter((t) => t.id !== c) }));

    const refresh = await run({ fullRefresh: true, vars: { probe_generation: 2, probe_fail_practice: b } });
    expect(failed(refresh.results)).toEqual([`refresh_probe@${b}: TSF401`]);
    const after = await slices('marts.refresh_probe', 'encounter_id');
    expect(Object.keys(after).sort()).toEqual([a, b].sort());
    // b: its previous rows, exactly
    expect(after[b]).toEqual(before[b]);
    // a: rebuilt, same keys, new generation
    expect(after[a]).toEqual({ ...before[a], generations: ['2'] });
    // the incremental model was rebuilt from scratch for both practices, and c's rows are gone
    expect(await stale()).toEqual({});
    expect(Number((await sql(`SELECT count(*) AS n FROM staging.stg_encounters WHERE practice_id = $1`, [c]))[0]!.n)).toBe(0);
    if (engine.name === 'postgres') {
      const rls = await sql(`SELECT relrowsecurity AS rls FROM pg_class WHERE oid = 'marts.refresh_probe'::regclass`);
      expect(rls[0]).toMatchObject({ rls: true });
      expect(Number((await sql(`SELECT count(*) AS n FROM pg_policies WHERE schemaname = 'marts' AND tablename = 'refresh_probe'`))[0]!.n)).toBeGreaterThan(0);
    }
  }, 300_000);

  it('a refresh stopped after one practice leaves the practices not rebuilt as they were', async () => {
    await plantStale();
    const before = await slices('staging.stg_encounters', 'encounter_id');
    const probe = await slices('marts.refresh_probe', 'encounter_id');
    const stop = new AbortController();
    let rebuilt: string | undefined;
    const r = await run({
      fullRefresh: true,
      threads: 1,
      vars: { probe_generation: 3 },
      signal: stop.signal,
      onTaskEnd: (step, results) => {
        if (step.id !== 'stg_encounters' || rebuilt) return;
        rebuilt = results.find((x) => x.status === 'success')?.tenant ?? undefined;
        stop.abort('test stops the run');
      },
    });
    expect(rebuilt).toBeDefined();
    expect(r.results.some((x) => x.status === 'interrupted')).toBe(true);
    const other = rebuilt === a ? b : a;
    const after = await slices('staging.stg_encounters', 'encounter_id');
    expect(after[other]).toEqual(before[other]);
    expect(await stale()).toEqual({ [other]: 1 });
    // the model below was never reached: its table as it was
    expect(await slices('marts.refresh_probe', 'encounter_id')).toEqual(probe);
  }, 300_000);

  it('a changed column list is applied; a failing practice keeps its rows in the unchanged columns', async () => {
    const before = await slices('marts.refresh_probe', 'encounter_id');
    writeFileSync(join(demo.dir, 'models/marts/refresh_probe.sql'), PROBE(',\n  1 as extra'));
    const refresh = await run({ fullRefresh: true, vars: { probe_generation: 4, probe_fail_practice: b } });
    expect(failed(refresh.results)).toEqual([`refresh_probe@${b}: TSF401`]);
    const note = refresh.results.find((x) => x.node === `refresh_probe@${a}`)?.notes ?? [];
    expect(note.join(' ')).toMatch(/columns changed/);
    const after = await slices('marts.refresh_probe', 'encounter_id', true);
    expect(after[b]).toEqual({ ...before[b], extraNulls: before[b]!.n });
    expect(after[a]).toEqual({ ...before[a], generations: ['4'] });
  }, 300_000);
});
