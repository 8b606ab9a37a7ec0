/**
 * `npm run bench:nightly -- [--practices 5000] [--encounters n] [--target duckdb|postgres|both]
 *   [--seed 1] [--fleet dir] [--duckdb-memory-limit 768MB] [--duckdb-allocator-flush 32MB]
 *   [--duckdb-checkpoint-threshold size] [--batch-size n]
 *   [--pg-partitions n] [--cpu-prof dir] [--keep]`: the demo project's whole nightly
 * `tsform run` on a generated fleet (scripts/fleet-generate.ts), on DuckDB and on PostgreSQL.
 *
 * What runs: the demo project unchanged (tsform.yml, models, macros, seeds, policies) with the
 * fleet's tenants.yml and CSV extracts. Capture from an OLTP is not part of it (the demo has
 * none); loading the CSV extracts is, as the run's load step (one source node per table and
 * practice). Every `tsform` invocation is a process of its own (bench/lib/nightly-child.ts):
 *
 *   whole first     `tsform run` on an empty warehouse: loads, seeds, staging, marts, vault,
 *                   pseudonymized and published research; wall time, peak RSS (the process's
 *                   maxRSS; DuckDB runs inside it), run_results.json size, units.
 *   whole steady    the same again (nothing changed in the extracts: the nightly steady state).
 *   models first    the tenant-scoped SQL models only (`--select` of those models: staging,
 *                   marts, pseudonymized research), their tables dropped first.
 *   models steady   the same again.
 *   monolithic      the same models, one CREATE TABLE … AS per model over all practices, in DAG
 *                   order, in a copy of the warehouse (DuckDB: the file; PostgreSQL: CREATE
 *                   DATABASE … TEMPLATE), first on dropped tables, then again (bench/lib/nightly-mono.ts).
 *
 * The copied project's DuckDB target gets `settings: { memory_limit }` (default 768MB, `none` to
 * leave DuckDB's default of 80% of RAM), and with `--duckdb-allocator-flush` (default 32MB, `none`
 * for DuckDB's 128MB / 512MB) `allocator_flush_threshold`,
 * `allocator_bulk_deallocation_flush_threshold` and `allocator_background_threads: true`:
 * memory_limit bounds DuckDB's buffer manager only, and at 5,000 practices the process peaked at
 * 2.4 GB with 600MB as with 1GB; the allocator settings bound what DuckDB keeps after freeing
 * (README, bench:nightly: the first run's peak with each). Both are recorded in the JSON
 * (`duckdb_settings`); the monolithic baseline runs with the same. `--duckdb-checkpoint-threshold`
 * sets `checkpoint_threshold` too (DuckDB's own is 16MB; docs/benchmarks.md compares them). `--batch-size` sets the copy's
 * `batch.size` (the demo's 50 when absent): how many practices share one statement per model,
 * against how many one failure holds back. `--pg-partitions n` gives the PostgreSQL copy
 * `partition_by_practice` (README, "Partitioning by practice"): a LIST partition for each practice
 * the fleet tags `large` (the ~1 % largest) and n HASH partitions for the rest; recorded as
 * `pg_partitioning`. The monolithic baseline's tables stay plain (it recreates them with CREATE
 * TABLE … AS).
 *
 * ratio = models steady / monolithic steady; first_run_ratio = models first / monolithic first;
 * per_node_overhead_ms = (models steady − monolithic steady) / model units. Then every model is
 * compared between tsform's warehouse and the monolithic one (row count + checksum); a
 * difference fails the bench. Progress on stderr; the last stdout line is one JSON object.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { compileWorkspace } from '../src/cli/api.ts';
import { generateFleet, REPO_ROOT, type FleetStats } from '../scripts/lib/fleet-ehr.ts';
import { startThrowawayPostgres, type ThrowawayDatabase, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { monolithicStatements, type MonoStatement } from './lib/fleet-mono.ts';
import { dropModelTables, runMonolithicOn, verifySameRows } from './lib/nightly-mono.ts';

const { values } = parseArgs({
  options: {
    practices: { type: 'string', default: '5000' },
    encounters: { type: 'string' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string', default: 'both' },
    fleet: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'duckdb-memory-limit': { type: 'string', default: '768MB' },
    'duckdb-allocator-flush': { type: 'string', default: '32MB' },
    'duckdb-checkpoint-threshold': { type: 'string' },
    'batch-size': { type: 'string' },
    'pg-partitions': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const PRACTICES = Number(values.practices);
const ENCOUNTERS = values.encounters === undefined ? PRACTICES * 200 : Number(values.encounters);
const SEED = Number(values.seed);
if (!['duckdb', 'postgres', 'both'].includes(values.target!)) throw new Error(`--target is duckdb, postgres or both, not '${values.target}'`);
const TARGETS = values.target === 'both' ? (['duckdb', 'postgres'] as const) : [values.target as 'duckdb' | 'postgres'];
const MEMORY_LIMIT = values['duckdb-memory-limit'] === 'none' ? undefined : values['duckdb-memory-limit'];
const ALLOCATOR_FLUSH = values['duckdb-allocator-flush'] === 'none' ? undefined : values['duckdb-allocator-flush'];
/** The DuckDB `settings:` of the project copy and of the monolithic baseline. */
const DUCKDB_SETTINGS: Record<string, string> = {
  ...(MEMORY_LIMIT ? { memory_limit: MEMORY_LIMIT } : {}),
  ...(ALLOCATOR_FLUSH
    ? { allocator_flush_threshold: ALLOCATOR_FLUSH, allocator_bulk_deallocation_flush_threshold: ALLOCATOR_FLUSH, allocator_background_threads: 'true' }
    : {}),
  ...(values['duckdb-checkpoint-threshold'] ? { checkpoint_threshold: values['duckdb-checkpoint-threshold'] } : {}),
};
const BATCH_SIZE = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
if (BATCH_SIZE !== undefined && !(Number.isSafeInteger(BATCH_SIZE) && BATCH_SIZE >= 1)) throw new Error(`--batch-size is a positive integer, not '${values['batch-size']}'`);
const PG_PARTITIONS = values['pg-partitions'] === undefined ? undefined : Number(values['pg-partitions']);
if (PG_PARTITIONS !== undefined && !(Number.isSafeInteger(PG_PARTITIONS) && PG_PARTITIONS >= 1 && PG_PARTITIONS <= 1024)) {
  throw new Error(`--pg-partitions is a hash partition count from 1 to 1024, not '${values['pg-partitions']}'`);
}
const CPU_PROF = values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined;
// A fixed bench-only vault key (never a production key), as the test suite uses.
const VAULT_KEY = '5f3c7a1e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';

