/**
 * `npm run bench:pseudonymize`: person tokens per second for 1,000,000 synthetic patients
 * (generated identities, no real data) on DuckDB and on PostgreSQL, and in Node alone.
 *
 *  1. compute_only: the identities generated in Node (untimed), then timed: normalizeIdentity,
 *     personToken and dateShiftDays for each. Its rows are also the expected result below.
 *  2. Per engine (a DuckDB file in a temp directory; a throwaway PostgreSQL server, or a fresh
 *     database on TSFORM_TEST_PG_URL): bench_pseudo.identity filled with the same identities by
 *     one INSERT … SELECT (untimed); then timed end to end through the Adapter interface:
 *     reads by primary-key range (keyset, no OFFSET), tokens and date shifts in Node, `Session.insertText` into an
 *     all-VARCHAR staging table, one INSERT … SELECT casting into the typed map table
 *     (bench/lib/pseudo-pipeline.ts).
 *  3. Each engine's map is checked against Node's rows (count, distinct tokens, sum of shifts,
 *     smallest and largest token): a fast wrong answer would not count.
 *  4. Linkage (issue 17), in Node only, on the first PSEUDO_BENCH_LINKAGE_PATIENTS identities
 *     (default 200000; all of them hold ~40 hashes each): identity digest, match keys and guard
 *     hashes per record, then one resolution of all records into persons (bench/lib/linkage-compute.ts).
 *     The engine runs above still write the token map only: the vault's match-key table and its
 *     writes are not in their figures.
 * Progress goes to stderr; the last stdout line is one JSON object:
 *   {"patients", "duckdb_tokens_per_s", "postgres_tokens_per_s", "compute_only_tokens_per_s",
 *    "linkage": {"records", "match_keys_per_s", "resolve_per_s", "persons"}}
 * No timing is asserted. Temp files and the server are removed, also on failure.
 *
 * Env: PSEUDO_BENCH_PATIENTS (default 1000000), PSEUDO_BENCH_CHUNK (rows per read, default 50000).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { generateKey, keyFingerprint } from '../src/security/pseudonymize.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { linkageCompute } from './lib/linkage-compute.ts';
import { identityTableSql, personCount, syntheticIdentity, type SyntheticIdentityRow } from './lib/pseudo-identities.ts';
import { checksumOf, createMapTables, mapChecksum, tokenizeThroughAdapter, tokenRow, type MapChecksum, type PipelineFigures } from './lib/pseudo-pipeline.ts';

const T0 = performance.now();
const log = (msg: string) => process.stderr.write(`[bench:pseudonymize ${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);

const PATIENTS = positiveInt('PSEUDO_BENCH_PATIENTS', 1_000_000);
const CHUNK = positiveInt('PSEUDO_BENCH_CHUNK', 50_000);
const LINKAGE_PATIENTS = positiveInt('PSEUDO_BENCH_LINKAGE_PATIENTS', 200_000);

function positiveInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

class BenchAssertion extends Error {
  override name = 'BenchAssertion';
}

function checkSame(engine: string, got: MapChecksum, expected: MapChecksum): void {
  for (const k of Object.keys(expected) as (keyof MapChecksum)[]) {
    if (got[k] !== expected[k]) throw new BenchAssertion(`${engine}: map ${k} is ${got[k]}, Node computed ${expected[k]}`);
  }
}

const perSecond = (rows: number, ms: number) => Math.round(rows / (ms / 1000));
const round = (ms: number) => Math.round(ms);

function computeOnly(key: Buffer, identities: readonly SyntheticIdentityRow[]): { perS: number; expected: MapChecksum } {
  // Warm-up on a slice: JIT and the HMAC code paths, as the database runs get after their first chunk.
  for (let i = 0; i < Math.min(20_000, identities.length); i++) tokenRow(key, identities[i]!);
  const t = performance.now();
  const out = identities.map((r) => tokenRow(key, r));
  const ms = performance.now() - t;
  log(`compute only: ${identities.length} rows in ${round(ms)} ms`);
  return { perS: perSecond(identities.length, ms), expected: checksumOf(out) };
}

async function runEngine(name: string, adapter: Adapter, key: Buffer, expected: MapChecksum): Promise<number> {
  let t = performance.now();
  for (const sql of identityTableSql(adapter.kind, PATIENTS)) await adapter.query(sql);
  if (adapter.kind === 'postgres') await adapter.query('ANALYZE bench_pseudo.identity');
  await createMapTables(adapter);
  log(`${name}: ${PATIENTS} identities generated in the database in ${round(performance.now() - t)} ms (not timed)`);
  const figures: PipelineFigures = await tokenizeThroughAdapter(adapter, key, CHUNK);
  const { total_ms, ...parts } = figures;
  log(`${name}: ${figures.rows} rows in ${round(total_ms)} ms; ${Object.entries(parts).map(([k, v]) => `${k} ${round(v)}`).join(', ')}`);
  t = performance.now();
  checkSame(name, await mapChecksum(adapter), expected);
  log(`${name}: map checked against Node's rows in ${round(performance.now() - t)} ms`);
  if (figures.rows !== PATIENTS) throw new BenchAssertion(`${name}: read ${figures.rows} rows, expected ${PATIENTS}`);
  return perSecond(figures.rows, total_ms);
}

async function main(): Promise<void> {
  const key = generateKey();
  log(`${PATIENTS} synthetic patients (${personCount(PATIENTS)} persons), chunks of ${CHUNK}, fresh key ${keyFingerprint(key)}`);
  // Other work on the machine skews every figure: say how busy it was.
  log(`${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  let t = performance.now();
  const identities = Array.from({ length: PATIENTS }, (_, i) => syntheticIdentity(i, personCount(PATIENTS)));
  log(`generated in Node in ${round(performance.now() - t)} ms (not timed)`);
  const { perS: computePerS, expected } = computeOnly(key, identities);
  const linkage = linkageCompute(key, identities.slice(0, LINKAGE_PATIENTS));
  log(`linkage: ${linkage.records} records, match keys ${linkage.match_keys_per_s}/s, resolution ${linkage.resolve_per_s}/s, ${linkage.persons} persons`);
  // Record i belongs to synthetic person i mod personCount: a resolution that merges or splits them is wrong, however fast.
  const expectedPersons = Math.min(linkage.records, personCount(PATIENTS));
  if (linkage.persons !== expectedPersons) throw new BenchAssertion(`linkage: ${linkage.persons} persons, the synthetic data holds ${expectedPersons}`);
  identities.length = 0;
  log(`expected: ${expected.rows} rows, ${expected.persons} distinct person tokens`);

  let duckdbPerS: number;
  const dir = await mkdtemp(join(tmpdir(), 'tsform-bench-pseudo-'));
  try {
    const duck = await DuckDBAdapter.open({ path: join(dir, 'bench.duckdb'), connections: 2 });
    try {
      duckdbPerS = await runEngine('duckdb', duck, key, expected);
    } finally {
      await duck.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  let postgresPerS: number;
  let server: ThrowawayPostgres | undefined;
  try {
    t = performance.now();
    server = await startThrowawayPostgres();
    log(`postgres: server ready in ${round(performance.now() - t)} ms`);
    const pg = await createPostgresAdapter({ url: server.url, poolSize: 2, applicationName: 'bench:pseudonymize' });
    try {
      postgresPerS = await runEngine('postgres', pg, key, expected);
    } finally {
      await pg.close();
    }
  } finally {
    await server?.stop();
  }

  log(`load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(
    JSON.stringify({
      patients: PATIENTS,
      duckdb_tokens_per_s: duckdbPerS,
      postgres_tokens_per_s: postgresPerS,
      compute_only_tokens_per_s: computePerS,
      linkage,
    }),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:pseudonymize failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
