import type { Adapter, Session } from '../../adapters/adapter.ts';
import { compareLsn, type LogicalTransaction } from '../../adapters/logical-replication.ts';
import { Codes, TsformError } from '../../errors.ts';
import { CAPTURED_CHANGES, LOGICAL_QUEUE, migrateMeta } from '../../warehouse/meta-schema.ts';
import { quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { prepareCapture, type ProtectRelation } from '../capture.ts';
import type { OltpSource } from '../oltp-source.ts';
import { withRetry } from '../retry.ts';
import { applyGroups, groupPractices, type GroupedApply } from './apply-groups.ts';
import { APPLY_BATCH_ROWS, applyQueues, RawShapes, type QueueApplyOptions } from './apply-queue.ts';
import { blockedTables, readBlock } from './follow-relation.ts';
import { probeEvidence, readEvidence, readStoredEvidence, tablesToRecopy, writeEvidence, type EvidenceProbe, type RecopyDecision } from './change-evidence.ts';
import { queuedCounts, readSlotRecord, writeSlotRecord } from './queue-writer.ts';
import { checkLogicalPrerequisites, dropSlot, ensurePublication, FOLLOWER_APPLICATION_NAME, readSlot, slotLagWarning, uncapturedTables, type SlotState } from './slot-setup.ts';
import { consumeStream, type ConsumeOptions, type ConsumeResult } from './stream-consumer.ts';
import { copyTable } from './table-copy.ts';

export interface LogicalTable {
  spec: ResolvedSpec;
  /** Row-level security of its raw table, in the transaction that creates it (PostgreSQL). */
  protect?: ProtectRelation;
}

export interface LogicalCaptureOptions {
  wh: Adapter;
  oltp: OltpSource;
  metaSchema: string;
  /** Name of the publication and of the slot (slot-setup.ts logicalObjectName). */
  name: string;
  /** Every table captured from this OLTP in mode logical (the publication holds exactly these). */
  tables: readonly LogicalTable[];
  /** Every practice of tenants.yml: changes of other practice ids are counted, never queued. */
  known: readonly string[];
  /** The wait before a lost slot's counters are compared (default STATS_SETTLE_MS). */
  statsSettleMs?: number;
}

export interface SetUpResult {
  /** The stored commit end LSN the stream resumes after. */
  lsn: string;
  /** Tables copied from a snapshot in this set-up. */
  copied: string[];
  notes: string[];
  /** `tsform capture --follow` holds the slot: it streams and applies; this process only applies the queue. */
  followed: boolean;
}

/** A follower records the OLTP's modification counters this often (the evidence a lost slot is judged by). */
const EVIDENCE_EVERY_MS = 10_000;

/**
 * After a lost slot's replacement is created, the wait before its counters are read: a backend
 * publishes its counters at most once a second and, idle, within PostgreSQL's 10 s idle interval.
 */
export const STATS_SETTLE_MS = 11_000;

/** How long a slot still marked active (its last consumer was killed a moment ago) is waited for. */
const ACTIVE_SLOT_WAIT_MS = 15_000;

/**
 * Log-based capture of one OLTP: set-up (prerequisites, publication, slot, initial copy), the
 * stream into the per-practice queue, and each practice's apply. One instance per OLTP per process.
 */
export class LogicalCapture {
  private readonly shapes: RawShapes;

  constructor(readonly o: LogicalCaptureOptions) {
    this.shapes = new RawShapes(o.wh, o.metaSchema);
  }

  get specs(): ResolvedSpec[] {
    return this.o.tables.map((t) => t.spec);
  }

  /**
   * Makes the slot usable: checks the OLTP, creates raw tables, the publication and the slot;
   * when the slot is new (or was lost, or the warehouse has no record of it) copies every table
   * from the slot's exported snapshot, so that the stream starts exactly where the copy ends;
   * a table new in the publication is copied from a snapshot of now.
   */
  async setUp(tenants: readonly string[]): Promise<SetUpResult> {
    const { wh, oltp, metaSchema, name } = this.o;
    const notes: string[] = [];
    await checkLogicalPrerequisites(oltp, this.specs);
    await migrateMeta(wh, metaSchema);
    for (const t of this.o.tables) {
      try {
        await prepareCapture(wh, oltp, t.spec, metaSchema, tenants, t.protect);
      } catch (err) {
        // Watermark capture's drift check compares raw with the OLTP's catalog of now; here raw
        // follows the stream's Relation messages, which come after the changes before the DDL
        // (follow-relation.ts): a column dropped or retyped in the OLTP is not an error at set-up.
        if (!(err instanceof TsformError && err.code === Codes.schemaChanged)) throw err;
      }
    }
    await ensureCapturedRows(wh, metaSchema, tenants);
    const added = await ensurePublication(oltp, name, this.specs);
    for (const t of await uncapturedTables(oltp, this.specs)) {
      notes.push(`${t} has a practice column but is not captured (not in sources.yml), so its changes are not streamed: add it to sources.yml to capture it`);
    }
    let slot = await this.waitIdleSlot();
    let record = await readSlotRecord(wh, metaSchema, name);
    if (slot.heldBy === FOLLOWER_APPLICATION_NAME && record) {
      notes.push(`tsform capture --follow is streaming ${name}: this run applies what it has queued`);
      return { lsn: record.lsn, copied: [], notes, followed: true };
    }
    let lost = false;
    if (slot.exists && slot.walStatus === 'lost') {
      lost = true;
      await dropSlot(oltp, name);
      slot = { exists: false };
    } else if (slot.exists && !record) {
      // a slot of this project the warehouse knows nothing of (a new warehouse): its position means nothing here
      await dropSlot(oltp, name);
      slot = { exists: false };
    } else if (!slot.exists && record) {
      notes.push(`replication slot ${name} was missing on the OLTP; every table is copied again from a new snapshot`);
    }
    const copied: string[] = [];
    if (!slot.exists) {
      const snap = await oltp.replication!().createSlot(name);
      try {
        let toCopy = this.o.tables;
        let kept: string[] = [];
        if (lost) {
          const decision = await this.lostSlotDecision();
          if (decision.all) {
            notes.push(`${Codes.slotLost}: replication slot ${name} was lost (it fell behind by more than max_slot_wal_keep_size); every table is copied again from a new snapshot: ${decision.why}`);
          } else {
            toCopy = this.o.tables.filter((t) => decision.changed.has(t.spec.label));
            kept = record ? record.tables.filter((l) => !decision.changed.has(l)) : [];
            const changed = [...decision.changed].map(([l, why]) => `${l} (${why})`);
            notes.push(
              `${Codes.slotLostPartial}: replication slot ${name} was lost (it fell behind by more than max_slot_wal_keep_size); ` +
                (changed.length > 0 ? `copied again from a new snapshot: ${changed.join(', ')}` : 'no captured table changed since') +
                `; the modification counters of the others did not move, their raw stays: ${this.specs.map((x) => x.label).filter((l) => !decision.changed.has(l)).join(', ') || 'none'}`,
            );
          }
        }
        await withRetry(wh, () => wh.transaction((s) => writeSlotRecord(s, metaSchema, name, { lsn: snap.consistentPoint, tables: kept })));
        for (const t of toCopy) {
          await copyTable(wh, oltp, t.spec, { metaSchema, slot: name, known: this.o.known, snapshot: snap.snapshotName });
          copied.push(t.spec.label);
        }
      } finally {
        await snap.release();
      }
      record = await readSlotRecord(wh, metaSchema, name);
    } else {
      const warning = slotLagWarning(name, slot);
      if (warning) notes.push(warning);
    }
    // Tables new in the publication, or whose copy a crash interrupted, or blocked by a column's
    // type change: copied from a snapshot of now.
    const have = new Set(record!.tables);
    const blocked = await blockedTables(wh, metaSchema);
    for (const t of this.o.tables.filter((x) => blocked.has(x.spec.label) && !copied.includes(x.spec.label))) {
      notes.push(`${Codes.columnTypeChanged}: ${t.spec.label} is copied again from a snapshot: a column changed to a type its raw table could not hold`);
    }
    for (const t of this.o.tables.filter((x) => !have.has(x.spec.label) || blocked.has(x.spec.label) || (added.includes(x.spec) && !copied.includes(x.spec.label)))) {
      if (copied.includes(t.spec.label)) continue;
      await copyTable(wh, oltp, t.spec, { metaSchema, slot: name, known: this.o.known });
      copied.push(t.spec.label);
    }
    const lsn = (await readSlotRecord(wh, metaSchema, name))!.lsn;
    return { lsn, copied, notes, followed: false };
  }

  /**
   * Which tables changed while the lost slot's WAL was being dropped: the counters stored when the
   * queue last held everything vs the OLTP's now. Called once the new slot exists (changes after
   * its start are streamed; a counter they move only copies more) and after the counters of
   * changes committed before it had time to be published.
   */
  private async lostSlotDecision(): Promise<RecopyDecision> {
    const recorded = await readStoredEvidence(this.o.wh, this.o.metaSchema, this.o.name);
    if (recorded) await new Promise((r) => setTimeout(r, this.o.statsSettleMs ?? STATS_SETTLE_MS));
    return tablesToRecopy(this.specs.map((s) => s.label), recorded, await readEvidence(this.o.oltp, this.specs));
  }

  /**
   * The slot, once no session streams it: a consumer killed a moment ago still holds it until
   * the server notices. A follower holds it for good (the caller then only applies the queue).
   */
  private async waitIdleSlot(): Promise<SlotState> {
    const deadline = performance.now() + ACTIVE_SLOT_WAIT_MS;
    for (;;) {
      const slot = await readSlot(this.o.oltp, this.o.name);
      if (slot.heldBy === undefined || slot.heldBy === FOLLOWER_APPLICATION_NAME) return slot;
      if (performance.now() > deadline) {
        throw new TsformError(Codes.slotConflict, `replication slot ${this.o.name} is in use by another session (${slot.heldBy}): another tsform capture of this project is running`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Queues the stream up to the OLTP's WAL position of now (a run's capture) or, without `until`, until `signal`. */
  async stream(
    from: string,
    opts: Pick<ConsumeOptions, 'signal' | 'beforeCommit' | 'afterCommit' | 'batchChanges' | 'batchMs' | 'follower'> & {
      untilNow: boolean;
      onTransaction?: (tx: LogicalTransaction) => Promise<void>;
      /** A follower's interval between two records of the modification counters (default 10 s). */
      evidenceEveryMs?: number;
    },
  ): Promise<ConsumeResult> {
    // The insert position, not pg_current_wal_lsn (the write position): with asynchronous commit
    // a transaction that committed before this capture may not be written yet, and a capture
    // that stopped at the write position would leave it for the next run.
    // The counters are read before that position: once the queue holds everything before it, they
    // are stored as what the queue is known to hold (a lost slot compares them with the OLTP's).
    let probe: EvidenceProbe | undefined = await probeEvidence(this.o.oltp, this.specs);
    let probedAt = performance.now();
    const until = opts.untilNow ? probe.insertLsn : undefined;
    const tables = new Map(this.specs.map((s) => [s.label, s]));
    const onQueued = async (lsn: string): Promise<void> => {
      if (probe && compareLsn(lsn, probe.insertLsn) >= 0) {
        await withRetry(this.o.wh, () => writeEvidence(this.o.wh, this.o.metaSchema, this.o.name, probe!.evidence));
        probe = undefined;
      }
      // a follower records anew now and then, so that its evidence stays close to the slot
      if (!probe && !opts.untilNow && performance.now() - probedAt >= (opts.evidenceEveryMs ?? EVIDENCE_EVERY_MS)) {
        probe = await probeEvidence(this.o.oltp, this.specs);
        probedAt = performance.now();
      }
    };
    return consumeStream({
      onQueued,
      pingWhile: () => probe !== undefined,
      wh: this.o.wh,
      oltp: this.o.oltp,
      replication: this.o.oltp.replication!(),
      metaSchema: this.o.metaSchema,
      slot: this.o.name,
      publication: this.o.name,
      tables,
      known: new Set(this.o.known),
      startLsn: from,
      until,
      ...opts,
    });
  }

  /**
   * One practice's queued changes of one table, applied to raw in its own transactions, in steps
   * until none is left (or `stopsAfter`): what a practice's extract node in `tsform run` does.
   */
  async apply(spec: ResolvedSpec, tenant: string, opts: { stopsAfter?: number } & Pick<QueueApplyOptions, 'batchRows' | 'beforeCommit'> = {}): Promise<ApplyResult> {
    const total: ApplyResult = { changes: 0, upserted: 0, deleted: 0, more: false };
    const blocked = await readBlock(this.o.wh, this.o.metaSchema, spec.label);
    if (blocked) throw new TsformError(Codes.columnTypeChanged, blocked);
    // nothing queued: no transaction (a commit is a disk flush on DuckDB)
    if (!(await this.hasQueued(spec, tenant))) return total;
    for (;;) {
      const r = await withRetry(this.o.wh, () => applyQueues(this.o.wh, this.shapes, spec, this.o.metaSchema, [tenant], { ...opts, verify: this.notBlocked(spec) }));
      for (const p of r.practices) {
        total.changes += p.changes;
        total.upserted += p.upserted;
        total.deleted += p.deleted;
      }
      total.more = r.more;
      if (!r.more) return total;
      if (opts.stopsAfter !== undefined && performance.now() >= opts.stopsAfter) return total;
    }
  }

  /**
   * Every queued change of one table (of `tenants`, or of every practice), applied in groups of
   * small practices per transaction (apply-groups.ts): what `tsform capture` and the follower do.
   * Changes queued after this call started are left for the next call. A practice whose apply
   * fails is isolated and reported in `failed`; the others commit.
   */
  async applyAll(spec: ResolvedSpec, tenants?: readonly string[], opts: Pick<QueueApplyOptions, 'batchRows'> = {}): Promise<GroupedApply> {
    const blocked = await readBlock(this.o.wh, this.o.metaSchema, spec.label);
    if (blocked) throw new TsformError(Codes.columnTypeChanged, blocked);
    const { counts, upTo } = await queuedCounts(this.o.wh, this.o.metaSchema, spec.label);
    const wanted = tenants ? new Set(tenants) : undefined;
    for (const t of [...counts.keys()]) if (wanted && !wanted.has(t)) counts.delete(t);
    if (counts.size === 0) return { applied: [], failed: [] };
    const rows = opts.batchRows ?? APPLY_BATCH_ROWS;
    return applyGroups(
      groupPractices(counts, rows),
      (group) => withRetry(this.o.wh, () => applyQueues(this.o.wh, this.shapes, spec, this.o.metaSchema, group, { ...opts, upTo, queued: group.reduce((n, t) => n + counts.get(t)!, 0), verify: this.notBlocked(spec) })),
      // the SQL itself, or a table blocked by a column's type change: splitting would fail every half
      (err) => this.o.wh.isStatementError(err) || (err instanceof TsformError && err.code === Codes.columnTypeChanged),
    );
  }

  /** Checked again in each apply's transaction: a block committed meanwhile came before the changes it is about. */
  private notBlocked(spec: ResolvedSpec): (s: Session) => Promise<void> {
    return async (s) => {
      const now = await readBlock(s, this.o.metaSchema, spec.label);
      if (now) throw new TsformError(Codes.columnTypeChanged, now);
    };
  }

  private async hasQueued(spec: ResolvedSpec, tenant: string): Promise<boolean> {
    const { rows } = await this.o.wh.query(`SELECT 1 AS x FROM ${quoteRelation(this.o.metaSchema, LOGICAL_QUEUE.name)} WHERE source_table = $1 AND tenant = $2 LIMIT 1`, [spec.label, tenant]);
    return rows.length > 0;
  }
}

/** One practice's apply, summed over its steps. */
export interface ApplyResult {
  /** Queue rows consumed. */
  changes: number;
  /** Keys inserted or updated in raw. */
  upserted: number;
  /** Rows removed from raw (deletes, moves out, truncates). */
  deleted: number;
  /** More queue rows are waiting for this practice (stopped at `stopsAfter`). */
  more: boolean;
}

/** A failed apply in one line without row values (an engine's conversion error can echo one). */
export function safeApplyError(wh: Adapter, err: unknown): string {
  return err instanceof TsformError ? `${err.code}: ${err.message}` : wh.describeError(err);
}

/** Notices of one stream pass: unknown practices, unroutable changes, DDL seen. */
export function streamNotices(name: string, r: ConsumeResult): string[] {
  const out = [...r.notes];
  const unknown = [...r.unknown].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const total = unknown.reduce((a, [, n]) => a + n, 0);
  if (total > 0) {
    out.push(`${name}: ${total} change(s) carry a practice id that is not in tenants.yml, not loaded: ${unknown.slice(0, 5).map(([t, n]) => `${JSON.stringify(t)} (${n})`).join(', ')}`);
  }
  if (r.unroutable > 0) out.push(`${name}: ${r.unroutable} change(s) had no practice id or key (NULL), not loaded`);
  return out;
}

async function ensureCapturedRows(wh: Adapter, metaSchema: string, tenants: readonly string[]): Promise<void> {
  const rel = quoteRelation(metaSchema, CAPTURED_CHANGES.name);
  await withRetry(wh, () =>
    wh.transaction((s: Session) =>
      s.query(
        `INSERT INTO ${rel} (tenant, captured, built) SELECT u.t, 0, 0 FROM unnest($1::VARCHAR[]) AS u(t) WHERE NOT EXISTS (SELECT 1 FROM ${rel} AS c WHERE c.tenant = u.t)`,
        [[...tenants]],
      ),
    ),
  );
}
