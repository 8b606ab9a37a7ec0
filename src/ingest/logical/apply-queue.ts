import type { Adapter, ColumnInfo, Session, SqlParam } from '../../adapters/adapter.ts';
import { unloadableValueError } from '../../adapters/unloadable-value.ts';
import { Codes, TransientError, TsformError } from '../../errors.ts';
import { countDeletion, relationKey } from '../../warehouse/deletion-epochs.ts';
import { CAPTURE_LOCKS, CAPTURED_CHANGES } from '../../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { ensureLockRows } from '../watermarks.ts';
import { FOLD_TABLE, renderFold, type FoldStatements } from './queue-fold-sql.ts';

/** Queue rows applied per warehouse transaction: a backlog commits in steps and gives its slot back between them. */
export const APPLY_BATCH_ROWS = 50_000;
/** Above every commit LSN sort key (sixteen hex digits): no bound. */
export const ANY_LSN = 'G';

/** What one practice's queue did to its raw slice in one apply. */
export interface PracticeApplied {
  tenant: string;
  /** Queue rows consumed. */
  changes: number;
  /** Keys inserted or updated in raw. */
  upserted: number;
  /** Rows removed from raw (deletes, moves out, truncates). */
  deleted: number;
}

export interface QueueApplyResult {
  /** The practices that had queue rows in this apply. */
  practices: PracticeApplied[];
  /** The batch was full: more queue rows may wait for these practices. */
  more: boolean;
}

export interface QueueApplyOptions {
  /** Queue rows taken at most (the earliest in commit order, so each practice gets a prefix of its queue). */
  batchRows?: number;
  /** Only queue rows of source transactions ending at or before this LSN sort key (default: all). */
  upTo?: string;
  /** Queue rows the caller counted for these practices up to `upTo`: at most `batchRows` spares finding the cut. */
  queued?: number;
  /** Awaited in the transaction before COMMIT (a throw rolls the apply back). */
  verify?: (s: Session) => Promise<void>;
  /** Awaited before COMMIT with the queue rows applied, per practice (`lsn:seq`). */
  beforeCommit?: (s: Session, applied: ReadonlyMap<string, readonly string[]>) => Promise<void>;
}

/**
 * The fold rendered per raw table shape (column names and types), kept between applies. The shape
 * is read before each apply's transaction (never inside: the adapter's describe takes another
 * connection) and the column names checked again inside it, so a column added to raw meanwhile is
 * never dropped by the delete-and-insert; a type widened meanwhile at worst fails a cast, retried.
 */
export class RawShapes {
  private readonly shapes = new Map<string, FoldStatements>();

  constructor(
    private readonly wh: Adapter,
    private readonly metaSchema: string,
  ) {}

