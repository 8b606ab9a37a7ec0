/**
 * `npm run bench:distributed`: `tsform run --distributed` on the demo project with `tsform
 * worker` processes on this machine, against a throwaway PostgreSQL (the machine's own build
 * when installed).
 *
 *  1. Throughput: the same run (N practices, batches of --batch) with 1, 2 and 4 steady
 *     workers, each on a fresh database; wall time of the coordinator and practices per second.
 *     On a 2-core machine workers share the cores with PostgreSQL: more workers measure the
 *     queue's and coordinator's overhead more than any speed-up.
 *  2. Fairness: the small practices' p95 completion time (from the run's start to their job's
 *     completion) while the large practices (`tags: [large]`) run in the backfill pool on a
 *     backfill worker, divided by the same without them (ratio as in bench:fairness).
 * Every run must succeed for every practice (asserted). Progress on stderr; the last stdout
 * line is one JSON object.
 *
 * Options: --practices N (default 60 sampled from the demo, its large ones included), --batch N (5).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { runDistributed } from '../src/cli/coordinator.ts';
import { copyDemoProject, REPO_ROOT, type DemoCopy } from '../test/support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startWorker, type WorkerProcess } from '../test/support/workers.ts';

const { values } = parseArgs({ options: { practices: { type: 'string', default: '60' }, batch: { type: 'string', default: '5' } } });
const PRACTICES = Number(values.practices);
const BATCH = Number(values.batch);
const T0 = performance.now();
const log = (m: string) => process.stderr.write(`[bench:distributed ${((performance.now() - T0) / 1000).toFixed(1)}s] ${m}\n`);
// A bench-only vault key (never a production one), as the test suite uses: the demo tokenizes with it.
process.env.TSFORM_VAULT_KEY ??= randomBytes(32).toString('hex');
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const isLarge = (t: { tags?: string[] }) => t.tags?.includes('large') === true;
const LARGE = (parse(readFileSync(join(REPO_ROOT, 'tenants.yml'), 'utf8')) as { tenants: { id: string; tags?: string[] }[] }).tenants.filter(isLarge).map((t) => t.id);

function project(backfillLarge: boolean, withLarge: boolean): { demo: DemoCopy; small: string[]; large: string[] } {
  // the demo's large practices, and small ones by id up to PRACTICES
  const demo = copyDemoProject({ tenants: (ids) => [...new Set([...LARGE, ...ids.slice().sort().filter((id) => !LARGE.includes(id)).slice(0, PRACTICES - LARGE.length)])] });
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, `batch:\n  size: ${BATCH}`));
  const file = join(demo.dir, 'tenants.yml');
  const doc = parse(readFileSync(file, 'utf8')) as { tenants: { id: string; tags?: string[]; pool?: string }[] };
  const large = doc.tenants.filter(isLarge).map((t) => t.id);
  if (!withLarge) doc.tenants = doc.tenants.filter((t) => !isLarge(t));
  for (const t of doc.tenants) t.pool = backfillLarge && isLarge(t) ? 'backfill' : 'steady';
  writeFileSync(file, stringify(doc));
  return { demo, small: doc.tenants.filter((t) => !isLarge(t)).map((t) => t.id), large };
}

interface Measured {
  wallS: number;
  /** Seconds from the run's start to each practice's job completion. */
  doneS: Map<string, number>;
  practices: number;
}

async function measure(server: ThrowawayPostgres, p: ReturnType<typeof project>, workers: { steady: number; backfill: number }): Promise<Measured> {
  const db = await server.createDatabase();
  const env = { ...process.env, TSFORM_PG_URL: db.url };
  const procs: WorkerProcess[] = [];
  for (let i = 0; i < workers.steady; i++) procs.push(startWorker(p.demo.dir, `s${i}`, db.url, ['--pool', 'steady', '--exit-when-idle', '3']));
  for (let i = 0; i < workers.backfill; i++) procs.push(startWorker(p.demo.dir, `b${i}`, db.url, ['--pool', 'backfill', '--exit-when-idle', '3']));
  const started = performance.now();
  const doneS = new Map<string, number>();
  const run = await runDistributed(
    { projectDir: p.demo.dir, command: 'run', target: 'postgres', env },
    { onJob: (e) => e.state === 'completed' && e.tenants.forEach((t) => doneS.set(t, (performance.now() - started) / 1000)) },
  );
  const wallS = (performance.now() - started) / 1000;
  await Promise.all(procs.map((w) => w.exited));
  const failed = run.results.filter((r) => r.status !== 'success');
  if (failed.length > 0) throw new Error(`${failed.length} node(s) did not succeed, e.g. ${failed[0]!.node}: ${failed[0]!.code}`);
  await db.drop();
  return { wallS, doneS, practices: Object.keys(run.tenants).length };
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

async function main(): Promise<void> {
  const server = await startThrowawayPostgres({ binaries: 'machine-first' });
  const copies: DemoCopy[] = [];
  try {
    const all = project(false, true);
    copies.push(all.demo);
    const throughput: Record<string, { wall_s: number; practices_per_s: number }> = {};
    for (const n of [1, 2, 4]) {
      log(`throughput: ${n} worker(s), ${PRACTICES} practices, batches of ${BATCH} …`);
      const m = await measure(server, all, { steady: n, backfill: 0 });
      throughput[`workers_${n}`] = { wall_s: round(m.wallS, 1), practices_per_s: round(m.practices / m.wallS) };
      log(`  ${m.wallS.toFixed(1)} s, ${(m.practices / m.wallS).toFixed(2)} practices/s`);
    }
    log('fairness: small practices with the large ones in the backfill pool (2 steady workers + 1 backfill worker) …');
    const withBackfill = project(true, true);
    copies.push(withBackfill.demo);
    const w = await measure(server, withBackfill, { steady: 2, backfill: 1 });
    log('fairness: the small practices alone (2 steady workers) …');
    const alone = project(true, false);
    copies.push(alone.demo);
    const a = await measure(server, alone, { steady: 2, backfill: 0 });
    const smallWith = withBackfill.small.map((t) => w.doneS.get(t)!);
    const smallAlone = alone.small.map((t) => a.doneS.get(t)!);
    const result = {
      practices: PRACTICES,
      batch: BATCH,
      throughput,
      speedup_2_vs_1: round(throughput.workers_1!.wall_s / throughput.workers_2!.wall_s),
      speedup_4_vs_1: round(throughput.workers_1!.wall_s / throughput.workers_4!.wall_s),
      fairness: {
        large_practices_in_backfill: withBackfill.large.length,
        small_p95_with_backfill_s: round(p95(smallWith), 2),
        small_p95_without_s: round(p95(smallAlone), 2),
        p95_ratio: round(p95(smallWith) / p95(smallAlone)),
      },
      cores: (await import('node:os')).cpus().length,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const c of copies) c.remove();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  log(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exitCode = 1;
});
