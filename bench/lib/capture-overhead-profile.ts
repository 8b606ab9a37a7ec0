/**
 * Where a capture with nothing to do spends its time (bench/capture-overhead.ts, profiling aid):
 * loads the demo OLTP, runs the first capture, then `BENCH_PROFILE_RUNS` (3) captures with
 * nothing to do, printing each one's wall time and the statements each connection ran.
 * `node --cpu-prof --import tsx bench/lib/capture-overhead-profile.ts` profiles the whole process.
 */
import { join } from 'node:path';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { loadDemoOltp } from '../../src/ingest/demo-oltp.ts';
import { REPO_ROOT } from '../../test/support/demo-project.ts';
import { startThrowawayPostgres } from '../../test/support/postgres.ts';
import { demoTables } from '../../test/ingest/support/capture-fixture.ts';
import { demoCaptureProject } from './capture-overhead-project.ts';

const RUNS = Number(process.env.BENCH_PROFILE_RUNS ?? 3);

/** Milliseconds per statement shape (its first words), summed over a run. */
const timeBySql = new Map<string, { n: number; ms: number }>();

/** Counts statements per adapter method (queries and transactions), and times each statement. */
function counting<T extends object>(target: T, counts: Map<string, number>, prefix: string): T {
  return new Proxy(target, {
    get(t, prop, recv) {
      const v = Reflect.get(t, prop, recv);
      if (typeof v !== 'function' || !['query', 'transaction', 'readTransaction'].includes(String(prop))) return v;
      return (...args: unknown[]) => {
        counts.set(`${prefix}.${String(prop)}`, (counts.get(`${prefix}.${String(prop)}`) ?? 0) + 1);
        if (prop === 'transaction' || prop === 'readTransaction') {
          const fn = args[0] as (s: object) => unknown;
          return (v as (...a: unknown[]) => unknown).call(t, (s: object) => fn(counting(s, counts, `${prefix}.tx`)), ...args.slice(1));
        }
        const key = `${prefix} ${String(args[0]).replace(/\s+/g, ' ').slice(0, 70)}`;
        const t0 = performance.now();
        const done = () => {
          const e = timeBySql.get(key) ?? { n: 0, ms: 0 };
          e.n++;
          e.ms += performance.now() - t0;
          timeBySql.set(key, e);
        };
        const r = (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        return r.finally(done);
      };
    },
  });
}

const server = await startThrowawayPostgres({ binaries: 'machine-first' });
const db = await server.createDatabase();
const admin = await createPostgresAdapter({ url: db.url });
await loadDemoOltp(admin, { dataDir: join(REPO_ROOT, 'data/ehr'), tables: demoTables() });
const project = demoCaptureProject();
const env = { ...process.env, TSFORM_OLTP_URL: db.url };
try {
  for (let i = 0; i <= RUNS; i++) {
    const counts = new Map<string, number>();
    const oltp = counting(await PgOltpSource.open(db.url, { poolSize: 6 }), counts, 'oltp');
    const wh = counting(await DuckDBAdapter.open({ path: join(project.dir, 'target/tsform.duckdb'), connections: 2 }), counts, 'wh') as Adapter;
    timeBySql.clear();
    const t0 = performance.now();
    const r = await runWorkspace({ projectDir: project.dir, command: 'run', select: ['source:*'], openOltp: async () => oltp, env, adapter: wh });
    const ms = performance.now() - t0;
    await wh.close();
    console.log(JSON.stringify({ run: i === 0 ? 'first' : `noop ${i}`, ms: Math.round(ms), results: r.results.length, statements: Object.fromEntries(counts) }));
    for (const [k, e] of [...timeBySql].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) console.log(`  ${Math.round(e.ms)} ms ${e.n}× ${k}`);
  }
} finally {
  project.remove();
  await admin.close();
  await server.stop();
}
