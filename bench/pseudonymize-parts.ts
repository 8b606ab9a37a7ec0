/**
 * `tsx bench/pseudonymize-parts.ts`: bench:pseudonymize's Node-side parts, before and after the
 * issue 16 change in one process, alternating (the machine is shared: only ratios mean much):
 *
 *   reads   N identity rows out of DuckDB as row objects (getRowObjectsJson, what the adapter
 *           uses) vs as columns (getColumns, no conversion): what a columnar vault read could save.
 *   tokens  person token + date shift of N records: createHmac with the key checked per call (before)
 *           vs pseudonymizeRecord now (hmac.ts one-shot digests into reused buffers).
 *   ceiling HMAC-SHA256 alone, N identity-sized messages: hmac.ts per CPU second in Node, and
 *           DuckDB's own sha256 over the RFC 2104 construction in SQL (both threads), checked equal
 *           on 1,000 messages. A token costs two HMACs (person token, date shift), so half of
 *           each is what no pipeline on this machine could exceed (issue 16 asks 500k tokens/s).
 *
 * CPU seconds are reported beside wall time. Env: PARTS_ROWS (200000), PARTS_REPEATS (3).
 * The last stdout line is one JSON object.
 */
import { createHmac } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { hmacSha256Hex } from '../src/security/hmac.ts';
import { generateKey, normalizeIdentity, pseudonymizeRecord, recordFallbackIdentity } from '../src/security/pseudonymize.ts';
import { identityTableSql, personCount, type SyntheticIdentityRow } from './lib/pseudo-identities.ts';

const N = Number(process.env.PARTS_ROWS ?? 200_000);
const REPEATS = Number(process.env.PARTS_REPEATS ?? 3);
const READ = `SELECT id, practice_id, patient_id, first_name, last_name, CAST(birth_date AS VARCHAR) AS birth_date, sex, ssn FROM bench_pseudo.identity`;

async function timed(fn: () => Promise<unknown> | unknown): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

/** The token path as it was: createHmac per digest, the key's bytes checked on every call. */
function beforeRecord(key: Buffer, r: SyntheticIdentityRow): [string, number] {
  const hmac = (domain: string, m: string) => {
    if (key.every((b) => b === key[0])) throw new Error('placeholder key');
    return createHmac('sha256', key).update(`${domain}\u0000${m}`, 'utf8').digest('hex');
  };
  const identity = normalizeIdentity({ firstName: r.first_name, lastName: r.last_name, birthDate: r.birth_date, sex: r.sex, ssn: r.ssn }) ?? recordFallbackIdentity(r.practice_id, r.patient_id);
  const token = `pt_${hmac('tsform/person-token/v1', identity)}`;
  const n = Number.parseInt(hmac('tsform/date-shift/v1', token).slice(0, 12), 16) % 360;
  return [token, n < 180 ? n - 180 : n - 179];
}

/** Messages shaped like a person token's (domain, NUL, normalized identity), one per identity row. */
const MESSAGES = `SELECT 'tsform/person-token/v1' || chr(0) || 'id1|' || lower(first_name) || '|' || lower(last_name) || '|' || CAST(birth_date AS VARCHAR) || '|' || coalesce(sex, '') || '|' || coalesce(ssn, '') AS m FROM bench_pseudo.identity`;

