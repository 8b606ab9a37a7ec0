import { lsnSortKey, type LogicalTransaction, type Tuple } from '../../adapters/logical-replication.ts';
import type { ResolvedSpec } from '../capture-spec.ts';

/**
 * One queued change of one practice's slice. `upsert` carries the columns it knows (an unchanged
 * TOASTed column, or one the table did not have when the change was made, is absent: raw keeps
 * its own value there); `delete` removes the key; `truncate` empties the slice.
 */
export interface QueuedChange {
  sourceTable: string;
  tenant: string;
  /** lsnSortKey of the source transaction's commit end LSN. */
  lsn: string;
  seq: number;
  op: 'upsert' | 'delete' | 'truncate';
  key: string[];
  row?: Tuple;
}

export interface RoutedTransaction {
  changes: QueuedChange[];
  /** Changes of practices not in tenants.yml, per practice id (ids are not PHI): counted, never queued. */
  unknown: Map<string, number>;
  /** Changes that name no practice or no key (a NULL practice id): counted, never queued. */
  unroutable: number;
}

/** The captured tables of one slot, by `schema.table` as the OLTP names them. */
export type CapturedTables = ReadonlyMap<string, ResolvedSpec>;

/**
 * Splits a source transaction into per-practice queue rows. Deletes are routed by the old
 * replica-identity values (practice_id is in the identity: set-up checks it); an update that
 * changed the practice or the key deletes the old one and upserts the new one; a row whose
 * soft-delete column is set is a delete. Tables outside `tables` are ignored.
 */
export function routeTransaction(tx: LogicalTransaction, tables: CapturedTables, known: ReadonlySet<string>): RoutedTransaction {
  const lsn = lsnSortKey(tx.commitEndLsn);
  const out: RoutedTransaction = { changes: [], unknown: new Map(), unroutable: 0 };
  let seq = 0;
  const push = (spec: ResolvedSpec, op: QueuedChange['op'], tuple: Tuple, row?: Tuple): void => {
    const tenant = tuple[spec.tenantColumn];
    const key = spec.key.map((k) => tuple[k]);
    if (tenant === null || tenant === undefined || (op !== 'truncate' && key.some((k) => k === null || k === undefined))) {
      out.unroutable++;
      return;
    }
    if (!known.has(tenant)) {
      out.unknown.set(tenant, (out.unknown.get(tenant) ?? 0) + 1);
      return;
    }
    out.changes.push({ sourceTable: spec.label, tenant, lsn, seq: seq++, op, key: key as string[], ...(row ? { row } : {}) });
  };
  const liveRow = (spec: ResolvedSpec, t: Tuple): Tuple | undefined => {
    const deleted = t[spec.deletedColumn];
    if (deleted !== null && deleted !== undefined) return undefined;
    const { [spec.deletedColumn]: _, ...row } = t;
    return row;
  };
  for (const c of tx.changes) {
    if (c.op === 'truncate') {
      for (const r of c.relations) {
        const spec = tables.get(`${r.schema}.${r.table}`);
        if (spec) for (const tenant of known) push(spec, 'truncate', { [spec.tenantColumn]: tenant });
      }
      continue;
    }
    const spec = tables.get(`${c.relation.schema}.${c.relation.table}`);
    if (!spec) continue;
    switch (c.op) {
      case 'insert': {
        const row = liveRow(spec, c.new);
        push(spec, row ? 'upsert' : 'delete', c.new, row);
        break;
      }
      case 'update': {
        if (c.old && identityChanged(spec, c.old, c.new)) push(spec, 'delete', c.old);
        const row = liveRow(spec, c.new);
        push(spec, row ? 'upsert' : 'delete', c.new, row);
        break;
      }
      case 'delete':
        push(spec, 'delete', c.old);
        break;
      default: {
        const never: never = c;
        throw new Error(`unknown change ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** The practice or the key of the row changed (pgoutput sends the old identity only then, or always under REPLICA IDENTITY FULL). */
function identityChanged(spec: ResolvedSpec, old: Tuple, now: Tuple): boolean {
  return [spec.tenantColumn, ...spec.key].some((c) => old[c] !== undefined && now[c] !== undefined && old[c] !== now[c]);
}
