import pg from 'pg';
import type { PostgresAdapter } from '../../../../src/adapters/postgres/postgres-adapter.ts';

/**
 * Three pairs of transactions committed back to back, then twelve over the practices and both
 * tables: inserts, updates that leave updated_at alone, hard deletes and moves between practices.
 * `touch`: updates and moves set updated_at (what an updated_at-filtered incremental model needs
 * to see a row that entered a practice).
 */
export async function workload(admin: PostgresAdapter, url: string, tenants: readonly string[], rand: () => number, round: number, touch = false): Promise<number> {
  const stamp = touch ? ', updated_at = clock_timestamp()' : '';
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let transactions = 0;
  // Two sessions that both wrote, then commit one right after the other: no WAL between the two
  // commit records, so the second starts exactly at the first one's end LSN. Confirming end + 1
  // would make the server skip the second one after a restart.
  const [a, b] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
  await a.connect();
  await b.connect();
  try {
    for (let i = 0; i < 3; i++) {
      const p = pick(tenants);
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ($1, $2, 'pat', now())`, [p, `r${round}-a${i}`]);
      await b.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ($1, $2, 'pat', now())`, [p, `r${round}-b${i}`]);
      await a.query('COMMIT');
      await b.query('COMMIT');
      transactions += 2;
    }
  } finally {
    await a.end();
    await b.end();
  }
  for (let i = 0; i < 12; i++) {
    await admin.transaction(async (s) => {
      await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
      const p = pick(tenants);
      const q = pick(tenants.filter((t) => t !== p));
      await s.query(
        `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, updated_at) SELECT $1, 'r${round}-t${i}-' || g, 'pat', 'new', now() FROM generate_series(1, 3) g`,
        [p],
      );
      await s.query(`UPDATE oltp.encounters SET encounter_class = $2${stamp} WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY md5(encounter_id || $2) LIMIT 3)`, [p, `c${round}-${i}`]);
      await s.query(`UPDATE oltp.procedures SET description = coalesce(description, '') || '+' WHERE practice_id = $1 AND procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 ORDER BY md5(procedure_id || $2) LIMIT 2)`, [q, `${round}-${i}`]);
      await s.query(`DELETE FROM oltp.procedures WHERE practice_id = $1 AND procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 ORDER BY md5(procedure_id || $2) LIMIT 1)`, [p, `d${round}-${i}`]);
      await s.query(`UPDATE oltp.encounters SET practice_id = $2${stamp} WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY md5(encounter_id || $3) LIMIT 1)`, [p, q, `m${round}-${i}`]);
    });
    transactions++;
  }
  return transactions;
}
