import type { Adapter } from '../adapters/adapter.ts';
import type { Clock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { insertRows } from '../warehouse/table-def.ts';
import { DUCKDB_REIDENTIFICATION_AUDIT as AUDIT, ensureVaultTable } from '../warehouse/vault-tables.ts';

export interface Reidentification {
  token: string;
  /** The practice records the token stands for (practice id, patient id). */
  records: { practice: string; patient: string }[];
  /** Who the audit row names: PostgreSQL's session user (returned by the lookup), on DuckDB the actor given. */
  auditedAs: string;
  /** PostgreSQL: the committed audit row (ticket) the lookup was made under. */
  ticket?: string;
}

const TOKEN = /^pt_[a-z0-9]{16,128}$/;

/**
 * The one audited path back to identity.
 *
 * PostgreSQL: two SECURITY DEFINER functions only vault_steward may execute, called in two
 * transactions. `request_reidentification(token, reason)` writes the audit row and returns its
 * ticket, committed when the call returns; `reidentify(ticket)` returns the records only when
 * that row was committed by an earlier transaction, for the steward who requested it, once. A
 * caller who wraps the calls in a transaction of their own and rolls it back gets no identity:
 * the lookup refuses a ticket of its own transaction.
 *
 * DuckDB (no roles): the vault file's permissions are the control; the audit row is written in
 * the vault file and committed before the records leave this function.
 */
export async function reidentify(
  adapter: Adapter,
  opts: { vaultSchema: string; tenantColumn: string; token: string; reason: string; actor: string; clock: Clock },
): Promise<Reidentification> {
  if (opts.reason.trim().length < 8) throw new TsformError(Codes.reidentify, 'a re-identification needs a reason of at least 8 characters (--reason)');
  if (adapter.capabilities.rowLevelSecurity) {
    // adapter.query: each call is a transaction of its own, committed before it returns.
    const requested = await adapter.query(`SELECT ${quoteRelation(opts.vaultSchema, 'request_reidentification')}($1, $2) AS ticket`, [opts.token, opts.reason]);
    const ticket = String(requested.rows[0]?.ticket);
    const { rows } = await adapter.query(`SELECT practice_id, patient_id, audited_as FROM ${quoteRelation(opts.vaultSchema, 'reidentify')}(CAST($1 AS BIGINT))`, [ticket]);
    return {
      token: opts.token,
      records: rows.filter((r) => r.patient_id !== null).map((r) => ({ practice: String(r.practice_id), patient: String(r.patient_id) })),
      auditedAs: String(rows[0]?.audited_as ?? opts.actor),
      ticket,
    };
  }
  const vault = quoteRelation(opts.vaultSchema, 'person_tokens');
  return adapter.transaction(async (s) => {
    await ensureVaultTable(s, opts.vaultSchema, AUDIT);
    const found = TOKEN.test(opts.token)
      ? (await s.query(`SELECT ${quoteIdent(opts.tenantColumn)} AS practice, patient_id FROM ${vault} WHERE person_token = $1 ORDER BY 1, 2`, [opts.token])).rows
      : [];
    // Audited whether or not the token exists: probing for tokens is itself worth a record.
    await insertRows(s, opts.vaultSchema, AUDIT, [{ actor: opts.actor, at: opts.clock.now().toISOString(), reason: opts.reason, token: opts.token, records_found: found.length }]);
    return { token: opts.token, records: found.map((r) => ({ practice: String(r.practice), patient: String(r.patient_id) })), auditedAs: opts.actor };
  });
}
