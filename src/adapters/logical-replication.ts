/**
 * The OLTP's logical replication stream, as log-based capture (ingest/logical/) sees it.
 * Declared here, implemented beside the driver (adapters/postgres/pg-logical-replication.ts).
 * Values are PostgreSQL's text output, never parsed (no JS Date: microseconds stay).
 */

/** A column value as text; `null` for SQL NULL. A column absent from a tuple is an unchanged TOASTed value. */
export type TupleValue = string | null;
export type Tuple = Record<string, TupleValue>;

/** A table as a pgoutput Relation message describes it (sent before its first change, and after DDL). */
export interface LogicalRelation {
  oid: number;
  schema: string;
  table: string;
  /** `typeMod`: the column's atttypmod (-1: none), so that `format_type(typeOid, typeMod)` names its type. */
  columns: { name: string; typeOid: number; typeMod: number; inIdentity: boolean }[];
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
}

export type LogicalChange =
  | { op: 'insert'; relation: LogicalRelation; new: Tuple }
  /** `old`: the replica identity's old values when they changed (or the whole old row under REPLICA IDENTITY FULL). */
  | { op: 'update'; relation: LogicalRelation; old: Tuple | null; new: Tuple }
  /** `old`: the replica identity's values (the whole row under REPLICA IDENTITY FULL). */
  | { op: 'delete'; relation: LogicalRelation; old: Tuple }
  | { op: 'truncate'; relations: LogicalRelation[] };

/** One source transaction, delivered whole at its commit. */
export interface LogicalTransaction {
  /** The end of the commit record: what is confirmed once the transaction is applied. */
  commitEndLsn: string;
  /** Relation messages received in this transaction (new tables, changed columns). */
  relations: LogicalRelation[];
  changes: LogicalChange[];
}

export interface StreamHandler {
  /** Awaited; nothing else is handled meanwhile (the socket is paused when messages pile up). */
  onTransaction(tx: LogicalTransaction): Promise<void>;
  /**
   * The server's WAL position in a keepalive, handed over in stream order when no transaction is
   * open: every transaction committed before it has been passed to onTransaction already.
   */
  onKeepalive(walEnd: string): Promise<void>;
}

export interface ReplicationStream {
  /**
   * Confirms to the server that everything up to `lsn` (exactly, not lsn + 1) is applied; sent at
   * once and repeated every few seconds and in answer to keepalives. Call it only after the
   * warehouse committed: the slot then may free the WAL before it.
   */
  confirm(lsn: string): void;
  /** Asks the server for a keepalive now. */
  ping(): void;
  /** Ends the stream; `done` then resolves. */
  stop(): Promise<void>;
  /** Resolves when the stream was stopped; rejects with the handler's or the connection's error. */
  done: Promise<void>;
}

export interface SlotSnapshot {
  /** The slot's consistent point: the stream starts at it; the snapshot holds everything before. */
  consistentPoint: string;
  /** For `SET TRANSACTION SNAPSHOT` on a normal connection; valid until `release`. */
  snapshotName: string;
  release(): Promise<void>;
}

export interface LogicalReplicationSource {
  /** `CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')` on a replication connection held open until `release`. */
  createSlot(slot: string): Promise<SlotSnapshot>;
  /** Streams `publication` from `slot`, starting after `startLsn` (the stored commit end LSN). */
  start(opts: { slot: string; publication: string; startLsn: string; handler: StreamHandler; applicationName?: string }): Promise<ReplicationStream>;
}

// ---- LSNs ----------------------------------------------------------------------------------

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function lsnToBigInt(lsn: string): bigint {
  const m = LSN.exec(lsn);
  if (!m) throw new RangeError(`not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function lsnFromBigInt(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Sixteen hex digits: sorts as text in the order of the LSNs (the queue's order column). */
export function lsnSortKey(lsn: string): string {
  return lsnToBigInt(lsn).toString(16).toUpperCase().padStart(16, '0');
}

export function compareLsn(a: string, b: string): number {
  const x = lsnToBigInt(a);
  const y = lsnToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const ZERO_LSN = '0/0';
