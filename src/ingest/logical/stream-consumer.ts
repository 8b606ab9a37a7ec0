import type { Adapter, Session } from '../../adapters/adapter.ts';
import { compareLsn, type LogicalRelation, type LogicalReplicationSource, type LogicalTransaction, type ReplicationStream } from '../../adapters/logical-replication.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import type { OltpSource } from '../oltp-source.ts';
import { withRetry } from '../retry.ts';
import { addRawColumns, readSourceColumns } from '../source-columns.ts';
import { enqueue } from './queue-writer.ts';
import { FOLLOWER_APPLICATION_NAME } from './slot-setup.ts';
import { routeTransaction, type CapturedTables, type QueuedChange } from './route-changes.ts';

export interface ConsumeOptions {
  wh: Adapter;
  oltp: OltpSource;
  replication: LogicalReplicationSource;
  metaSchema: string;
  slot: string;
  publication: string;
  tables: CapturedTables;
  known: ReadonlySet<string>;
  /** The stored commit end LSN: transactions ending at or before it are in the queue already. */
  startLsn: string;
  /** Stop once the stream has caught up with this LSN (a run's capture); undefined: until `signal` (follow). */
  until?: string;
  signal?: AbortSignal;
  /** Changes per warehouse commit at most (several source transactions share one commit). */
  batchChanges?: number;
  /** A pending batch is committed at the latest this long after its first transaction. */
  batchMs?: number;
  /** Awaited inside the warehouse transaction, after the queue rows are written, before COMMIT; `transactions`: their commit end LSNs. */
  beforeCommit?: (s: Session, transactions: readonly string[]) => Promise<void>;
  /** Awaited after the warehouse commit, before the slot is confirmed; `tenants`: practices per table that got changes. */
  afterCommit?: (lsn: string, tenants: ReadonlyMap<string, ReadonlySet<string>>) => Promise<void>;
  /** The long-running follower: its replication connection says so (application_name), so that runs leave the slot to it. */
  follower?: boolean;
  /** Awaited once the committed queue holds every change committed before `lsn` (after a batch commit, or a keepalive with nothing pending). */
  onQueued?: (lsn: string) => Promise<void>;
  /** Awaited for every source transaction received, before it is queued anywhere. */
  onTransaction?: (tx: LogicalTransaction) => Promise<void>;
}

export interface ConsumeResult {
  /** Source transactions queued (skipped ones excluded). */
  transactions: number;
  changes: number;
  /** Transactions the queue already had (commit end LSN ≤ the stored one). */
  skipped: number;
  /** Changes of practices not in tenants.yml, per practice id. */
  unknown: Map<string, number>;
  unroutable: number;
  notes: string[];
  /** The stored commit end LSN at the end. */
  lsn: string;
}

const DEFAULT_BATCH_CHANGES = 20_000;
const DEFAULT_BATCH_MS = 250;

/**
 * Reads the slot's stream into the per-practice queue: each source transaction is routed by
 * practice; a batch of transactions is written with the last one's commit end LSN in ONE
 * warehouse transaction; only after that commit is the slot confirmed, with that exact LSN.
 * A transaction whose commit end LSN is not beyond the stored one is skipped: after a crash
 * between the warehouse commit and the confirmation, the server sends it again.
 */
