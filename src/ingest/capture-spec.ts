import { Codes, TsformError } from '../errors.ts';

/** One captured table: where it lives in the OLTP and in raw, and how its rows are keyed. */
export interface CaptureSpec {
  /** Table name in the OLTP schema and in raw. */
  table: string;
  /** Primary key without the tenant column (`['encounter_id']`). */
  key: string[];
  tenantColumn: string;
  /** OLTP schema (default `oltp`). */
  sourceSchema?: string;
  /** Warehouse schema of the captured table (default `raw`). */
  rawSchema?: string;
  /** Default `updated_at`; the OLTP must bump it on every insert, update and soft delete. */
  updatedColumn?: string;
  /** Soft-delete column (default `deleted_at`): a row with it set is deleted from raw; never copied to raw. */
  deletedColumn?: string;
  /**
   * Rows younger than this are left for the next chunk (default 0). Transactions still open in
   * the OLTP hold the horizon back on their own (see readCommitHorizon); this covers writers
   * whose `updated_at` is not their transaction's clock, or a capture role that cannot see them.
   */
  settleSeconds?: number;
}

export interface ResolvedSpec extends Required<CaptureSpec> {
  label: string;
}

export function resolveSpec(spec: CaptureSpec): ResolvedSpec {
  const r = {
    sourceSchema: 'oltp',
    rawSchema: 'raw',
    updatedColumn: 'updated_at',
    deletedColumn: 'deleted_at',
    settleSeconds: 0,
    ...spec,
  };
  if (r.key.length === 0) throw new TsformError(Codes.invalidRunSetting, `capture ${spec.table}: a key column is needed`);
  return { ...r, label: `${r.sourceSchema}.${r.table}` };
}
