import type { Row, Session } from '../adapters/adapter.ts';
import { quoteIdent } from '../sql/quote.ts';

/**
 * What one practice's changed identities can move between persons: the records a re-resolution
 * must read, so that each batch of a fleet does not resolve every practice's records again (at
 * 5,000 practices, ~111k records: 13 s and ~0.9 GB of heap per batch, growing with the fleet).
 *
 * Persons are components of a graph whose edges are a shared match key value that is not crowded
 * (held by more than `maxKeyHolders` records of all practices) and a shared person token (the
 * claims of resolve-persons.ts step 3). Resolving a union of whole components, with crowdedness
 * counted over all records, gives those records what resolving everything would give them, and
 * every other component is already its own fixpoint. A change reaches: the changed records, the
 * holders of every key value they hold or held (whether crowded or not: its holder count moved),
 * the holders of the tokens they held, and records without a token; then everything connected
 * to those. Only the key values met on the way are counted, in the vault's key table.
 */

const REACH = '__tsf_link_reach';
const FRONTIER = '__tsf_link_frontier';
const NEXT = '__tsf_link_next';
const FRONTIER_KEYS = '__tsf_link_frontier_keys';
const CROWDED = '__tsf_link_crowded';
const TEMP = [REACH, FRONTIER, NEXT, FRONTIER_KEYS, CROWDED];

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
}

export async function recordsWithinReach(
  s: Session,
  o: { records: string; keys: string; tokens: string; tenantColumn: string; maxKeyHolders: number; seeds: ReachSeeds },
): Promise<Reach> {
  const tc = quoteIdent(o.tenantColumn);
  const seedRecords = `(SELECT unnest($1::VARCHAR[]) AS t, unnest($2::VARCHAR[]) AS p)`;
  try {
    await s.createTempTableAs(
      REACH,
      `SELECT t, p FROM ${seedRecords} AS changed
       UNION SELECT k.tenant, k.patient_id FROM ${o.keys} k JOIN (SELECT unnest($3::VARCHAR[]) AS k) AS seed ON seed.k = k.k
       UNION SELECT mate.${tc}, mate.patient_id FROM ${o.tokens} mate
              JOIN ${o.tokens} v ON v.person_token = mate.person_token
              JOIN ${seedRecords} AS d ON v.${tc} = d.t AND v.patient_id = d.p
       UNION SELECT r.tenant, r.patient_id FROM ${o.records} r
              WHERE NOT EXISTS (SELECT 1 FROM ${o.tokens} v WHERE v.${tc} = r.tenant AND v.patient_id = r.patient_id)`,
      [o.seeds.records.map((r) => r[0]), o.seeds.records.map((r) => r[1]), [...o.seeds.keys]],
    );
    await s.createTempTableAs(CROWDED, `SELECT CAST(NULL AS VARCHAR) AS k WHERE 1 = 0`, []);
    // Breadth-first to the fixpoint, each round from the records the last one added (persons are
    // small: a few rounds). Each key value met is counted once, over every record.
    await s.createTempTableAs(FRONTIER, `SELECT DISTINCT t, p FROM ${REACH}`, []);
    for (;;) {
      await s.createTempTableAs(FRONTIER_KEYS, `SELECT DISTINCT k.k FROM ${FRONTIER} f JOIN ${o.keys} k ON k.tenant = f.t AND k.patient_id = f.p`, []);
      await s.query(
        `INSERT INTO ${CROWDED} (k)
         SELECT fk.k FROM ${FRONTIER_KEYS} fk JOIN ${o.keys} k ON k.k = fk.k
          WHERE NOT EXISTS (SELECT 1 FROM ${CROWDED} c WHERE c.k = fk.k)
          GROUP BY fk.k HAVING count(*) > CAST($1 AS INTEGER)`,
        [o.maxKeyHolders],
      );
      await s.createTempTableAs(
        NEXT,
        `SELECT DISTINCT n.t, n.p FROM (
           SELECT k.tenant AS t, k.patient_id AS p FROM ${FRONTIER_KEYS} fk JOIN ${o.keys} k ON k.k = fk.k
            WHERE NOT EXISTS (SELECT 1 FROM ${CROWDED} c WHERE c.k = fk.k)
           UNION
           SELECT mate.${tc}, mate.patient_id FROM ${FRONTIER} f
             JOIN ${o.tokens} v ON v.${tc} = f.t AND v.patient_id = f.p
             JOIN ${o.tokens} mate ON mate.person_token = v.person_token) AS n
          WHERE NOT EXISTS (SELECT 1 FROM ${REACH} x WHERE x.t = n.t AND x.p = n.p)`,
        [],
      );
      const { rowsChanged } = await s.query(`INSERT INTO ${REACH} (t, p) SELECT t, p FROM ${NEXT}`);
      if (rowsChanged === 0) break;
      await s.createTempTableAs(FRONTIER, `SELECT t, p FROM ${NEXT}`, []);
    }
    const reached = `(SELECT DISTINCT t, p FROM ${REACH}) AS reach`;
    const records = await s.query(
      `SELECT r.tenant, r.patient_id, r.match_keys, r.dob_guard, r.sex_guard, r.ssn_guard, r.sparse FROM ${o.records} r JOIN ${reached} ON reach.t = r.tenant AND reach.p = r.patient_id`,
    );
    const held = await s.query(`SELECT v.${tc} AS tenant, v.patient_id, v.person_token FROM ${o.tokens} v JOIN ${reached} ON reach.t = v.${tc} AND reach.p = v.patient_id`);
    const crowded = await s.query(`SELECT DISTINCT k FROM ${CROWDED}`);
    return { records: records.rows, held: held.rows, crowded: new Set(crowded.rows.map((r) => String(r.k))) };
  } finally {
    // DuckDB keeps temp tables for the connection's life; PostgreSQL drops them at commit. After a
    // failed statement the transaction refuses these too; the failure itself is what the caller sees.
    for (const t of TEMP) await s.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  }
}
