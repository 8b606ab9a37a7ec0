import { createHash } from 'node:crypto';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { FleetPractice } from './fleet-project.ts';

/**
 * Synthea-shaped raw tables (`raw.encounters`, `raw.patients`, `raw.providers`) generated inside
 * DuckDB from a small practices table (range + hashing, no row passes through Node), each
 * written sorted by practice_id: tsform processes practices in id order and DuckDB's zonemaps
 * only skip blocks when storage is ordered by practice (notes/duckdb-fanout.md).
 *
 * Values are invented and deterministic (hashes of practice id and row number); ids look like
 * Synthea's UUIDs (36 characters) so that storage is about the real size.
 */

export interface GeneratedData {
  encounters: number;
  patients: number;
  providers: number;
  ms: number;
}

const CLASSES = `['ambulatory','ambulatory','ambulatory','wellness','wellness','outpatient','outpatient','urgentcare','emergency','inpatient']`;
const CODES = `['185345009','185345009','185345009','410620009','162673000','185349003','185349003','702927004','50849002','32485007']`;
const DESCRIPTIONS = `['Encounter for symptom','Encounter for symptom','Encounter for symptom','Well child visit (procedure)','General examination of patient (procedure)','Encounter for check up (procedure)','Encounter for check up (procedure)','Urgent care clinic (procedure)','Emergency room admission (procedure)','Hospital admission']`;
const REASONS = `['10509002','444814009','195662009','72892002','15777000','271737000','38341003','40055000']`;
const REASON_TEXT = `['Acute bronchitis (disorder)','Viral sinusitis (disorder)','Acute viral pharyngitis (disorder)','Normal pregnancy','Prediabetes','Anemia (disorder)','Hypertension','Chronic sinusitis (disorder)']`;
const PAYERS = `[${Array.from({ length: 10 }, (_, i) => `'${createHash('md5').update(`payer:${i}`).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')}'`).join(',')}]`;
const FIRST = `['Avery','Jordan','Riley','Casey','Morgan','Quinn','Rowan','Sage','Emerson','Finley','Harper','Kendall']`;
const LAST = `['Fleetwood','Testa','Synthwell','Samplesen','Benchley','Mockford','Datum','Rowley']`;
const CITIES = `['Springfield','Riverton','Fairview','Greenville','Madison','Clinton','Franklin','Georgetown']`;
const STATES = `['MA','NY','IL','TX','CO','AZ','CA','WA','AK','HI']`;
const SPECIALITIES = `['GENERAL PRACTICE','GENERAL PRACTICE','GENERAL PRACTICE','INTERNAL MEDICINE','PEDIATRICS','FAMILY MEDICINE']`;

/** Picks element `(h % n) + 1` of a DuckDB list literal (UBIGINT arithmetic: mixing in BIGINT makes it HUGEINT, ~10× slower). */
const pick = (list: string, h: string) => `${list}[1 + ((${h}) % ${list.split("','").length})::BIGINT]`;
/** 36-character UUID-looking id from an md5 hex digest. */
const uuid = (text: string) => `uuidish(md5(${text}))`;

