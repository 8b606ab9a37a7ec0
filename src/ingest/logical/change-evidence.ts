import type { Adapter, Session } from '../../adapters/adapter.ts';
import { LOGICAL_EVIDENCE } from '../../warehouse/meta-schema.ts';
import { quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import type { OltpSource } from '../oltp-source.ts';

/**
 * What tells, once a slot is lost and its WAL gone, which captured tables changed since the
 * queue last held everything: PostgreSQL's cumulative statistics. Per table the sum of rows
 * inserted, updated and deleted (n_tup_ins + n_tup_upd + n_tup_del, aborted transactions
 * included) and its relfilenode (TRUNCATE, VACUUM FULL and type-changing ALTERs give a new one);
 * per server the database's stats_reset and the postmaster's start (a crash discards every
 * counter). Counters are not transactional and reach shared memory up to ~10 s after a commit
 * (60 s under lock contention, PostgreSQL 15+), so every comparison errs towards copying again.
 */
export interface TableCounters {
  relid: string;
  filenode: string | null;
  /** Rows inserted + updated + deleted, as text (bigint). */
  modifications: string;
}

export interface ChangeEvidence {
  /** server_version_num. Before 15 the statistics collector could drop messages: no evidence. */
  version: number;
  trackCounts: boolean;
  statsReset: string | null;
  postmasterStart: string;
  tables: Record<string, TableCounters>;
}

/** Counters read, then the WAL insert position: every change they count committed before `insertLsn`. */
export interface EvidenceProbe {
  evidence: ChangeEvidence;
  insertLsn: string;
}

export async function readEvidence(oltp: OltpSource, specs: readonly ResolvedSpec[]): Promise<ChangeEvidence> {
  // One statement, one transaction: the counters come from one statistics snapshot.
  const { rows } = await oltp.query(
    `SELECT current_setting('server_version_num')::int AS version, current_setting('track_counts')::bool AS track_counts,
            (SELECT d.stats_reset::text FROM pg_catalog.pg_stat_database d WHERE d.datname = current_database()) AS stats_reset,
            pg_catalog.pg_postmaster_start_time()::text AS postmaster_start,
            (SELECT coalesce(json_agg(json_build_object('label', u.label, 'relid', c.oid::text, 'filenode', pg_catalog.pg_relation_filenode(c.oid)::text, 'kind', c.relkind::text,
                     'modifications', (pg_catalog.pg_stat_get_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_tuples_updated(c.oid) + pg_catalog.pg_stat_get_tuples_deleted(c.oid))::text)), '[]')
               FROM unnest($1::text[], $2::text[]) AS u(label, rel)
               JOIN pg_catalog.pg_class c ON c.oid = to_regclass(u.rel)) AS tables`,
    [specs.map((s) => s.label), specs.map((s) => `"${s.sourceSchema.replace(/"/g, '""')}"."${s.table.replace(/"/g, '""')}"`)],
  );
  const r = rows[0]!;
  const list = (typeof r.tables === 'string' ? JSON.parse(r.tables) : r.tables) as { label: string; relid: string; filenode: string | null; kind: string; modifications: string }[];
  const tables: Record<string, TableCounters> = {};
  // A partitioned table's counters are its partitions': it has no evidence of its own.
  for (const t of list) if (t.kind === 'r') tables[t.label] = { relid: t.relid, filenode: t.filenode, modifications: t.modifications };
  return {
    version: Number(r.version),
    trackCounts: r.track_counts === true || r.track_counts === 'true',
    statsReset: r.stats_reset === null || r.stats_reset === undefined ? null : String(r.stats_reset),
    postmasterStart: String(r.postmaster_start),
    tables,
  };
}

export async function probeEvidence(oltp: OltpSource, specs: readonly ResolvedSpec[]): Promise<EvidenceProbe> {
  const evidence = await readEvidence(oltp, specs);
  const insertLsn = String((await oltp.query('SELECT pg_catalog.pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn);
  return { evidence, insertLsn };
}

/** Stored once the queue holds every change committed before the probe's `insertLsn`. */
export async function writeEvidence(wh: Adapter, metaSchema: string, slot: string, evidence: ChangeEvidence): Promise<void> {
  const rel = quoteRelation(metaSchema, LOGICAL_EVIDENCE.name);
  await wh.transaction(async (s) => {
    await s.query(`DELETE FROM ${rel} WHERE slot = $1`, [slot]);
    await s.query(`INSERT INTO ${rel} (slot, evidence_json, updated_at) VALUES ($1, $2, now())`, [slot, JSON.stringify(evidence)]);
  });
}

export async function readStoredEvidence(wh: Adapter | Session, metaSchema: string, slot: string): Promise<ChangeEvidence | undefined> {
  const { rows } = await wh.query(`SELECT evidence_json FROM ${quoteRelation(metaSchema, LOGICAL_EVIDENCE.name)} WHERE slot = $1`, [slot]);
  return rows[0] ? (JSON.parse(String(rows[0].evidence_json)) as ChangeEvidence) : undefined;
}

/** The tables to copy again after a lost slot: `all` with why, or the changed ones (each with why). */
export type RecopyDecision = { all: true; why: string } | { all: false; changed: Map<string, string> };

/** Pure: recorded evidence vs evidence read after the new slot exists and the counters settled. */
export function tablesToRecopy(labels: readonly string[], recorded: ChangeEvidence | undefined, now: ChangeEvidence): RecopyDecision {
  if (!recorded) return { all: true, why: 'no modification counters were recorded for this slot' };
  if (now.version < 150000) return { all: true, why: `PostgreSQL ${Math.floor(now.version / 10000)} can drop statistics messages, its counters prove nothing` };
  if (!now.trackCounts || !recorded.trackCounts) return { all: true, why: 'track_counts is off on the OLTP, it keeps no modification counters' };
  if (recorded.statsReset !== now.statsReset) return { all: true, why: "the OLTP's statistics were reset (pg_stat_reset) since they were recorded" };
  if (recorded.postmasterStart !== now.postmasterStart) return { all: true, why: 'the OLTP restarted since the counters were recorded (a crash discards them)' };
  const changed = new Map<string, string>();
  for (const label of labels) {
    const was = recorded.tables[label];
    const is = now.tables[label];
    if (!was || !is) changed.set(label, 'no counters recorded');
    else if (was.relid !== is.relid) changed.set(label, 'the table was dropped and created again');
    else if (was.filenode !== is.filenode) changed.set(label, 'the table was truncated or rewritten');
    // any difference, a decrease included (pg_stat_reset_single_table_counters)
    else if (BigInt(is.modifications) < BigInt(was.modifications)) changed.set(label, 'its counters were reset');
    else if (was.modifications !== is.modifications) changed.set(label, `${BigInt(is.modifications) - BigInt(was.modifications)} row change(s) counted`);
  }
  return { all: false, changed };
}
