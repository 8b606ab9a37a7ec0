/**
 * Capture throughput: rows/s from a PostgreSQL OLTP into DuckDB and into PostgreSQL (a second
 * database on the same throwaway server), for one large practice and for many small ones.
 * Last line: {"duckdb": {"large_rows_per_s", "small_rows_per_s"}, "postgres": {...}, ...}
 * Sizes: BENCH_CAPTURE_LARGE (1,000,000), BENCH_CAPTURE_SMALL (1,000 practices) × BENCH_CAPTURE_PER_SMALL (50).
 * Rows per chunk (per warehouse transaction): the engine's default (defaultChunkRows: DuckDB
 * 491,520, PostgreSQL 50,000), or BENCH_CAPTURE_CHUNK, or per engine
 * BENCH_CAPTURE_CHUNK_DUCKDB / BENCH_CAPTURE_CHUNK_POSTGRES. DuckDB writes a transaction that
 * appends 122,880 rows (a row group) or more straight to the database file instead of its WAL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { captureTenantSlice, defaultChunkRows, type CaptureSpec } from '../src/ingest/capture.ts';
import { PgOltpSource } from '../src/adapters/postgres/pg-oltp-source.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { generateBenchOltp, smallTenants } from './lib/capture-data.ts';

const LARGE = Number(process.env.BENCH_CAPTURE_LARGE ?? 1_000_000);
const SMALL = Number(process.env.BENCH_CAPTURE_SMALL ?? 1_000);
const PER_SMALL = Number(process.env.BENCH_CAPTURE_PER_SMALL ?? 50);
const CHUNK = process.env.BENCH_CAPTURE_CHUNK === undefined ? undefined : Number(process.env.BENCH_CAPTURE_CHUNK);
const CHUNK_DUCKDB = Number(process.env.BENCH_CAPTURE_CHUNK_DUCKDB ?? CHUNK ?? defaultChunkRows({ kind: 'duckdb' }));
const CHUNK_POSTGRES = Number(process.env.BENCH_CAPTURE_CHUNK_POSTGRES ?? CHUNK ?? defaultChunkRows({ kind: 'postgres' }));
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

async function main(): Promise<void> {
  const server = await startThrowawayPostgres();
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

    const duck = await DuckDBAdapter.open({ path: join(dir, 'warehouse.duckdb'), connections: 2 });
    const duckLarge = await measure(duck, source, ['p_large'], LARGE, 1);
    console.error(`duckdb large: ${duckLarge} rows/s`);
    const duckSmall = await measure(duck, source, small, SMALL * PER_SMALL, 2);
    console.error(`duckdb small: ${duckSmall} rows/s`);
    await duck.close();
    result.duckdb = { large_rows_per_s: duckLarge, small_rows_per_s: duckSmall };

    const whUrl = new URL(server.url);
    whUrl.pathname = '/warehouse';
    const pgWh = await createPostgresAdapter({ url: whUrl.toString(), poolSize: 4 });
    const pgLarge = await measure(pgWh, source, ['p_large'], LARGE, 1);
    console.error(`postgres large: ${pgLarge} rows/s`);
    const pgSmall = await measure(pgWh, source, small, SMALL * PER_SMALL, 2);
    console.error(`postgres small: ${pgSmall} rows/s`);
    await pgWh.close();
    result.postgres = { large_rows_per_s: pgLarge, small_rows_per_s: pgSmall };
    result.rows = { large: LARGE, small_practices: SMALL, rows_per_small: PER_SMALL, chunk_rows_duckdb: CHUNK_DUCKDB, chunk_rows_postgres: CHUNK_POSTGRES };
    await source.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
