/**
 * Synthetic patient identities for bench:pseudonymize — generated, never real data. The same
 * rows come out of SQL (to fill a table in DuckDB or PostgreSQL, untimed) and out of
 * `syntheticIdentity` in Node (for the compute-only figure and the expected checksums), so that
 * what the database path wrote can be checked against what Node computed.
 *
 * Row i belongs to person k = i mod persons, so with persons < patients some persons have
 * records at two practices (i mod 997 differs between i and i + persons). Names look like
 * Synthea's ("First123"); every 50th person has a name with a diacritic and punctuation (the
 * slow Unicode path); every 10th has no SSN; SSNs are 999-…, which the SSA never issues.
 */
import type { TargetKind } from '../../src/adapters/adapter.ts';

export const BENCH_SCHEMA = 'bench_pseudo';
export const IDENTITY_TABLE = 'identity';
export const PRACTICES = 997;

export interface SyntheticIdentityRow {
  id: number;
  practice_id: string;
  patient_id: string;
  first_name: string | null;
  last_name: string | null;
  birth_date: string | null;
  sex: string | null;
  ssn: string | null;
}

/** Persons for `patients` rows: 80%, so a fifth of the records are a second practice's record. */
export function personCount(patients: number): number {
  return Math.max(1, Math.floor(patients * 0.8));
}

const DAY_MS = 86_400_000;
const BIRTH_BASE_MS = Date.UTC(1930, 0, 1);

export function syntheticIdentity(i: number, persons: number): SyntheticIdentityRow {
  const k = i % persons;
  const ssnDigits = String(k % 1_000_000).padStart(6, '0');
  return {
    id: i,
    practice_id: `p_${String(i % PRACTICES).padStart(4, '0')}`,
    patient_id: `pat_${String(i).padStart(9, '0')}`,
    first_name: `First${(k * 7) % 5003}`,
    last_name: `${k % 50 === 0 ? "Ö'Brien-" : 'Last'}${(k * 31) % 20011}`,
    birth_date: new Date(BIRTH_BASE_MS + ((k * 7919) % 32000) * DAY_MS).toISOString().slice(0, 10),
    sex: k % 2 === 0 ? 'F' : 'M',
    ssn: k % 10 === 0 ? null : `999-${ssnDigits.slice(0, 2)}-${ssnDigits.slice(2)}`,
  };
}

/**
 * Statements that create and fill `bench_pseudo.identity` with the rows of `syntheticIdentity`.
 * Only the row source differs between the engines; every expression is standard SQL both accept.
 */
export function identityTableSql(kind: TargetKind, patients: number): string[] {
  if (!Number.isSafeInteger(patients) || patients < 1) throw new Error(`patients must be a positive integer, got ${patients}`);
  const persons = personCount(patients);
  const rows = kind === 'duckdb' ? `range(0, ${patients}) AS t(i)` : `generate_series(CAST(0 AS BIGINT), ${patients - 1}) AS t(i)`;
  const text = (expr: string) => `CAST(${expr} AS VARCHAR)`;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${BENCH_SCHEMA}`,
    `CREATE TABLE ${BENCH_SCHEMA}.${IDENTITY_TABLE} (
       id BIGINT PRIMARY KEY,
       practice_id VARCHAR NOT NULL,
       patient_id VARCHAR NOT NULL,
       first_name VARCHAR,
       last_name VARCHAR,
       birth_date DATE,
       sex VARCHAR,
       ssn VARCHAR
     )`,
    `INSERT INTO ${BENCH_SCHEMA}.${IDENTITY_TABLE}
     SELECT i,
            'p_' || lpad(${text(`i % ${PRACTICES}`)}, 4, '0'),
            'pat_' || lpad(${text('i')}, 9, '0'),
            'First' || ${text('(k * 7) % 5003')},
            CASE WHEN k % 50 = 0 THEN 'Ö''Brien-' ELSE 'Last' END || ${text('(k * 31) % 20011')},
            DATE '1930-01-01' + CAST((k * 7919) % 32000 AS INTEGER),
            CASE WHEN k % 2 = 0 THEN 'F' ELSE 'M' END,
            CASE WHEN k % 10 = 0 THEN NULL
                 ELSE '999-' || substr(lpad(${text('k % 1000000')}, 6, '0'), 1, 2) || '-' || substr(lpad(${text('k % 1000000')}, 6, '0'), 3, 4)
            END
       FROM (SELECT i, i % ${persons} AS k FROM ${rows}) AS s`,
  ];
}
