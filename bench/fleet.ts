/**
 * `npm run bench:fleet`: a refresh of a fleet of practices — per-practice isolated runs (tsform,
 * with batching) against one monolithic all-practice statement per model.
 *
 * Setup (temp dir): the demo project's tsform.yml and models for encounters, providers and
 * patients (staging; stg_encounters is incremental, as in the demo) and the marts
 * practice_daily_activity and provider_panel, with 1,000 practices in tenants.yml (Zipf sizes,
 * the 1% largest tagged `large`, several US zones) and 5M Synthea-shaped encounter rows (largest
 * practice ~668k, median ~1.3k; patients and providers in proportion) generated inside DuckDB as
 * the raw.* source tables, sorted by practice_id. Both variants start from copies of that file.
 *
 *   tsform       runWorkspace({ command: 'run', exclude: ['kind:source', 'kind:seed'], threads })
 *                (the tenants relation is built; sources are pre-loaded, read where they are).
 *   monolithic   per model in DAG order, `CREATE OR REPLACE TABLE … AS <compiled SQL>` with the
 *                tenant filter replaced by TRUE, over all practices, in its own copy of the
 *                warehouse; same adapter, DuckDB settings and thread count.
 *
 * Protocol (the machine is shared, so runs alternate): tsform first run (creates the tables),
 * monolithic first run, then BENCH_FLEET_REPEATS × (tsform steady run, monolithic steady run);
 * `ratio` is median steady tsform / median steady monolithic, `first_run_ratio` the first runs'.
 * Then every staging table and mart is compared (row count + order-independent checksums); any
 * difference fails the bench. The last stdout line is one JSON object; progress on stderr.
 *
 * Environment:
 *   BENCH_FLEET_TENANTS (1000), BENCH_FLEET_ROWS (5000000), BENCH_FLEET_BATCH (50),
 *   BENCH_FLEET_THREADS (2), BENCH_FLEET_REPEATS (3),
 *   BENCH_FLEET_FULL_REFRESH=1 (every tsform run with --full-refresh),
 *   BENCH_FLEET_CHECKPOINT=1GB (raise checkpoint_threshold, one CHECKPOINT at the end),
 *   BENCH_FLEET_PROFILE=1 (attribute tsform's database time to statement kinds: `profile`),
 *   BENCH_FLEET_EXPERIMENTS=batch200,threads4,ckpt1gb,fullrefresh,stgtable,best,incbatch,incbatch200
 *     — also time these variants, each on a fresh copy (first run, then a steady run followed by
 *     a monolithic steady run for its ratio); reported under `experiments`. `stgtable` builds
 *     stg_encounters as a table (batched) instead of incremental (one practice per statement);
 *     `incbatch*` emulate the runner change "incremental models in batches" (the model's
 *     high-water mark rewritten per practice, the plan step marked multi-tenant via onPlan),
 *   BENCH_FLEET_DATA=/path/file.duckdb (reuse generated raw data across invocations; generated
 *     there when missing or made with other parameters),
 *   BENCH_FLEET_KEEP=1 (keep the temp dir).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { compileWorkspace } from '../src/cli/api.ts';
import { generateFleetData, one } from './lib/fleet-data.ts';
import { monolithicStatements, runMonolithic, type MonoRun, type MonoStatement } from './lib/fleet-mono.ts';
import { FLEET_RELATIONS, fleetPractices, setBatchSize, writeFleetProject } from './lib/fleet-project.ts';
import { timeTsformRun, type TsformRun } from './lib/fleet-tsform.ts';
import { compareWarehouses } from './lib/fleet-verify.ts';

const env = process.env;
const TENANTS = Number(env.BENCH_FLEET_TENANTS ?? 1000);
const ROWS = Number(env.BENCH_FLEET_ROWS ?? 5_000_000);
const BATCH = Number(env.BENCH_FLEET_BATCH ?? 50);
const THREADS = Number(env.BENCH_FLEET_THREADS ?? 2);
const REPEATS = Math.max(1, Number(env.BENCH_FLEET_REPEATS ?? 3));
const FULL_REFRESH = env.BENCH_FLEET_FULL_REFRESH === '1';
const CHECKPOINT = env.BENCH_FLEET_CHECKPOINT || undefined;
const PROFILE = env.BENCH_FLEET_PROFILE === '1';
const EXPERIMENTS = (env.BENCH_FLEET_EXPERIMENTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const DATA_VERSION = 1;

const t00 = performance.now();
const log = (m: string) => process.stderr.write(`[bench:fleet ${((performance.now() - t00) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Variant {
  name: string;
  batch: number;
  threads: number;
  fullRefresh: boolean;
  checkpoint?: string;
  /** Build stg_encounters as a plain table (batched like the others) instead of incremental (one practice per statement). */
  stagingAsTable?: boolean;
  /**
   * Emulates the proposed src change "incremental models run in batches": stg_encounters' high-water
   * mark is rewritten per practice (batch-safe), and the plan's step is marked multi-tenant.
   */
  batchedIncremental?: boolean;
}