async function hmacCeiling(key: Buffer): Promise<{ node_per_cpu_s: number; duckdb_sql_per_s: number; tokens_per_s_at_most: { node_two_cores: number; duckdb_sql: number } }> {
  const messages = (await conn.runAndReadAll(MESSAGES)).getColumns()[0]!.map(String);
  const pad = (byte: number) => {
    const b = Buffer.alloc(64, byte);
    for (let i = 0; i < key.length; i++) b[i]! ^= key[i]!;
    return b.toString('hex');
  };
  // The key's pads as literals: a bench key, generated above, in a bench database.
  const sqlHmac = (m: string) => `sha256(unhex('${pad(0x5c)}') || unhex(sha256(unhex('${pad(0x36)}') || encode(${m}))))`;
  const sample = (await conn.runAndReadAll(`SELECT m, ${sqlHmac('m')} AS h FROM (${MESSAGES} LIMIT 1000)`)).getRows();
  for (const [m, h] of sample) if (hmacSha256Hex(key, String(m)) !== h) throw new Error('SQL HMAC disagrees with hmac.ts');
  const node: { wall: number; cpu: number }[] = [];
  const sql: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < REPEATS; i++) {
    node.push(await timed(() => messages.map((m) => hmacSha256Hex(key, m))));
    sql.push(await timed(() => conn.run(`CREATE OR REPLACE TEMP TABLE hmac_out AS SELECT ${sqlHmac('m')} AS h FROM (${MESSAGES})`)));
  }
  const perCpu = Math.round(messages.length / best(node).cpu);
  const inSql = Math.round(messages.length / best(sql).wall);
  return { node_per_cpu_s: perCpu, duckdb_sql_per_s: inSql, tokens_per_s_at_most: { node_two_cores: perCpu, duckdb_sql: Math.round(inSql / 2) } };
}

const best = (xs: { wall: number; cpu: number }[]) => ({ wall: Math.min(...xs.map((x) => x.wall)), cpu: Math.min(...xs.map((x) => x.cpu)) });
const r3 = (x: number) => Math.round(x * 1000) / 1000;

const adapter = await DuckDBAdapter.open({ path: ':memory:', connections: 1 });
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
try {
  for (const sql of identityTableSql('duckdb', N)) {
    await adapter.query(sql);
    await conn.run(sql);
  }
  // Warm-up: the first conversion of a result runs unoptimized code.
  (await conn.runAndReadAll(READ)).getRowObjectsJson();
  (await conn.runAndReadAll(READ)).getColumns();
  const reads = { before: [] as { wall: number; cpu: number }[], after: [] as { wall: number; cpu: number }[] };
  let rows: SyntheticIdentityRow[] = [];
  for (let i = 0; i < REPEATS; i++) {
    reads.before.push(await timed(async () => (await conn.runAndReadAll(READ)).getRowObjectsJson()));
    reads.after.push(await timed(async () => (await conn.runAndReadAll(READ)).getColumns()));
  }
  rows = (await adapter.query(READ)).rows as unknown as SyntheticIdentityRow[];
  const key = generateKey();
  const tokens = { before: [] as { wall: number; cpu: number }[], after: [] as { wall: number; cpu: number }[] };
  for (let i = 0; i < REPEATS; i++) {
    tokens.before.push(await timed(() => rows.map((r) => beforeRecord(key, r))));
    tokens.after.push(await timed(() => rows.map((r) => pseudonymizeRecord(key, r.practice_id, r.patient_id, { firstName: r.first_name, lastName: r.last_name, birthDate: r.birth_date, sex: r.sex, ssn: r.ssn }))));
  }
  // The same answers: the new path is only faster.
  for (const r of rows.slice(0, 1000)) {
    const a = beforeRecord(key, r);
    const b = pseudonymizeRecord(key, r.practice_id, r.patient_id, { firstName: r.first_name, lastName: r.last_name, birthDate: r.birth_date, sex: r.sex, ssn: r.ssn });
    if (a[0] !== b.personToken || a[1] !== b.dateShiftDays) throw new Error('token paths disagree');
  }
  const ceiling = await hmacCeiling(key);
  const [rb, ra, tb, ta] = [best(reads.before), best(reads.after), best(tokens.before), best(tokens.after)];
  const out = {
    rows: N,
    persons: personCount(N),
    reads_rows_per_s: { row_objects: Math.round(N / rb.wall), columns: Math.round(N / ra.wall), speedup_wall: r3(rb.wall / ra.wall), speedup_cpu: r3(rb.cpu / ra.cpu) },
    tokens_per_s: { before: Math.round(N / tb.wall), after: Math.round(N / ta.wall), speedup_wall: r3(tb.wall / ta.wall), speedup_cpu: r3(tb.cpu / ta.cpu), after_per_cpu_s: Math.round(N / ta.cpu) },
    hmac_ceiling: ceiling,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  conn.closeSync();
  instance.closeSync();
  await adapter.close();
}
