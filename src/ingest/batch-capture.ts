import type { Adapter } from '../adapters/adapter.ts';
import { checkBatch, readCaptureState, type BatchCheck, type CaptureState } from './batch-check.ts';
import { readCommitHorizon, type RawState, type ResolvedSpec } from './capture-chunk.ts';
import { captureGroup, type GroupCounts } from './group-capture.ts';
import type { OltpSource } from './oltp-source.ts';
import type { SourceColumn } from './source-columns.ts';

/**
 * A commit horizon younger than this is reused by the next batch's check of the same OLTP: an
 * older horizon is still exact (rows below it stay committed for good), it only leaves the rows
 * of the last moment to the practice's next capture. The batches of a run's first tables are
 * checked within a second or two of each other.
 */
const HORIZON_REUSE_MS = 1_000;

/** One captured table as a run prepared it. */
export interface BatchTable {
  /** The extract node's name (`source:ehr.encounters`): one round per node and batch. */
  node: string;
  spec: ResolvedSpec;
  oltp: OltpSource;
  raw: RawState;
  /** The source's columns as the run read them when it prepared the table. */
  source: readonly SourceColumn[];
  /** Rows per chunk: a batch captured together reads at most this many, a share per practice. */
  chunkRows: number;
  timeoutMs?: number;
}

/** One table × batch: what the check found, and the practices captured together. */
interface Round {
  check: BatchCheck;
  members: ReadonlySet<string>;
  group?: Promise<Map<string, GroupCounts> | undefined>;
}

/**
 * The per-node cost of watermark capture, paid once per table and batch instead (issue 14): when
 * the first practice of a batch reaches its extract of a table, the OLTP is asked in one query
 * what each practice of the batch has after its watermark (batch-check.ts). A practice with
 * nothing runs no chunk; the small backlogs (each below its share of a chunk) are captured
 * together in one read and one warehouse transaction (group-capture.ts), and the batch-mates'
 * extracts, which the runner runs right after, report what it did for them. Everything else —
 * a large backlog, a practice whose group failed, a table whose columns changed — takes the
 * practice's own chunks, as before. The runner's order is unchanged: every practice still has
 * its own extract node and result.
 */
export class BatchCapture {
  private readonly batchOf = new Map<string, { index: number; tenants: readonly string[] }>();
  private readonly rounds = new Map<string, Promise<Round | undefined>>();
  /** Per table: watermarks and captured practices, read once. */
  private readonly states = new Map<string, Promise<CaptureState>>();
  private readonly horizons = new Map<OltpSource, Map<number, { at: number; horizon: Promise<string> }>>();

  constructor(
    private readonly wh: Adapter,
    private readonly metaSchema: string,
    batches: readonly (readonly string[])[],
  ) {
    this.useBatches(batches);
  }

  useBatches(batches: readonly (readonly string[])[]): void {
    this.batchOf.clear();
    this.rounds.clear();
    this.states.clear();
    batches.forEach((tenants, index) => {
      for (const t of tenants) this.batchOf.set(t, { index, tenants });
    });
  }

  /**
   * What the batch did for this practice's extract of the table: its counts (nothing to capture
   * is zero of each), or undefined when the practice captures on its own.
   */
  async outcome(table: BatchTable, tenant: string): Promise<GroupCounts | undefined> {
    const round = await this.round(table, tenant);
    if (!round || round.check.drift) return undefined;
    if (round.check.pending.get(tenant) === 0 && round.check.captured.has(tenant)) return { loaded: 0, deleted: 0, movedOutOf: [] };
    if (!round.members.has(tenant)) return undefined;
    round.group ??= captureGroup(
      this.wh,
      table.oltp,
      table.spec,
      this.metaSchema,
      table.raw,
      [...round.members].map((t) => ({ tenant: t, after: round.check.watermarks.get(t) })),
      { horizon: round.check.horizon, timeoutMs: table.timeoutMs },
    ).catch(
      // rolled back whole: each member's own extract reads its own chunks (and fails alone, by practice)
      () => undefined,
    );
    return (await round.group)?.get(tenant);
  }

  private round(table: BatchTable, tenant: string): Promise<Round | undefined> {
    const batch = this.batchOf.get(tenant) ?? { index: -1, tenants: [tenant] };
    const key = `${table.node}\u0000${batch.index}`;
    let round = this.rounds.get(key);
    if (!round) {
      const cap = Math.max(1, Math.floor(table.chunkRows / batch.tenants.length));
      round = (async () => {
        const state = await this.state(table);
        // before the check's snapshot (its statement)
        const horizon = await this.horizon(table.oltp, table.spec.settleSeconds);
        const check = await checkBatch(table.oltp, table.spec, table.source, table.raw, state, batch.tenants, { horizon, cap });
        return { check, members: groupMembers(check, batch.tenants, cap) };
      })().catch(
        // an OLTP that fails the check fails each practice's own extract, by practice
        () => undefined,
      );
      this.rounds.set(key, round);
    }
    return round;
  }

  private state(table: BatchTable): Promise<CaptureState> {
    let p = this.states.get(table.node);
    if (!p) {
      p = readCaptureState(this.wh, this.metaSchema, table.spec, [...this.batchOf.keys()]);
      // a failed read is asked again by the next batch
      p.catch(() => this.states.delete(table.node));
      this.states.set(table.node, p);
    }
    return p;
  }

  private horizon(oltp: OltpSource, settleSeconds: number): Promise<string> {
    let bySettle = this.horizons.get(oltp);
    if (!bySettle) this.horizons.set(oltp, (bySettle = new Map()));
    const now = performance.now();
    const cached = bySettle.get(settleSeconds);
    if (cached && now - cached.at < HORIZON_REUSE_MS) return cached.horizon;
    const horizon = readCommitHorizon(oltp, settleSeconds);
    horizon.catch(() => bySettle.delete(settleSeconds));
    bySettle.set(settleSeconds, { at: now, horizon });
    return horizon;
  }
}

/**
 * The practices worth capturing together: a backlog of at most `cap` rows, or a first capture
 * (which commits even when empty, ending the practice's onboarding). One alone gains nothing.
 */
function groupMembers(check: BatchCheck, tenants: readonly string[], cap: number): ReadonlySet<string> {
  if (check.drift) return new Set();
  const members = tenants.filter((t) => {
    const n = check.pending.get(t);
    return n !== undefined && n <= cap && (n > 0 || !check.captured.has(t));
  });
  return new Set(members.length >= 2 ? members : []);
}
