import { count, createTableSql, instant, table, text, type Queryable, type RowOf } from './table-def.ts';

/**
 * The vault schema's own tables: the key table, DuckDB's re-identification audit and linkage's
 * records, settings and events. PostgreSQL's audit (with its triggers and SECURITY DEFINER
 * functions) is security DDL: the `vault_reidentify` policy template renders it.
 */

/** The tokenization key: its fingerprint, and the key itself unless it lives in the environment. */
export const VAULT_KEYS = table('keys', { fingerprint: text, key_hex: { type: 'VARCHAR', nullable: true }, created_at: instant }, ['fingerprint']);

/** DuckDB's re-identification audit, in the vault file (PostgreSQL: the vault_reidentify template). */
export const DUCKDB_REIDENTIFICATION_AUDIT = table('reidentification_audit', {
  actor: text,
  at: instant,
  reason: text,
  token: text,
  records_found: { type: 'INTEGER' },
});

/**
 * Linkage (issue 17): per record, the keyed hashes the resolution into persons reads (match keys
 * and guard values, space-separated) and a digest of the identity they were made from, so that
 * a changed identity is re-keyed. Across all practices: a person spans them. `sparse` is 0 or 1.
 */
export const VAULT_LINKAGE_RECORDS = table('linkage_records', {
  tenant: text,
  patient_id: text,
  identity_digest: text,
  match_keys: text,
  dob_guard: text,
  sex_guard: text,
  ssn_guard: text,
  sparse: { type: 'INTEGER' },
});

/**
 * The same match keys one row per (record, key value), kept with linkage_records in the same
 * transactions: what a re-resolution follows from a changed record to the others it can reach
 * (execute/linkage-reach.ts). Near-empty records hold none.
 */
export const VAULT_LINKAGE_KEYS = table('linkage_keys', { tenant: text, patient_id: text, k: text });

/** The linkage settings (and key) the stored match keys were made under: one row. */
export const VAULT_LINKAGE_CONFIG = table('linkage_config', { fingerprint: text, key_fingerprint: text, created_at: instant });

/** One row per resolution: counts only, never an identity. */
export const VAULT_LINKAGE_EVENTS = table('linkage_events', {
  resolved_at: instant,
  practices: { type: 'INTEGER' },
  records: count,
  persons: count,
  merges: count,
  splits: count,
  sparse: count,
  new_persons: count,
  retokenized: count,
  rekeyed: count,
});

export type VaultKeyRow = RowOf<typeof VAULT_KEYS>;
export type ReidentificationAuditRow = RowOf<typeof DUCKDB_REIDENTIFICATION_AUDIT>;

/** Creates one of the vault's own tables if missing (they have not changed shape since they were made). */
export async function ensureVaultTable(
  q: Queryable,
  vaultSchema: string,
  t: typeof VAULT_KEYS | typeof DUCKDB_REIDENTIFICATION_AUDIT | typeof VAULT_LINKAGE_RECORDS | typeof VAULT_LINKAGE_KEYS | typeof VAULT_LINKAGE_CONFIG | typeof VAULT_LINKAGE_EVENTS,
): Promise<void> {
  await q.query(createTableSql(vaultSchema, t));
}
