/**
 * `npx tsx bench/lib/capture-profile.ts`: one onboarding capture of bench:capture's large practice
 * into DuckDB with the warehouse's time attributed to statements (fleet-profile.ts). Prints JSON.
 * For finding where the large practice's seconds go (bench:capture measures, this explains):
 * `process_cpu_s` is this process's CPU (Node and DuckDB's threads), `top` the warehouse
 * statements by summed time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { captureTenantSlice, defaultChunkRows } from '../../src/ingest/capture.ts';
import { startThrowawayPostgres } from '../../test/support/postgres.ts';
import { generateBenchOltp } from './capture-data.ts';
import { profileAdapter } from './fleet-profile.ts';

const LARGE = Number(process.env.BENCH_CAPTURE_LARGE ?? 1_000_000);
const RUNS = Number(process.env.BENCH_CAPTURE_RUNS ?? 2);
const server = await startThrowawayPostgres({ binaries: 'machine-first' });
const dir = mkdtempSync(join(tmpdir(), 'tsform-capture-profile-'));
try {
  const admin = await createPostgresAdapter({ url: server.url });
  await generateBenchOltp(admin, { large: LARGE, small: 1, perSmall: 1 });
  await admin.close();
  const source = await PgOltpSource.open(server.url);
  for (let i = 0; i < RUNS; i++) {
    const duck = await DuckDBAdapter.open({ path: join(dir, `w${i}.duckdb`), connections: 2 });
    const { adapter, profile } = profileAdapter(duck, (sql) => `sql: ${sql.replace(/\s+/g, ' ').trim().slice(0, 70)}`);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await captureTenantSlice(adapter, source, { table: 'encounters_bench', key: ['encounter_id'], tenantColumn: 'practice_id' }, ['p_large'], { chunkRows: defaultChunkRows(duck), concurrency: 1 });
    const s = (performance.now() - t0) / 1000;
    // this process's CPU: Node's own thread and DuckDB's (the OLTP server's is not in it)
    const cpu = process.cpuUsage(cpu0);
    const rows = [...r.rowsByTenant.values()].reduce((a, b) => a + b, 0);
    const top = Object.entries(profile.seconds).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => ({ k, s: Math.round(v * 1000) / 1000, n: profile.counts[k] }));
    process.stdout.write(`${JSON.stringify({ run: i, rows, seconds: s, rows_per_s: Math.round(rows / s), process_cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100, top }, null, 1)}\n`);
    await duck.close();
  }
  await source.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