const EXPERIMENT_VARIANTS: Record<string, Omit<Variant, 'name'>> = {
  batch200: { batch: 200, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT },
  threads4: { batch: BATCH, threads: 4, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT },
  ckpt1gb: { batch: BATCH, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: '1GB' },
  fullrefresh: { batch: BATCH, threads: THREADS, fullRefresh: true, checkpoint: CHECKPOINT },
  stgtable: { batch: BATCH, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT, stagingAsTable: true },
  incbatch: { batch: BATCH, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT, batchedIncremental: true },
  incbatch200: { batch: 200, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT, batchedIncremental: true },
  best: { batch: 200, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: '1GB', stagingAsTable: true },
};
for (const e of EXPERIMENTS) if (!EXPERIMENT_VARIANTS[e]) throw new Error(`unknown experiment '${e}' (known: ${Object.keys(EXPERIMENT_VARIANTS).join(', ')})`);

interface Ctx {
  dir: string;
  gen: string;
  warehouse: string;
  monoPath: string;
  statements: MonoStatement[];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-fleet-'));
  log(`project in ${dir}`);
  try {
    const practices = fleetPractices(TENANTS, ROWS);
    writeFleetProject(dir, practices, BATCH);
    const sizes = practices.map((p) => p.encounters).sort((a, b) => a - b);
    log(`${TENANTS} practices (${practices.filter((p) => p.large).length} large): encounters max ${sizes.at(-1)}, median ${sizes[Math.floor(sizes.length / 2)]}, min ${sizes[0]}`);

    const gen = env.BENCH_FLEET_DATA || join(dir, 'gen.duckdb');
    const rows = await ensureData(gen, practices);
    const ctx: Ctx = {
      dir,
      gen,
      warehouse: join(dir, 'target', 'tsform.duckdb'),
      monoPath: join(dir, 'mono.duckdb'),
      statements: monolithicStatements(compileWorkspace(dir, { write: false })),
    };
    log(`models: ${ctx.statements.map((s) => s.id).join(', ')}`);

    const base: Variant = { name: 'baseline', batch: BATCH, threads: THREADS, fullRefresh: FULL_REFRESH, checkpoint: CHECKPOINT };
    const tsFirst = await tsformFirst(ctx, base);

    // Monolithic, in its own copy, with the tenants relation tsform materialized.
    copyFileSync(gen, ctx.monoPath);
    const monoSetup = [
      'CREATE SCHEMA IF NOT EXISTS tsform_meta',
      'CREATE OR REPLACE TABLE tsform_meta.tenants AS SELECT * FROM ts.tsform_meta.tenants',
      'DETACH ts',
    ];
    const monoFirst = await monoRun(ctx, THREADS, 'first run', monoSetup, { ts: ctx.warehouse });

    const tsSteady: TsformRun[] = [];
    const monoSteady: MonoRun[] = [];
    for (let i = 1; i <= REPEATS; i++) {
      tsSteady.push(await tsformSteady(ctx, base, `steady run ${i}`));
      monoSteady.push(await monoRun(ctx, THREADS, `steady run ${i}`));
    }

    log('verifying: every staging table and mart, tsform vs monolithic');
    const checks = await compareWarehouses(ctx.warehouse, ctx.monoPath, FLEET_RELATIONS);
    for (const c of checks) log(`  ${c.relation}: ${c.rows} rows, checksum ${c.checksum} — equal`);

    const experiments: Record<string, unknown> = {};
    for (const name of EXPERIMENTS) {
      const v: Variant = { name, ...EXPERIMENT_VARIANTS[name]! };
      const restore = v.stagingAsTable ? stagingAsTable(dir) : v.batchedIncremental ? perPracticeWatermark(dir) : () => undefined;
      try {
        setBatchSize(dir, v.batch);
        const first = await tsformFirst(ctx, v);
        const second = await tsformSteady(ctx, v, 'steady run');
        const mono = await monoRun(ctx, v.threads, `steady run beside ${name}`);
        const checked = await compareWarehouses(ctx.warehouse, ctx.monoPath, FLEET_RELATIONS);
        experiments[name] = {
          batch_size: v.batch,
          threads: v.threads,
          full_refresh: v.fullRefresh,
          checkpoint_threshold: v.checkpoint ?? 'default',
          stg_encounters: v.stagingAsTable ? 'table' : v.batchedIncremental ? 'incremental, batched (per-practice watermark)' : 'incremental',
          ratio: r3(second.seconds / mono.seconds),
          tsform_s: r2(second.seconds),
          monolithic_s: r2(mono.seconds),
          cpu_ratio: r3(second.cpuSeconds / mono.cpuSeconds),
          tsform_cpu_s: r2(second.cpuSeconds),
          monolithic_cpu_s: r2(mono.cpuSeconds),
          first_run_ratio: r3(first.seconds / monoFirst.seconds),
          tsform_first_s: r2(first.seconds),
          first_run_cpu_s: r2(first.cpuSeconds),
          busy_s: second.busy,
          ...(second.profile ? { profile_s: second.profile.seconds } : {}),
          verified: checked.length,
        };
        log(`${name}: ratio ${(second.seconds / mono.seconds).toFixed(2)} (tsform ${second.seconds.toFixed(2)} s vs monolithic ${mono.seconds.toFixed(2)} s), cpu ratio ${(second.cpuSeconds / mono.cpuSeconds).toFixed(2)}`);
      } finally {
        restore();
        setBatchSize(dir, BATCH);
      }
    }

    const ts = median(tsSteady.map((r) => r.seconds));
    const mono = median(monoSteady.map((r) => r.seconds));
    const last = tsSteady.at(-1)!;
    const summary = {
      tenants: TENANTS,
      rows,
      ratio: r3(ts / mono),
      tsform_s: r2(ts),
      monolithic_s: r2(mono),
      first_run_ratio: r3(tsFirst.seconds / monoFirst.seconds),
      tsform_first_s: r2(tsFirst.seconds),
      monolithic_first_s: r2(monoFirst.seconds),
      // CPU seconds of the process (DuckDB is in-process): the work each variant does, which a
      // shared machine's load distorts far less than wall time.
      cpu_ratio: r3(median(tsSteady.map((r) => r.cpuSeconds)) / median(monoSteady.map((r) => r.cpuSeconds))),
      tsform_cpu_s: r2(median(tsSteady.map((r) => r.cpuSeconds))),
      monolithic_cpu_s: r2(median(monoSteady.map((r) => r.cpuSeconds))),
      first_run_cpu_ratio: r3(tsFirst.cpuSeconds / monoFirst.cpuSeconds),
      batch_size: BATCH,
      threads: THREADS,
      full_refresh: FULL_REFRESH,
      checkpoint_threshold: CHECKPOINT ?? 'default',
      repeats: REPEATS,
      tsform_runs_s: tsSteady.map((r) => r2(r.seconds)),
      monolithic_runs_s: monoSteady.map((r) => r2(r.seconds)),
      tsform_execute_s: r2(last.executeSeconds),
      tsform_busy_s: last.busy,
      tsform_tasks: last.tasks,
      ...(last.profile ? { tsform_profile_s: last.profile.seconds } : {}),
      monolithic_model_s: roundAll(monoSteady.at(-1)!.perModel),
      verified: checks.map((c) => ({ relation: c.relation, rows: c.rows })),
      ...(EXPERIMENTS.length > 0 ? { experiments } : {}),
    };
    log(`ratio ${summary.ratio} (target ≤ 1.5); first-run ratio ${summary.first_run_ratio}; cpu ratio ${summary.cpu_ratio}; total ${((performance.now() - t00) / 1000).toFixed(0)} s`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    if (env.BENCH_FLEET_KEEP === '1') log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function describe(v: Variant): string {
  return `batch ${v.batch}, ${v.threads} threads${v.fullRefresh ? ', full refresh' : ''}${v.checkpoint ? `, checkpoint_threshold ${v.checkpoint}` : ''}${v.stagingAsTable ? ', stg_encounters as table' : ''}${v.batchedIncremental ? ', incremental batched' : ''}`;
}

function tsformOpts(ctx: Ctx, v: Variant) {
  return {
    projectDir: ctx.dir,
    warehouse: ctx.warehouse,
    threads: v.threads,
    fullRefresh: v.fullRefresh,
    checkpointThreshold: v.checkpoint,
    batchIncremental: v.batchedIncremental,
    profile: PROFILE,
    log,
  };
}

/** A fresh copy of the generated data and tsform's first run on it (creates every table). */
async function tsformFirst(ctx: Ctx, v: Variant): Promise<TsformRun> {
  for (const suffix of ['', '.wal']) rmSync(ctx.warehouse + suffix, { force: true });
  copyFileSync(ctx.gen, ctx.warehouse);
  const run = await timeTsformRun({ ...tsformOpts(ctx, v), label: `tsform ${v.name} first run` });
  log(`tsform ${v.name} (${describe(v)}) first run: ${run.seconds.toFixed(2)} s (cpu ${run.cpuSeconds.toFixed(2)} s), busy ${JSON.stringify(run.busy)}`);
  if (run.profile) log(`  profile (connection-seconds): ${JSON.stringify(run.profile.seconds)}`);
  return run;
}

async function tsformSteady(ctx: Ctx, v: Variant, what: string): Promise<TsformRun> {
  const run = await timeTsformRun({ ...tsformOpts(ctx, v), label: `tsform ${v.name} ${what}` });
  log(`tsform ${v.name} (${describe(v)}) ${what}: ${run.seconds.toFixed(2)} s (cpu ${run.cpuSeconds.toFixed(2)} s, execute ${run.executeSeconds.toFixed(2)} s), busy ${JSON.stringify(run.busy)}, tasks ${JSON.stringify(run.tasks)}`);
  if (run.profile) log(`  profile (connection-seconds): ${JSON.stringify(run.profile.seconds)}`);
  if (run.practices !== TENANTS) throw new Error(`tsform ran ${run.practices} practices, expected ${TENANTS}`);
  return run;
}

async function monoRun(ctx: Ctx, threads: number, what: string, setup?: string[], attachReadOnly?: Record<string, string>): Promise<MonoRun> {
  const run = await runMonolithic(ctx.monoPath, ctx.statements, { threads, setup, attachReadOnly });
  log(`monolithic ${what} (${threads} threads): ${run.seconds.toFixed(2)} s (cpu ${run.cpuSeconds.toFixed(2)} s) ${JSON.stringify(roundAll(run.perModel))}`);
  return run;
}

/** Rewrites stg_encounters' config to a plain table; returns the function that restores it. */
function stagingAsTable(dir: string): () => void {
  const path = join(dir, 'models', 'staging', 'stg_encounters.sql');
  const original = readFileSync(path, 'utf8');
  const changed = original.replace(/\{\{config materialized="incremental"[^}]*\}\}/, '{{config materialized="table"}}');
  if (changed === original) throw new Error(`${path}: no incremental config to replace`);
  writeFileSync(path, changed);
  return () => writeFileSync(path, original);
}

/**
 * Rewrites stg_encounters' incremental filter from one high-water mark over `this` (correct only
 * when `this` is one practice's slice) to a per-practice one, so a batch of practices can share
 * the statement; returns the function that restores the file.
 */
function perPracticeWatermark(dir: string): () => void {
  const path = join(dir, 'models', 'staging', 'stg_encounters.sql');
  const original = readFileSync(path, 'utf8');
  const changed = original
    .replace(/from \{\{source "ehr" "encounters"\}\}\n/, 'from {{source "ehr" "encounters"}} src\n')
    .replace(
      /where updated_at > \(select coalesce\(max\(updated_at\), (timestamptz '[^']+')\) from \{\{this\}\}\)/,
      'where src.updated_at > coalesce((select max(t.updated_at) from {{this}} t where t.practice_id = src.practice_id), $1)',
    );
  if (!changed.includes(' src\n') || !changed.includes('t.practice_id = src.practice_id')) throw new Error(`${path}: incremental filter not in the expected form`);
  writeFileSync(path, changed);
  return () => writeFileSync(path, original);
}

/** Generates the raw tables into `path` unless it already holds data generated with these parameters. */
async function ensureData(path: string, practices: ReturnType<typeof fleetPractices>): Promise<number> {
  const key = `${DATA_VERSION}:${TENANTS}:${ROWS}`;
  if (existsSync(path)) {
    const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    const conn = await instance.connect();
    try {
      const meta = await one(conn, `SELECT max(key) AS key, max(rows) AS rows FROM fleet_bench.generated`).catch(() => ({}) as Record<string, unknown>);
      if (meta.key === key) {
        log(`reusing generated data in ${path} (${meta.rows} encounter rows)`);
        return Number(meta.rows);
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
    rmSync(path, { force: true });
  }
  log(`generating ${ROWS} encounter rows inside DuckDB into ${path}`);
  const g = await generateFleetData(path, practices, THREADS, log);
  const instance = await DuckDBInstance.create(path);
  const conn = await instance.connect();
  try {
    await conn.run(`CREATE SCHEMA IF NOT EXISTS fleet_bench; CREATE OR REPLACE TABLE fleet_bench.generated AS SELECT '${key}' AS key, ${g.encounters}::BIGINT AS rows`);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  log(`generated ${g.encounters} encounters, ${g.patients} patients, ${g.providers} providers in ${(g.ms / 1000).toFixed(1)} s`);
  return g.encounters;
}

function roundAll(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, r2(v)]));
}

main().catch((err) => {
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
