import type { Adapter } from '../../src/adapters/adapter.ts';

/**
 * oltp.encounters_bench, shaped like the demo encounters (16 columns + deleted_at): one large
 * practice `p_large` and `small` practices `p_small_0000…` of `perSmall` rows each.
 */
export async function generateBenchOltp(oltp: Adapter, opts: { large: number; small: number; perSmall: number }): Promise<void> {
  await oltp.query('CREATE SCHEMA IF NOT EXISTS oltp');
  await oltp.query('DROP TABLE IF EXISTS oltp.encounters_bench');
  await oltp.query(`CREATE TABLE oltp.encounters_bench (
    practice_id text NOT NULL, encounter_id text NOT NULL, patient_id text, provider_id text, payer_id text,
    encounter_class text, code text, description text, started_at timestamptz, stopped_at timestamptz,
    base_encounter_cost numeric(18,2), total_claim_cost numeric(18,2), payer_coverage numeric(18,2),
    reason_code text, reason_description text, updated_at timestamptz NOT NULL, deleted_at timestamptz)`);
  const fill = (practice: string, n: string) => `
    INSERT INTO oltp.encounters_bench
    SELECT ${practice}, md5('e' || g), md5('p' || (g % 5000)), md5('v' || (g % 40)), md5('y' || (g % 9)),
           (ARRAY['wellness','ambulatory','outpatient','emergency'])[1 + g % 4], (162673000 + g % 50)::text,
           'General examination of patient (procedure)', ts, ts + interval '40 minutes',
           (g % 50000) / 100.0, (g % 90000) / 100.0, (g % 30000) / 100.0,
           CASE WHEN g % 3 = 0 THEN (59621000 + g % 7)::text END, CASE WHEN g % 3 = 0 THEN 'Essential hypertension (disorder)' END,
           ts + interval '40 minutes', NULL
      FROM generate_series(1, ${n}) AS g, LATERAL (SELECT timestamptz '2015-01-01' + g * interval '37 seconds' AS ts) t`;
  await oltp.query(fill(`'p_large'`, String(Math.floor(opts.large))));
  await oltp.query(fill(`'p_small_' || lpad((g % ${Math.floor(opts.small)})::text, 4, '0')`, String(Math.floor(opts.small * opts.perSmall))));
  await oltp.query('ALTER TABLE oltp.encounters_bench ADD PRIMARY KEY (practice_id, encounter_id)');
  await oltp.query('CREATE INDEX encounters_bench_capture_idx ON oltp.encounters_bench (practice_id, updated_at, encounter_id)');
  // what the README asks of an OLTP: the sweep for moved rows reads changes in updated_at order
  await oltp.query('CREATE INDEX encounters_bench_updated_idx ON oltp.encounters_bench (updated_at)');
  await oltp.query('VACUUM ANALYZE oltp.encounters_bench');
}

export function smallTenants(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `p_small_${String(i).padStart(4, '0')}`);
}