export const ENCOUNTERS_SQL = `
        CREATE OR REPLACE TABLE raw.encounters AS
        WITH r AS (
          SELECT practice_id, n_pat, n_prov, unnest(range(n_enc)) AS i FROM fleet_practices
        ),
        h AS (
          SELECT practice_id, n_pat, n_prov, i, hash(practice_id, i) AS h1, hash(practice_id, i, 7) AS h2 FROM r
        ),
        t AS (
          SELECT *, TIMESTAMPTZ '2021-01-01 00:00:00+00' + to_seconds((h2 % 94608000)::BIGINT) AS started_at FROM h
        )
        SELECT
          practice_id,
          ${uuid(`practice_id || ':e:' || i`)} AS encounter_id,
          ${uuid(`practice_id || ':pt:' || ((h1 >> 12) % n_pat)`)} AS patient_id,
          ${uuid(`practice_id || ':pr:' || ((h2 >> 12) % n_prov)`)} AS provider_id,
          ${pick(PAYERS, 'h1 >> 30')} AS payer_id,
          ${pick(CLASSES, 'h1')} AS encounter_class,
          ${pick(CODES, 'h1')} AS code,
          ${pick(DESCRIPTIONS, 'h1')} AS description,
          started_at,
          started_at + to_minutes((15 + (h1 >> 8) % 120)::BIGINT) AS stopped_at,
          CAST(((h2 >> 20) % 20000)::BIGINT / 100 AS DECIMAL(18, 2)) AS base_encounter_cost,
          CAST(((h2 >> 20) % 20000 + (h1 >> 24) % 50000)::BIGINT / 100 AS DECIMAL(18, 2)) AS total_claim_cost,
          CAST(((h1 >> 24) % 30000)::BIGINT / 100 AS DECIMAL(18, 2)) AS payer_coverage,
          CASE WHEN (h1 >> 40) % 2 = 0 THEN NULL ELSE ${pick(REASONS, 'h2 >> 40')} END AS reason_code,
          CASE WHEN (h1 >> 40) % 2 = 0 THEN NULL ELSE ${pick(REASON_TEXT, 'h2 >> 40')} END AS reason_description,
          started_at + to_minutes((15 + (h1 >> 8) % 120)::BIGINT) AS updated_at
        FROM t
        ORDER BY practice_id, i`;

