import type { Adapter, Session } from '../../adapters/adapter.ts';
import { compareLsn, type LogicalRelation, type LogicalReplicationSource, type LogicalTransaction, type ReplicationStream } from '../../adapters/logical-replication.ts';
import type { OltpSource } from '../oltp-source.ts';
import { withRetry } from '../retry.ts';
import { followRelation, type RawColumns } from './follow-relation.ts';
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
  /** Keepalives are asked for while this returns true (a record waits for onQueued to pass a position). */
  pingWhile?: () => boolean;
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
  const rawColumns: RawColumns = new Map();
  const seenRelations = new Map<number, string>();
  let stream: ReplicationStream | undefined;
  let finished!: () => void;
  const caughtUp = new Promise<void>((resolve) => (finished = resolve));

  // One flush at a time: a flush reads `pending` at its start and clears it only after its
  // commit, so a second one started meanwhile (the stop's final flush while a handler's flush
  // was still committing) wrote the same batch to the queue again.
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    const next = flushing.then(flushPending);
    flushing = next.catch(() => undefined);
    return next;
  };
  const flushPending = async (): Promise<void> => {
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

  // The handler in progress: the stream's stop() does not wait for it, the final flush does.
  let handling: Promise<void> = Promise.resolve();
  const track = (p: Promise<void>): Promise<void> => {
    handling = p.catch(() => undefined);
    return p;
  };
  const onTransaction = async (tx: LogicalTransaction): Promise<void> => {
    await o.onTransaction?.(tx);
    if (compareLsn(tx.commitEndLsn, result.lsn) <= 0 || (pendingLsn !== undefined && compareLsn(tx.commitEndLsn, pendingLsn) <= 0)) {
      result.skipped++;
      return;
    }
    const ddl = tx.relations.filter((r) => o.tables.has(`${r.schema}.${r.table}`) && seenRelations.get(r.oid) !== columnsKey(r));
    if (ddl.length > 0) {
      // raw gets a new column (or a wider type, or the table a block) before any change that carries it is queued
      await flush();
      for (const r of ddl) await followRelation({ wh: o.wh, oltp: o.oltp, metaSchema: o.metaSchema, slot: o.slot }, o.tables.get(`${r.schema}.${r.table}`)!, r, tx.commitEndLsn, rawColumns, result.notes);
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
  };
  const onKeepalive = async (walEnd: string): Promise<void> => {
    // Every transaction before this keepalive has been handed over: commit what is pending;
    // then nothing unapplied lies before walEnd, and confirming it lets the OLTP free WAL
    // that only other tables (or other databases) wrote.
    await flush();
    if (compareLsn(walEnd, result.lsn) > 0) stream?.confirm(walEnd);
    await o.onQueued?.(walEnd);
    checkDone(walEnd);
  };
  stream = await o.replication.start({
    slot: o.slot,
    publication: o.publication,
    startLsn: o.startLsn,
    ...(o.follower ? { applicationName: FOLLOWER_APPLICATION_NAME } : {}),
    handler: {
      onTransaction: (tx) => track(onTransaction(tx)),
      onKeepalive: (walEnd) => track(onKeepalive(walEnd)),
    },
  });
  // Keepalives on demand: they commit a pending batch when the stream goes quiet, and tell a
  // run's capture when it has caught up.
  const ticker = setInterval(() => {
    if (pendingLsn !== undefined || o.until !== undefined || o.pingWhile?.()) stream?.ping();
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
  // A handler still running (its batch committing) finishes first; then what is pending was
  // received whole (follow mode stops between transactions): commit it, once.
  await handling;
  if (!reached) await flush();
  return result;
}

function columnsKey(r: LogicalRelation): string {
  return r.columns.map((c) => `${c.name}:${c.typeOid}:${c.typeMod}`).join(',');
}
