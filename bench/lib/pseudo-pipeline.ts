/**
 * The timed path of bench:pseudonymize, through the Adapter interface only: read identities out
 * of the database in chunks by primary-key range (keyset pagination, see readRange), compute person tokens and date shifts in Node,
 * bulk-write them with `Session.insertText` into an all-VARCHAR staging table, and finally cast
 * them into the typed map table with one INSERT … SELECT.
 *
 * Reading, computing and writing overlap: the next chunk is requested before the current one is
 * tokenized (on another pooled connection), and a chunk's write runs while the next one is
 * computed. Node's token work is synchronous, so the overlap comes from the database working
 * in its own threads or process meanwhile.
 */
import { performance } from 'node:perf_hooks';
import type { Adapter, Row } from '../../src/adapters/adapter.ts';
import { pseudonymizeRecord } from '../../src/security/pseudonymize.ts';
import { BENCH_SCHEMA, IDENTITY_TABLE, type SyntheticIdentityRow } from './pseudo-identities.ts';

export const STAGE_TABLE = 'person_map_stage';
export const MAP_TABLE = 'person_map';
const MAP_COLUMNS = ['practice_id', 'patient_id', 'person_token', 'date_shift_days'] as const;

export interface PipelineFigures {
  rows: number;
  chunks: number;
  total_ms: number;
  /** Time spent waiting for a chunk to arrive (not hidden behind computing). */
  read_wait_ms: number;
  compute_ms: number;
  /** Time spent waiting for a previous chunk's write to finish. */
  write_wait_ms: number;
  /** The final cast of the staging table into the typed map table. */
  cast_ms: number;
}

export interface MapChecksum {
  rows: number;
  persons: number;
  shift_sum: number;
  min_token: string;
  max_token: string;
}

/** One map row, exactly as the vault would compute it: identity, or the per-record fallback. */
export function tokenRow(key: Buffer, r: SyntheticIdentityRow): [string, string, string, string] {
  const fields = { firstName: r.first_name, lastName: r.last_name, birthDate: r.birth_date, sex: r.sex, ssn: r.ssn };
  const { personToken, dateShiftDays } = pseudonymizeRecord(key, r.practice_id, r.patient_id, fields);
  return [r.practice_id, r.patient_id, personToken, String(dateShiftDays)];
}

export async function createMapTables(adapter: Adapter): Promise<void> {
  await adapter.query(`DROP TABLE IF EXISTS ${BENCH_SCHEMA}.${STAGE_TABLE}`);
  await adapter.query(`DROP TABLE IF EXISTS ${BENCH_SCHEMA}.${MAP_TABLE}`);
  await adapter.query(`CREATE TABLE ${BENCH_SCHEMA}.${STAGE_TABLE} (${MAP_COLUMNS.map((c) => `${c} VARCHAR`).join(', ')})`);
  await adapter.query(
    `CREATE TABLE ${BENCH_SCHEMA}.${MAP_TABLE} (practice_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, person_token VARCHAR NOT NULL, date_shift_days INTEGER NOT NULL)`,
  );
}

/**
 * Keyset pagination by key range: chunk n is `lo < id <= lo + width`, and the next starts where
 * it ended. No OFFSET, and no ORDER BY … LIMIT either: DuckDB 1.5 answers `id > $1 ORDER BY id
 * LIMIT 50000` with a full sort of every remaining row (its top-N operator is only chosen for
 * small limits), which made the reads quadratic. A range needs no order at all; DuckDB prunes row
 * groups by their min/max, PostgreSQL walks the primary-key index. The width comes from the key
 * density, so chunks hold `chunkSize` rows on average whatever gaps the ids have.
 */
function readRange(adapter: Adapter, lo: number, hi: number): Promise<Row[]> {
  return adapter
    .query(
      `SELECT id, practice_id, patient_id, first_name, last_name, CAST(birth_date AS VARCHAR) AS birth_date, sex, ssn
         FROM ${BENCH_SCHEMA}.${IDENTITY_TABLE}
        WHERE id > CAST($1 AS BIGINT) AND id <= CAST($2 AS BIGINT)`,
      [lo, hi],
    )
    .then((r) => r.rows);
}

export async function tokenizeThroughAdapter(adapter: Adapter, key: Buffer, chunkSize: number): Promise<PipelineFigures> {
  const t0 = performance.now();
  let readWait = 0;
  let compute = 0;
  let writeWait = 0;
  let rows = 0;
  let chunks = 0;
  const bounds = (await adapter.query(`SELECT min(id) AS lo, max(id) AS hi, count(*) AS n FROM ${BENCH_SCHEMA}.${IDENTITY_TABLE}`)).rows[0]!;
  const [minId, maxId, count] = [Number(bounds.lo), Number(bounds.hi), Number(bounds.n)];
  const width = count === 0 ? 1 : Math.max(1, Math.round((chunkSize * (maxId - minId + 1)) / count));
  let lo = minId - 1;
  const nextRange = (): Promise<Row[]> | undefined => {
    if (count === 0 || lo >= maxId) return undefined;
    const read = readRange(adapter, lo, lo + width);
    lo += width;
    return read;
  };
  let pendingWrite: Promise<void> = Promise.resolve();
  let next = nextRange();
  while (next !== undefined) {
    let t = performance.now();
    const chunk = await next;
    readWait += performance.now() - t;
    next = nextRange(); // requested now, read while this chunk is tokenized

    t = performance.now();
    const out = chunk.map((r) => tokenRow(key, r as unknown as SyntheticIdentityRow));
    compute += performance.now() - t;

    t = performance.now();
    await pendingWrite;
    writeWait += performance.now() - t;
    if (out.length > 0) pendingWrite = adapter.transaction((s) => s.insertText(BENCH_SCHEMA, STAGE_TABLE, MAP_COLUMNS, out));
    rows += chunk.length;
    chunks++;
  }
  let t = performance.now();
  await pendingWrite;
  writeWait += performance.now() - t;

  t = performance.now();
  await adapter.query(
    `INSERT INTO ${BENCH_SCHEMA}.${MAP_TABLE}
     SELECT practice_id, patient_id, person_token, CAST(date_shift_days AS INTEGER) FROM ${BENCH_SCHEMA}.${STAGE_TABLE}`,
  );
  const castMs = performance.now() - t;
  return { rows, chunks, total_ms: performance.now() - t0, read_wait_ms: readWait, compute_ms: compute, write_wait_ms: writeWait, cast_ms: castMs };
}

export async function mapChecksum(adapter: Adapter): Promise<MapChecksum> {
  const { rows } = await adapter.query(
    `SELECT count(*) AS n, count(DISTINCT person_token) AS persons, sum(date_shift_days) AS shift_sum,
            min(person_token) AS min_token, max(person_token) AS max_token
       FROM ${BENCH_SCHEMA}.${MAP_TABLE}`,
  );
  const r = rows[0]!;
  return { rows: Number(r.n), persons: Number(r.persons), shift_sum: Number(r.shift_sum), min_token: String(r.min_token), max_token: String(r.max_token) };
}

/** The checksum of rows computed in Node, to compare with what a database holds. */
export function checksumOf(out: readonly (readonly [string, string, string, string])[]): MapChecksum {
  const tokens = new Set<string>();
  let shiftSum = 0;
  let min = '';
  let max = '';
  for (const [, , token, shift] of out) {
    tokens.add(token);
    shiftSum += Number(shift);
    if (min === '' || token < min) min = token;
    if (token > max) max = token;
  }
  return { rows: out.length, persons: tokens.size, shift_sum: shiftSum, min_token: min, max_token: max };
}