export async function generateFleetData(path: string, practices: readonly FleetPractice[], threads: number, log: (m: string) => void): Promise<GeneratedData> {
  const started = performance.now();
  const instance = await DuckDBInstance.create(path, { threads: String(threads) });
  const conn = await instance.connect();
  try {
    await conn.run("SET TimeZone = 'UTC'");
    await conn.run('CREATE SCHEMA IF NOT EXISTS raw');
    await conn.run(
      `CREATE OR REPLACE TEMP MACRO uuidish(x) AS substr(x, 1, 8) || '-' || substr(x, 9, 4) || '-' || substr(x, 13, 4) || '-' || substr(x, 17, 4) || '-' || substr(x, 21, 12)`,
    );
    await conn.run('CREATE OR REPLACE TEMP TABLE fleet_practices (practice_id VARCHAR, n_enc BIGINT, n_pat UBIGINT, n_prov UBIGINT, tz VARCHAR)');
    const values = practices.map((p) => `('${p.id}', ${p.encounters}, ${p.patients}, ${p.providers}, '${p.timezone}')`).join(',\n');
    await conn.run(`INSERT INTO fleet_practices VALUES ${values}`);

    await timed(log, 'raw.encounters', () =>
      conn.run(ENCOUNTERS_SQL),
    );

    await timed(log, 'raw.patients', () =>
      conn.run(`
        CREATE OR REPLACE TABLE raw.patients AS
        WITH r AS (SELECT practice_id, unnest(range(n_pat::BIGINT)) AS k FROM fleet_practices),
        h AS (SELECT practice_id, k, hash(practice_id, 'pt', k) AS h1 FROM r)
        SELECT
          practice_id,
          ${uuid(`practice_id || ':pt:' || k`)} AS patient_id,
          'MRN' || lpad(((h1 >> 3) % 100000000)::VARCHAR, 8, '0') AS mrn,
          DATE '1930-01-01' + ((h1 >> 5) % 32000)::INTEGER AS birth_date,
          CASE WHEN h1 % 23 = 0 THEN DATE '2021-01-01' + ((h1 >> 9) % 1000)::INTEGER END AS death_date,
          '999-' || lpad(((h1 >> 11) % 100)::VARCHAR, 2, '0') || '-' || lpad(((h1 >> 17) % 10000)::VARCHAR, 4, '0') AS ssn,
          'S' || lpad(((h1 >> 19) % 100000000)::VARCHAR, 8, '0') AS drivers_license,
          CASE WHEN h1 % 3 = 0 THEN 'X' || lpad(((h1 >> 21) % 100000000)::VARCHAR, 8, '0') END AS passport,
          CASE WHEN h1 % 2 = 0 THEN 'Mr.' ELSE 'Ms.' END AS prefix,
          ${pick(FIRST, 'h1 >> 23')} || ((h1 >> 27) % 1000)::VARCHAR AS first_name,
          CASE WHEN h1 % 4 = 0 THEN ${pick(FIRST, 'h1 >> 29')} END AS middle_name,
          ${pick(LAST, 'h1 >> 31')} || ((h1 >> 35) % 1000)::VARCHAR AS last_name,
          NULL::VARCHAR AS suffix,
          NULL::VARCHAR AS maiden_name,
          CASE WHEN h1 % 5 < 3 THEN 'M' ELSE 'S' END AS marital_status,
          ${pick(`['white','black','asian','native','other']`, 'h1 >> 37')} AS race,
          CASE WHEN h1 % 7 = 0 THEN 'hispanic' ELSE 'nonhispanic' END AS ethnicity,
          CASE WHEN h1 % 2 = 0 THEN 'M' ELSE 'F' END AS sex,
          ${pick(CITIES, 'h1 >> 39')} || ' ' || ${pick(STATES, 'h1 >> 41')} || ' US' AS birthplace,
          ((h1 >> 43) % 999 + 1)::VARCHAR || ' Synthetic Way' AS address,
          ${pick(CITIES, 'h1 >> 45')} AS city,
          ${pick(STATES, 'h1 >> 47')} AS state,
          ${pick(CITIES, 'h1 >> 49')} || ' County' AS county,
          lpad(((h1 >> 51) % 100000)::VARCHAR, 5, '0') AS zip,
          20 + ((h1 >> 13) % 4000) / 100.0 AS lat,
          -70 - ((h1 >> 15) % 5000) / 100.0 AS lon,
          TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(((h1 >> 7) % 1000000)::BIGINT) AS updated_at
        FROM h
        ORDER BY practice_id, k`),
    );

    await timed(log, 'raw.providers', () =>
      conn.run(`
        CREATE OR REPLACE TABLE raw.providers AS
        WITH r AS (SELECT practice_id, unnest(range(n_prov::BIGINT)) AS k FROM fleet_practices),
        h AS (SELECT practice_id, k, hash(practice_id, 'pr', k) AS h1 FROM r)
        SELECT
          practice_id,
          ${uuid(`practice_id || ':pr:' || k`)} AS provider_id,
          ${pick(FIRST, 'h1 >> 3')} || ' ' || ${pick(LAST, 'h1 >> 7')} || ((h1 >> 11) % 1000)::VARCHAR AS name,
          CASE WHEN h1 % 2 = 0 THEN 'M' ELSE 'F' END AS sex,
          ${pick(SPECIALITIES, 'h1 >> 13')} AS speciality,
          ((h1 >> 17) % 999 + 1)::VARCHAR || ' Clinic Road' AS address,
          ${pick(CITIES, 'h1 >> 19')} AS city,
          ${pick(STATES, 'h1 >> 23')} AS state,
          lpad(((h1 >> 29) % 100000)::VARCHAR, 5, '0') AS zip,
          20 + ((h1 >> 31) % 4000) / 100.0 AS lat,
          -70 - ((h1 >> 37) % 5000) / 100.0 AS lon,
          TIMESTAMPTZ '2024-01-01 00:00:00+00' AS updated_at
        FROM h
        ORDER BY practice_id, k`),
    );
    await conn.run('CHECKPOINT');
    const counts = await one(conn, `SELECT (SELECT count(*) FROM raw.encounters) AS e, (SELECT count(*) FROM raw.patients) AS p, (SELECT count(*) FROM raw.providers) AS v`);
    return { encounters: Number(counts.e), patients: Number(counts.p), providers: Number(counts.v), ms: performance.now() - started };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

async function timed(log: (m: string) => void, what: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  log(`generated ${what} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

export async function one(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>> {
  const reader = await conn.runAndReadAll(sql);
  return (reader.getRowObjectsJson()[0] ?? {}) as Record<string, unknown>;
}