  async of(spec: ResolvedSpec, batchRows: number): Promise<FoldStatements> {
    const info = await this.wh.describe(spec.rawSchema, spec.table);
    if (!info) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: raw table ${spec.rawSchema}.${spec.table} is missing`);
    const key = JSON.stringify([spec.label, batchRows, info.columns]);
    let sql = this.shapes.get(key);
    if (!sql) {
      for (const c of [spec.tenantColumn, ...spec.key]) {
        if (!info.columns.some((x) => x.name === c)) throw new TsformError(Codes.logicalSchemaChange, `capture ${spec.label}: ${spec.rawSchema}.${spec.table} has no column "${c}"`);
      }
      sql = renderFold(this.wh.foldDialect, spec, this.metaSchema, info.columns, batchRows);
      this.shapes.set(key, sql);
    }
    return sql;
  }
}

/** Raw's columns are still those the fold was rendered for (checked in the apply's transaction). */
async function checkShape(s: Session, spec: ResolvedSpec, sql: FoldStatements): Promise<void> {
  const names = (await s.query(`SELECT * FROM ${quoteRelation(spec.rawSchema, spec.table)} WHERE 1 = 0`)).columns;
  if (!sameNames(sql.rawColumns, names)) {
    throw new TransientError(`capture ${spec.label}: ${spec.rawSchema}.${spec.table} changed columns during the apply; applied again`, Codes.logicalSchemaChange);
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Applies the queued changes of one table for `tenants` to their raw slices, in ONE warehouse
 * transaction holding those practices' capture locks: the earliest `batchRows` queue rows are
 * folded per key in SQL (queue-fold-sql.ts), every touched key raw holds is deleted, the
 * upserted keys' final rows are inserted, and the queue rows go, all in that transaction. A crash
 * anywhere leaves the queue rows in place for the next apply: none is applied twice. A practice
 * that lost rows counts a deletion epoch, so incremental models rebuild its slice.
 */
export async function applyQueues(
  wh: Adapter,
  shapes: RawShapes,
  spec: ResolvedSpec,
  metaSchema: string,
  tenants: readonly string[],
  opts: QueueApplyOptions = {},
): Promise<QueueApplyResult> {
  const batchRows = Math.max(1, Math.floor(opts.batchRows ?? APPLY_BATCH_ROWS));
  if (tenants.length === 0) return { practices: [], more: false };
  const sql = await shapes.of(spec, batchRows);
  return wh.transaction(async (s) => {
    await lockTenants(s, metaSchema, spec.label, tenants);
    await checkShape(s, spec, sql);
    const list = [...tenants];
    try {
      // The rows taken are a prefix of the practices' queues in commit order, up to a position
      // found first (two narrow columns sorted) unless the caller counted no more than batchRows.
      // Rows queued later have higher commit LSNs, so the same bound names the same rows in every
      // statement below, on PostgreSQL's read committed too.
      const upTo = opts.upTo ?? ANY_LSN;
      let more = false;
      let taken: SqlParam[];
      if (opts.queued !== undefined && opts.queued <= batchRows && upTo !== ANY_LSN) {
        taken = [spec.label, list, upTo, Number.MAX_SAFE_INTEGER];
      } else {
        const cut = (await s.query(sql.cutoff, [spec.label, list, upTo])).rows[0];
        if (!cut) return { practices: [], more: false };
        taken = [spec.label, list, String(cut.lsn), Number(cut.seq)];
        more = Number(cut.n) >= batchRows;
      }
      await s.createTempTableAs(FOLD_TABLE, sql.fold, taken);
      const stats = (await s.query(sql.stats, taken)).rows.map((r) => ({
        tenant: String(r.t),
        changes: Number(r.changes),
        truncated: r.truncated === true,
        upserted: Number(r.upserted),
        deleted: Number(r.deleted),
        other: Number(r.other),
      }));
      if (stats.length === 0) return { practices: [], more: false };
      if (stats.some((p) => p.other > 0)) throw await unknownColumns(s, spec, sql, taken);
      for (const p of stats.filter((x) => x.truncated)) {
        // a TRUNCATE among the rows taken: the slice goes first, then what came after it
        p.deleted += (await s.query(`DELETE FROM ${quoteRelation(spec.rawSchema, spec.table)} WHERE ${quoteIdent(spec.tenantColumn)} = $1`, [p.tenant])).rowsChanged;
      }
      await s.query(sql.deleteRaw, [list]);
      await s.query(sql.insertRaw);
      const applied = opts.beforeCommit ? await positions(s, sql, taken) : undefined;
      await s.query(sql.deleteQueue, taken);
      const lost = stats.filter((p) => p.deleted > 0).map((p) => p.tenant);
      if (lost.length > 0) await countDeletion(s, metaSchema, relationKey({ schema: spec.rawSchema, identifier: spec.table }), lost);
      await markCaptured(s, metaSchema, stats.map((p) => p.tenant));
      await opts.verify?.(s);
      if (applied) await opts.beforeCommit!(s, applied);
      return { practices: stats.map(({ tenant, changes, upserted, deleted }) => ({ tenant, changes, upserted, deleted })), more };
    } catch (err) {
      // DuckDB's strict cast of a value it cannot hold (adapters/unloadable-value.ts): TSF422 naming the column
      throw unloadableValueError(err, spec.label) ?? err;
    } finally {
      // DuckDB keeps a connection's temp tables past the commit; after a failed statement PostgreSQL refuses this, and drops it at the rollback
      await s.dropTempTable(FOLD_TABLE).catch(() => undefined);
    }
  });
}

/** The practices' capture locks for the rest of the transaction (row locks / write conflicts), in one statement. */
async function lockTenants(s: Session, metaSchema: string, table: string, tenants: readonly string[]): Promise<void> {
  const lock = () => s.query(`UPDATE ${quoteRelation(metaSchema, CAPTURE_LOCKS.name)} SET chunks = chunks + 1 WHERE source_table = $1 AND tenant = ANY($2::VARCHAR[])`, [table, [...tenants]]);
  if ((await lock()).rowsChanged < tenants.length) {
    await ensureLockRows(s, metaSchema, table, tenants);
    await lock();
  }
}

async function positions(s: Session, sql: FoldStatements, taken: readonly SqlParam[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const r of (await s.query(sql.positions, taken)).rows) {
    const t = String(r.tenant);
    out.set(t, [...(out.get(t) ?? []), `${String(r.lsn)}:${String(r.seq)}`]);
  }
  return out;
}

/** Queued changes carry columns raw does not have (raw was changed by hand after the stream added them): named, nothing applied. */
async function unknownColumns(s: Session, spec: ResolvedSpec, sql: FoldStatements, taken: readonly SqlParam[]): Promise<TsformError> {
  const known = new Set(sql.rawColumns);
  const missing = new Set<string>();
  for (const r of (await s.query(sql.otherRows, taken)).rows) for (const c of Object.keys(JSON.parse(String(r.row_json)) as object)) if (!known.has(c)) missing.add(c);
  return new TsformError(Codes.logicalSchemaChange, `capture ${spec.label}: queued changes carry column(s) ${[...missing].sort().map((c) => `"${c}"`).join(', ')} that ${spec.rawSchema}.${spec.table} does not have`);
}

/** One more change in these practices' raw data since their last model run (`state:captured`). */
export async function markCaptured(s: Pick<Session, 'query'>, metaSchema: string, tenants: readonly string[]): Promise<void> {
  const rel = quoteRelation(metaSchema, CAPTURED_CHANGES.name);
  const r = await s.query(`UPDATE ${rel} SET captured = captured + 1 WHERE tenant = ANY($1::VARCHAR[])`, [[...tenants]]);
  if (r.rowsChanged < tenants.length) {
    await s.query(
      `INSERT INTO ${rel} (tenant, captured, built) SELECT u.t, 1, 0 FROM unnest($1::VARCHAR[]) AS u(t) WHERE NOT EXISTS (SELECT 1 FROM ${rel} AS c WHERE c.tenant = u.t)`,
      [[...tenants]],
    );
  }
}
