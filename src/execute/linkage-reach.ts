import type { Row, Session } from '../adapters/adapter.ts';
import { quoteIdent } from '../sql/quote.ts';

/**
 * What one practice's changed identities can move between persons: the records a re-resolution
 * must read, so that each batch of a fleet does not resolve every practice's records again (at
 * 5,000 practices, ~111k records: 13 s and ~0.9 GB of heap per batch, growing with the fleet).
 *
 * Persons are components of a graph whose edges are a shared match key value that is not crowded
 * (held by at most `maxKeyHolders` records of all practices) and a shared person token (the
 * claims of resolve-persons.ts step 3). Resolving a union of whole components, with crowdedness
 * taken from all records, gives those records what resolving everything would give them, and
 * every other component is already its own fixpoint. A change reaches: the changed records, the
 * holders of every key value they hold or held (whether crowded or not: its holder count moved),
 * and the holders of the tokens they held; then everything connected to those.
 */

const KEYS = '__tsf_link_keys';
const CROWDED = '__tsf_link_crowded';
const HELD = '__tsf_link_held';
const REACH = '__tsf_link_reach';
const TEMP = [KEYS, CROWDED, HELD, REACH];

export interface ReachSeeds {
  /** Records (practice, patient) re-keyed or removed in this resolution. */
  records: readonly (readonly [string, string])[];
  /** Key values those records hold now or held before. */
  keys: readonly string[];
}

export interface Reach {
  /** The reached records, as stored (tenant, patient_id, match_keys, guards, sparse). */
  records: Row[];
  /** Token each reached record holds now (tenant, patient_id, person_token). */
  held: Row[];
  /** Crowded key values among the reached records' keys (crowded among all records). */
  crowded: Set<string>;
  /** Crowded key values among all records. */
  crowdedTotal: number;
}

export async function recordsWithinReach(
  s: Session,
  o: { records: string; tokens: string; tenantColumn: string; maxKeyHolders: number; seeds: ReachSeeds },
): Promise<Reach> {
  const tc = quoteIdent(o.tenantColumn);
  try {
    await s.createTempTableAs(KEYS, `SELECT tenant AS t, patient_id AS p, unnest(string_to_array(match_keys, ' ')) AS k FROM ${o.records} WHERE sparse = 0 AND match_keys <> ''`, []);
    await s.createTempTableAs(CROWDED, `SELECT k FROM ${KEYS} GROUP BY k HAVING count(*) > CAST($1 AS INTEGER)`, [o.maxKeyHolders]);
    await s.createTempTableAs(
      HELD,
      `SELECT r.tenant AS t, r.patient_id AS p, v.person_token AS tok FROM ${o.records} r LEFT JOIN ${o.tokens} v ON v.${tc} = r.tenant AND v.patient_id = r.patient_id`,
      [],
    );
    const seeds = [o.seeds.records.map((r) => r[0]), o.seeds.records.map((r) => r[1]), [...o.seeds.keys]];
    await s.createTempTableAs(
      REACH,
      `SELECT t, p FROM (SELECT unnest($1::VARCHAR[]) AS t, unnest($2::VARCHAR[]) AS p) AS changed
       UNION SELECT t, p FROM ${KEYS} WHERE k = ANY($3::VARCHAR[])
       UNION SELECT h.t, h.p FROM ${HELD} h
              JOIN ${o.tokens} v ON v.person_token = h.tok
              JOIN (SELECT unnest($1::VARCHAR[]) AS t, unnest($2::VARCHAR[]) AS p) AS d ON v.${tc} = d.t AND v.patient_id = d.p
       UNION SELECT t, p FROM ${HELD} WHERE tok IS NULL`,
      seeds,
    );
    // Breadth-first to the fixpoint; persons are small, so this is a few rounds.
    for (;;) {
      const { rowsChanged } = await s.query(
        `INSERT INTO ${REACH} (t, p)
         SELECT DISTINCT n.t, n.p FROM (
           SELECT k2.t, k2.p FROM ${REACH} r
             JOIN ${KEYS} k1 ON k1.t = r.t AND k1.p = r.p
             JOIN ${KEYS} k2 ON k2.k = k1.k
            WHERE NOT EXISTS (SELECT 1 FROM ${CROWDED} c WHERE c.k = k1.k)
           UNION
           SELECT h2.t, h2.p FROM ${REACH} r
             JOIN ${HELD} h1 ON h1.t = r.t AND h1.p = r.p
             JOIN ${HELD} h2 ON h2.tok = h1.tok) AS n
          WHERE NOT EXISTS (SELECT 1 FROM ${REACH} x WHERE x.t = n.t AND x.p = n.p)`,
      );
      if (rowsChanged === 0) break;
    }
    const reached = `(SELECT DISTINCT t, p FROM ${REACH}) AS reach`;
    const records = await s.query(
      `SELECT r.tenant, r.patient_id, r.match_keys, r.dob_guard, r.sex_guard, r.ssn_guard, r.sparse FROM ${o.records} r JOIN ${reached} ON reach.t = r.tenant AND reach.p = r.patient_id`,
    );
    const held = await s.query(`SELECT h.t AS tenant, h.p AS patient_id, h.tok AS person_token FROM ${HELD} h JOIN ${reached} ON reach.t = h.t AND reach.p = h.p WHERE h.tok IS NOT NULL`);
    const crowded = await s.query(`SELECT DISTINCT c.k FROM ${CROWDED} c JOIN ${KEYS} k ON k.k = c.k JOIN ${reached} ON reach.t = k.t AND reach.p = k.p`);
    const total = await s.query(`SELECT count(*) AS n FROM ${CROWDED}`);
    return { records: records.rows, held: held.rows, crowded: new Set(crowded.rows.map((r) => String(r.k))), crowdedTotal: Number(total.rows[0]?.n ?? 0) };
  } finally {
    // DuckDB keeps temp tables for the connection's life; PostgreSQL drops them at commit.
    // After a failed statement the transaction refuses these too; the failure itself is what the caller sees.
    for (const t of TEMP) await s.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  }
}