export async function consumeStream(o: ConsumeOptions): Promise<ConsumeResult> {
  const result: ConsumeResult = { transactions: 0, changes: 0, skipped: 0, unknown: new Map(), unroutable: 0, notes: [], lsn: o.startLsn };
  let pending: QueuedChange[] = [];
  let pendingLsn: string | undefined;
  let pendingTransactions: string[] = [];
  let pendingSince = 0;
  let reached = false;
  const rawColumns = new Map<string, Set<string>>();
  const seenRelations = new Map<number, string>();
  let stream: ReplicationStream | undefined;
  let finished!: () => void;
  const caughtUp = new Promise<void>((resolve) => (finished = resolve));

  const flush = async (): Promise<void> => {
    if (pendingLsn === undefined) return;
    const batch = pending;
    const lsn = pendingLsn;
    const transactions = pendingTransactions;
    await withRetry(o.wh, () =>
      o.wh.transaction(async (s) => {
        await enqueue(s, o.metaSchema, o.slot, batch, lsn);
        await o.beforeCommit?.(s, transactions);
      }),
    );
    pending = [];
    pendingTransactions = [];
    pendingLsn = undefined;
    result.lsn = lsn;
    const tenants = new Map<string, Set<string>>();
    for (const c of batch) tenants.set(c.sourceTable, (tenants.get(c.sourceTable) ?? new Set()).add(c.tenant));
    await o.afterCommit?.(lsn, tenants);
    stream?.confirm(lsn);
    await o.onQueued?.(lsn);
  };
  const checkDone = (lsn: string): void => {
    if (o.until !== undefined && pendingLsn === undefined && compareLsn(lsn, o.until) >= 0) {
      reached = true;
      finished();
    }
  };

  stream = await o.replication.start({
    slot: o.slot,
    publication: o.publication,
    startLsn: o.startLsn,
    ...(o.follower ? { applicationName: FOLLOWER_APPLICATION_NAME } : {}),
    handler: {
      onTransaction: async (tx) => {
        await o.onTransaction?.(tx);
        if (compareLsn(tx.commitEndLsn, result.lsn) <= 0 || (pendingLsn !== undefined && compareLsn(tx.commitEndLsn, pendingLsn) <= 0)) {
          result.skipped++;
          return;
        }
        const ddl = tx.relations.filter((r) => o.tables.has(`${r.schema}.${r.table}`) && seenRelations.get(r.oid) !== columnsKey(r));
        if (ddl.length > 0) {
          // raw gets a new column before any change that carries it is queued
          await flush();
          for (const r of ddl) await followRelation(o, r, rawColumns, result.notes);
          for (const r of ddl) seenRelations.set(r.oid, columnsKey(r));
        }
        const routed = routeTransaction(tx, o.tables, o.known);
        for (const [t, n] of routed.unknown) result.unknown.set(t, (result.unknown.get(t) ?? 0) + n);
        result.unroutable += routed.unroutable;
        result.transactions++;
        result.changes += routed.changes.length;
        if (pendingLsn === undefined) pendingSince = performance.now();
        pending.push(...routed.changes);
        pendingTransactions.push(tx.commitEndLsn);
        pendingLsn = tx.commitEndLsn;
        if (pending.length >= (o.batchChanges ?? DEFAULT_BATCH_CHANGES) || performance.now() - pendingSince >= (o.batchMs ?? DEFAULT_BATCH_MS)) await flush();
        checkDone(tx.commitEndLsn);
      },
      onKeepalive: async (walEnd) => {
        // Every transaction before this keepalive has been handed over: commit what is pending;
        // then nothing unapplied lies before walEnd, and confirming it lets the OLTP free WAL
        // that only other tables (or other databases) wrote.
        await flush();
        if (compareLsn(walEnd, result.lsn) > 0) stream?.confirm(walEnd);
        await o.onQueued?.(walEnd);
        checkDone(walEnd);
      },
    },
  });
  // Keepalives on demand: they commit a pending batch when the stream goes quiet, and tell a
  // run's capture when it has caught up.
  const ticker = setInterval(() => {
    if (pendingLsn !== undefined || o.until !== undefined) stream?.ping();
  }, Math.max(20, Math.floor((o.batchMs ?? DEFAULT_BATCH_MS) / 2)));
  const onAbort = () => finished();
  o.signal?.addEventListener('abort', onAbort);
  if (o.signal?.aborted) finished();
  try {
    await Promise.race([caughtUp, stream.done]);
  } finally {
    clearInterval(ticker);
    o.signal?.removeEventListener('abort', onAbort);
    await stream.stop();
  }
  await stream.done;
  // Stopped between transactions (follow mode): what is pending was received whole; commit it.
  if (!reached) await flush();
  return result;
}

function columnsKey(r: LogicalRelation): string {
  return r.columns.map((c) => `${c.name}:${c.typeOid}`).join(',');
}

/**
 * DDL is not replicated, but a Relation message says which columns a table has now: a new one is
 * added to raw (its type read from the OLTP's catalog); one raw has and the OLTP no longer has is
 * noted (raw keeps it; rows changed from now on have NULL there).
 */
async function followRelation(o: ConsumeOptions, r: LogicalRelation, rawColumns: Map<string, Set<string>>, notes: string[]): Promise<void> {
  const spec: ResolvedSpec = o.tables.get(`${r.schema}.${r.table}`)!;
  let have = rawColumns.get(spec.label);
  if (!have) {
    have = new Set(((await o.wh.describe(spec.rawSchema, spec.table))?.columns ?? []).map((c) => c.name));
    rawColumns.set(spec.label, have);
  }
  const names = r.columns.map((c) => c.name).filter((n) => n !== spec.deletedColumn);
  const added = names.filter((n) => !have.has(n));
  if (added.length > 0) {
    const source = await o.oltp.readTransaction((t) => readSourceColumns(t, spec.sourceSchema, spec.table));
    const byName = new Map(source.map((c) => [c.name, c]));
    const columns = added.map((n) => byName.get(n) ?? { name: n, sourceType: 'text', rawType: 'VARCHAR', nullable: true, hasDefault: false });
    const done = await withRetry(o.wh, () => o.wh.transaction((s) => addRawColumns(s, { schema: spec.rawSchema, table: spec.table }, columns)));
    for (const c of done) {
      notes.push(`${spec.label}: new source column "${c.name}" added to ${spec.rawSchema}.${spec.table}`);
      if ((c.hasDefault || !c.nullable) && c.missingValue === undefined) {
        notes.push(
          `${spec.label}: column "${c.name}" was added with values the stream does not carry for earlier rows (a table rewrite is not replicated): to copy every table again, drop the slot (SELECT pg_drop_replication_slot('${o.slot}')) and run capture`,
        );
      }
    }
    for (const n of added) have.add(n);
  }
  for (const gone of [...have].filter((n) => !names.includes(n) && n !== spec.deletedColumn)) {
    notes.push(`${spec.label}: column "${gone}" is no longer in the source; raw keeps it (rows updated from now on keep their value there, new rows have NULL)`);
  }
}