const t00 = performance.now();
const log = (m: string) => process.stderr.write(`[bench:nightly ${((performance.now() - t00) / 1000).toFixed(0).padStart(5)}s] ${m}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

interface ChildRun {
  code: number;
  seconds: number;
  max_rss_kb: number;
  lines: number;
  summary?: { units: number; success: number; error: number; elapsed_ms: number };
  failed: { model: string; tenant: string | null; code: string; message: string | null }[];
}

/**
 * Failures the bench accepts, counted and reported: the leak scan refusing a practice's
 * pseudonymized slice (TSF414, fail closed). Those slices are left out of the comparison.
 */
const TOLERATED = new Set(['TSF414']);

async function tsform(label: string, projectDir: string, args: string[], env: Record<string, string>): Promise<ChildRun> {
  const out = join(projectDir, `.nightly-${label.replaceAll(' ', '-')}.json`);
  const prof = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(CPU_PROF, label.replaceAll(' ', '-'))] : [];
  const t0 = performance.now();
  const code = await new Promise<number>((done, fail) => {
    const child = spawn(process.execPath, [...prof, '--import', 'tsx', join(REPO_ROOT, 'bench/lib/nightly-child.ts'), 'run', '--project-dir', projectDir, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, TSFORM_VAULT_KEY: VAULT_KEY, NIGHTLY_CHILD_OUT: out },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.on('error', fail);
    child.on('close', (c) => (existsSync(out) ? done(c ?? 1) : fail(new Error(`${label}: tsform exited ${c}\n${err}`))));
  });
  const run = JSON.parse(readFileSync(out, 'utf8')) as ChildRun;
  const wall = (performance.now() - t0) / 1000;
  const unexpected = run.failed.filter((f) => !TOLERATED.has(f.code));
  if (!run.summary || unexpected.length > 0 || (code !== 0 && run.failed.length === 0)) {
    throw new Error(`${label}: exit ${code}: ${JSON.stringify(run.summary)}\n${unexpected.slice(0, 10).map((f) => `${f.model}@${f.tenant}: ${f.code} ${f.message ?? ''}`).join('\n')}`);
  }
  if (run.failed.length > 0) log(`${label}: ${run.failed.length} node(s) refused: ${[...new Set(run.failed.map((f) => `${f.model} ${f.code}`))].join(', ')}`);
  log(`${label}: ${wall.toFixed(1)} s wall (process), ${run.summary.units} units, peak RSS ${(run.max_rss_kb / 1024).toFixed(0)} MB`);
  return { ...run, seconds: wall };
}

interface TargetSetup {
  args: string[];
  env: Record<string, string>;
  /** The tsform warehouse, opened for the bench's own statements. */
  open(): Promise<Adapter>;
  /** A copy of the tsform warehouse for the monolithic baseline (tsform is not running). */
  copy(): Promise<{ adapter: Adapter; remove(): Promise<void> }>;
}

function duckdbSetup(dir: string): TargetSetup {
  const t = join(dir, 'target');
  return {
    args: [],
    env: {},
    open: () => DuckDBAdapter.open({ path: join(t, 'tsform.duckdb'), connections: 2, attachReadOnly: { vault: join(t, 'vault.duckdb') } }),
    copy: async () => {
      const monoPath = join(dir, 'mono.duckdb');
      copyFileSync(join(t, 'tsform.duckdb'), monoPath);
      // Same thread count as the project's duckdb target (tsform.yml: threads 2).
      const adapter = await DuckDBAdapter.open({
        path: monoPath,
        connections: 2,
        attachReadOnly: { vault: join(t, 'vault.duckdb') },
        settings: DUCKDB_SETTINGS,
      });
      return { adapter, remove: async () => rmSync(monoPath, { force: true }) };
    },
  };
}

function postgresSetup(server: ThrowawayPostgres, db: ThrowawayDatabase): TargetSetup {
  return {
    args: ['--target', 'postgres'],
    env: { TSFORM_PG_URL: db.url },
    open: () => createPostgresAdapter({ url: db.url, poolSize: 2 }),
    copy: async () => {
      const mono = await server.createDatabase({ template: db.name });
      const adapter = await createPostgresAdapter({ url: mono.url, poolSize: 2 });
      return {
        adapter,
        remove: async () => {
          await adapter.close();
          await mono.drop();
        },
      };
    },
  };
}

async function measure(target: 'duckdb' | 'postgres', fleetDir: string, work: string, statements: MonoStatement[], setup: TargetSetup): Promise<Record<string, unknown>> {
  const dir = join(work, target);
  cpSync(fleetDir, dir, { recursive: true, filter: (src) => !src.startsWith(join(fleetDir, 'target')) });
  if (target === 'duckdb') for (const [name, value] of Object.entries(DUCKDB_SETTINGS)) setProjectConfig(dir, ['targets', 'duckdb', 'settings', name], value);
  if (BATCH_SIZE !== undefined) setProjectConfig(dir, ['batch', 'size'], BATCH_SIZE);
  const partitioning = target === 'postgres' && PG_PARTITIONS !== undefined ? { list: largePractices(dir), hash_partitions: PG_PARTITIONS } : undefined;
  if (partitioning) setProjectConfig(dir, ['targets', 'postgres', 'partition_by_practice'], partitioning);
  const run = (label: string, extra: string[] = []) => tsform(`${target} ${label}`, dir, [...setup.args, ...extra], setup.env);
  const resultsSize = () => statSync(join(dir, 'target', 'run_results.json')).size;

  const first = await run('whole first');
  const firstResults = resultsSize();
  const steady = await run('whole steady');
  const steadyResults = resultsSize();

  const models = statements.map((s) => s.id);
  const own = await setup.open();
  await dropModelTables(own, statements).finally(() => own.close());
  const modelsFirst = await run('models first', ['--select', ...models]);
  const modelsSteady = await run('models steady', ['--select', ...models]);

  const mono = await setup.copy();
  let monoFirst: Awaited<ReturnType<typeof runMonolithicOn>>;
  let monoSteady: Awaited<ReturnType<typeof runMonolithicOn>>;
  let verified: Record<string, unknown>;
  try {
    await dropModelTables(mono.adapter, statements);
    monoFirst = await runMonolithicOn(mono.adapter, statements);
    log(`${target} monolithic first: ${monoFirst.seconds.toFixed(1)} s`);
    monoSteady = await runMonolithicOn(mono.adapter, statements);
    log(`${target} monolithic steady: ${monoSteady.seconds.toFixed(1)} s`);
    const ts = await setup.open();
    try {
      verified = await verifySameRows(ts, mono.adapter, statements, refusedSlices(modelsFirst, modelsSteady));
    } finally {
      await ts.close();
    }
    log(`${target}: ${Object.keys(verified).length} models verified equal (rows + checksum)`);
  } finally {
    if (target === 'duckdb') await mono.adapter.close();
    await mono.remove();
  }
  const modelUnits = modelsSteady.summary!.units;
  const refused = (r: ChildRun) => r.failed.length;
  return {
    ...(partitioning ? { pg_partitioning: { listed: partitioning.list.length, hash_partitions: partitioning.hash_partitions } } : {}),
    whole_first_s: r2(first.seconds),
    whole_steady_s: r2(steady.seconds),
    whole_units: steady.summary!.units,
    whole_s_per_unit_ms: r2((steady.seconds / steady.summary!.units) * 1000),
    peak_rss_mb: Math.round(Math.max(first.max_rss_kb, steady.max_rss_kb, modelsFirst.max_rss_kb, modelsSteady.max_rss_kb) / 1024),
    run_results_bytes: { first: firstResults, steady: steadyResults },
    ratio: r3(modelsSteady.seconds / monoSteady.seconds),
    first_run_ratio: r3(modelsFirst.seconds / monoFirst.seconds),
    models_steady_s: r2(modelsSteady.seconds),
    models_first_s: r2(modelsFirst.seconds),
    monolithic_steady_s: r2(monoSteady.seconds),
    monolithic_first_s: r2(monoFirst.seconds),
    model_units: modelUnits,
    per_node_overhead_ms: r2(((modelsSteady.seconds - monoSteady.seconds) / modelUnits) * 1000),
    per_node_overhead_first_ms: r2(((modelsFirst.seconds - monoFirst.seconds) / modelUnits) * 1000),
    monolithic_per_model_s: monoSteady.perModel,
    verified,
    // Nodes refused per run (TSF414, see TOLERATED): whole first, whole steady, models first, models steady.
    refused_nodes: [first, steady, modelsFirst, modelsSteady].map(refused),
    refused_practices: new Set([first, steady, modelsFirst, modelsSteady].flatMap((r) => r.failed.map((f) => f.tenant))).size,
  };
}

/** Sets one key of the project copy's tsform.yml, comments kept. */
function setProjectConfig(projectDir: string, path: readonly string[], value: unknown): void {
  const file = join(projectDir, 'tsform.yml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(path, value);
  writeFileSync(file, doc.toString());
}

/** The practices the fleet's tenants.yml tags `large` (scripts/lib/fleet-practices.ts: the ~1 % largest). */
function largePractices(projectDir: string): string[] {
  const doc = parseDocument(readFileSync(join(projectDir, 'tenants.yml'), 'utf8')).toJS() as { tenants: { id: string; tags?: string[] }[] };
  return doc.tenants.filter((t) => t.tags?.includes('large')).map((t) => t.id);
}

/** Per model, the practices whose slice tsform refused in either models run: left out on both sides. */
function refusedSlices(...runs: ChildRun[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const r of runs) for (const f of r.failed) if (f.tenant) out.set(f.model, (out.get(f.model) ?? new Set()).add(f.tenant));
  return new Map([...out].map(([m, s]) => [m, [...s]]));
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tsform-nightly-'));
  log(`work dir ${work}`);
  let server: ThrowawayPostgres | undefined;
  try {
    let fleetDir = values.fleet ? resolve(values.fleet) : join(work, 'fleet');
    let fleet: FleetStats | { reused: string } = { reused: fleetDir };
    if (!values.fleet || !existsSync(join(fleetDir, 'tenants.yml'))) {
      fleet = await generateFleet({ practices: PRACTICES, encounters: ENCOUNTERS, seed: SEED, out: fleetDir });
      log(`fleet: ${JSON.stringify(fleet)}`);
    }
    fleetDir = resolve(fleetDir);
    const statements = monolithicStatements(compileWorkspace(fleetDir, { write: false }));
    log(`models compared with monolithic: ${statements.map((s) => s.id).join(', ')}`);

    const out: Record<string, unknown> = {
      practices: PRACTICES,
      encounters: 'reused' in fleet ? undefined : ENCOUNTERS,
      seed: 'reused' in fleet ? undefined : SEED,
      capture: 'excluded (the demo project has no OLTP capture); the CSV extracts load in every whole run (its load step)',
      fleet,
      duckdb_memory_limit: MEMORY_LIMIT ?? 'DuckDB default (80% of RAM)',
      duckdb_settings: DUCKDB_SETTINGS,
      batch_size: BATCH_SIZE ?? 'the demo project\'s (50)',
    };
    for (const target of TARGETS) {
      if (target === 'duckdb') {
        out.duckdb = await measure('duckdb', fleetDir, work, statements, duckdbSetup(join(work, 'duckdb')));
      } else {
        server ??= await startThrowawayPostgres({ binaries: 'machine-first' });
        const db = await server.createDatabase();
        log(`postgres: ${server.server}`);
        out.postgres = await measure('postgres', fleetDir, work, statements, postgresSetup(server, db));
      }
    }
    out.seconds = r2((performance.now() - t00) / 1000);
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await server?.stop();
    if (values.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();
