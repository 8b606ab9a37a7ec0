import type pg from 'pg';
import type { Tenant } from '../../src/project/types.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';

/**
 * The data set of `npm run bench:rls`, generated inside PostgreSQL (generate_series: no row
 * travels through Node). Shaped like the probe in notes/postgres-rls.md:
 *
 *   rows(practice i) = FLOOR + ceil(ZIPF_ROWS · (1/i) / H(tenants))      (i = 1 … tenants)
 *
 * With 1,000 practices: p_0001 has 402,777 rows, the median practice ~2,800, 5,000,xxx in all.
 * Patients and providers per practice are proportional to its size; started_at is uniform over
 * the 3 years before today (UTC midnight). Rows are stored practice by practice, as tsform's
 * per-practice slice materialisation leaves them.
 *
 * Every value reaches SQL as a bound parameter; identifiers go through quoteIdent.
 */

export const SCHEMA = 'staging';
export const TABLE = 'stg_encounters';
export const META_SCHEMA = 'tsform_meta';
export const TENANTS_TABLE = 'tenants';
export const COMPOSITE_INDEX = 'stg_encounters__practice_id_started_at_idx';

export interface DataShape {
  tenants: number;
  /** Rows every practice has at least. */
  floorRows: number;
  /** Rows spread ∝ 1/i over the practices on top of the floor. */
  zipfRows: number;
}

export const DEFAULT_SHAPE: DataShape = { tenants: 1000, floorRows: 2000, zipfRows: 3_000_000 };

const TIME_ZONES = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix', 'America/Los_Angeles', 'America/Anchorage', 'Pacific/Honolulu'];
const ENCOUNTER_CLASSES = ['ambulatory', 'wellness', 'outpatient', 'urgentcare', 'emergency', 'inpatient', 'home', 'virtual'];

export function practiceId(i: number): string {
  return `p_${String(i).padStart(4, '0')}`;
}

export function benchTenants(shape: DataShape): Tenant[] {
  return Array.from({ length: shape.tenants }, (_, k) => ({
    id: practiceId(k + 1),
    name: `Synthetic practice ${k + 1}`,
    timezone: TIME_ZONES[k % TIME_ZONES.length]!,
    readyBy: '06:00',
    tags: [k === 0 ? 'large' : 'small'],
    pool: 'steady',
    research: true,
    file: 'tenants.yml',
  }));
}

/** Schemas owned by the (non-superuser) owner role, the two tables, owned by it too. */
export async function createTables(c: pg.Client, owner: string): Promise<void> {
  const enc = quoteRelation(SCHEMA, TABLE);
  const ten = quoteRelation(META_SCHEMA, TENANTS_TABLE);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(SCHEMA)} AUTHORIZATION ${quoteIdent(owner)}`);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(META_SCHEMA)} AUTHORIZATION ${quoteIdent(owner)}`);
  await c.query(`DROP TABLE IF EXISTS ${enc}`);
  await c.query(`DROP TABLE IF EXISTS ${ten}`);
  await c.query(`CREATE TABLE ${enc} (
    practice_id varchar NOT NULL,
    encounter_id varchar NOT NULL,
    patient_id varchar NOT NULL,
    provider_id varchar NOT NULL,
    encounter_class varchar NOT NULL,
    started_at timestamptz NOT NULL,
    total_claim_cost numeric(18, 2) NOT NULL
  )`);
  // the tenants relation as tsform materialises it (src/execute/materialize.ts loadTenantsText)
  await c.query(`CREATE TABLE ${ten} (practice_id varchar, name varchar, timezone varchar, ready_by varchar, pool varchar, tags varchar)`);
  await c.query(`ALTER TABLE ${enc} OWNER TO ${quoteIdent(owner)}`);
  await c.query(`ALTER TABLE ${ten} OWNER TO ${quoteIdent(owner)}`);
}

export interface Generated {
  rows: number;
  sizes: Map<string, number>;
}

export async function generateData(c: pg.Client, shape: DataShape, tenants: readonly Tenant[]): Promise<Generated> {
  const enc = quoteRelation(SCHEMA, TABLE);
  const ten = quoteRelation(META_SCHEMA, TENANTS_TABLE);
  await c.query(`INSERT INTO ${ten} (practice_id, name, timezone, ready_by, pool, tags) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`, [
    tenants.map((t) => t.id),
    tenants.map((t) => t.name),
    tenants.map((t) => t.timezone),
    tenants.map((t) => t.readyBy),
    tenants.map((t) => t.pool),
    tenants.map((t) => t.tags.join(',')),
  ]);
  await c.query('DROP TABLE IF EXISTS pg_temp.bench_practices');
  await c.query('CREATE TEMPORARY TABLE bench_practices (i int PRIMARY KEY, practice_id varchar NOT NULL, n_rows int, n_patients int, n_providers int)');
  await c.query(
    `INSERT INTO bench_practices (i, practice_id)
     SELECT ord::int, id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord)`,
    [tenants.map((t) => t.id)],
  );
  await c.query(
    `UPDATE bench_practices b
        SET n_rows = $1::int + ceil($2::numeric * (1.0 / b.i) / h.total)::int
       FROM (SELECT sum(1.0 / i) AS total FROM bench_practices) h`,
    [shape.floorRows, shape.zipfRows],
  );
  // ~6 encounters per patient, ~1 provider per 1,500 encounters (at least 3)
  await c.query('UPDATE bench_practices SET n_patients = greatest(50, n_rows / 6), n_providers = greatest(3, n_rows / 1500)');
  await c.query('SELECT setseed(0.4242)');
  // One statement, no parallelism (INSERT … SELECT runs serially): deterministic with setseed.
  const ins = await c.query(
    `INSERT INTO ${enc} (practice_id, encounter_id, patient_id, provider_id, encounter_class, started_at, total_claim_cost)
     SELECT p.practice_id,
            p.practice_id || '_e' || g,
            p.practice_id || '_pt' || (1 + floor(random() * p.n_patients))::int,
            p.practice_id || '_pr' || (1 + floor(random() * p.n_providers))::int,
            ($1::text[])[1 + floor(cardinality($1::text[]) * random() ^ 2)::int],
            date_trunc('day', now()) - random() * interval '1095 days',
            round((40 + 4000 * random() ^ 3)::numeric, 2)
       FROM (SELECT * FROM bench_practices ORDER BY i) p
      CROSS JOIN LATERAL generate_series(1, p.n_rows) AS g`,
    [ENCOUNTER_CLASSES],
  );
  const { rows } = await c.query<{ practice_id: string; n_rows: number }>('SELECT practice_id, n_rows FROM bench_practices ORDER BY i');
  await c.query('DROP TABLE bench_practices');
  return { rows: ins.rowCount ?? 0, sizes: new Map(rows.map((r) => [r.practice_id, Number(r.n_rows)])) };
}

/** The composite index of notes/postgres-rls.md; the template adds (practice_id) on protect. */
export async function createCompositeIndex(c: pg.Client): Promise<void> {
  await c.query(`CREATE INDEX IF NOT EXISTS ${quoteIdent(COMPOSITE_INDEX)} ON ${quoteRelation(SCHEMA, TABLE)} (practice_id, started_at)`);
}
