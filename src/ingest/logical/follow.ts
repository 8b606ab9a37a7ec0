import { compareLsn } from '../../adapters/logical-replication.ts';
import { Codes, TsformError } from '../../errors.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { LogicalCapture, safeApplyError, streamNotices } from './logical-capture.ts';
import { queuedPractices } from './queue-writer.ts';
import { readSlot, slotLagWarning } from './slot-setup.ts';

export interface FollowOptions {
  /** Practices to apply (every practice of tenants.yml is streamed and queued either way). */
  tenants: readonly string[];
  /** SIGTERM / Ctrl-C: the stream stops between transactions, what it received is committed and applied, then the call returns. */
  signal: AbortSignal;
  /** Progress lines: per practice and table, how many changes were applied; warnings. */
  onProgress?: (line: string) => void;
  /** How often queued practices are applied (default 500 ms): raw stays this close to the queue. */
  applyEveryMs?: number;
  /** How often the slot's WAL retention is checked against max_slot_wal_keep_size (default 30 s). */
  lagCheckEveryMs?: number;
}

export interface FollowSummary {
  changes: number;
  applied: Map<string, number>;
  notices: string[];
}

/**
 * `tsform capture --follow`: one long stream per OLTP into the per-practice queue, and a loop
 * that applies each practice's queue as soon as changes for it are committed, so every
 * practice's raw stays within about a second of the OLTP. One practice's failing apply is
 * reported and retried on the next pass; the others go on.
 */
export async function followCapture(lc: LogicalCapture, opts: FollowOptions): Promise<FollowSummary> {
  const say = opts.onProgress ?? (() => undefined);
  const summary: FollowSummary = { changes: 0, applied: new Map(), notices: [] };
  const specs = new Map(lc.specs.map((s) => [s.label, s]));
  const wanted = new Set(opts.tenants);
  const setup = await lc.setUp(opts.tenants);
  if (setup.followed) throw new TsformError(Codes.slotConflict, `replication slot ${lc.o.name} is streaming to another tsform capture --follow of this project: one follower per project and OLTP`);
  for (const n of setup.notes) say(`notice: ${n}`);
  summary.notices.push(...setup.notes);
  if (setup.copied.length > 0) say(`copied ${setup.copied.join(', ')} from a snapshot`);

  const dirty = new Map<string, Set<string>>();
  const mark = (table: string, tenants: Iterable<string>): void => {
    for (const t of tenants) if (wanted.has(t)) dirty.set(table, (dirty.get(table) ?? new Set()).add(t));
  };
  // whatever an earlier process queued and did not apply
  for (const [table, tenants] of await queuedPractices(lc.o.wh, lc.o.metaSchema)) if (specs.has(table)) mark(table, tenants);

  let stopping = false;
  let wake: (() => void) | undefined;
  const applyPass = async (): Promise<void> => {
    const work = [...dirty];
    dirty.clear();
    for (const [table, tenants] of work) {
      const spec: ResolvedSpec = specs.get(table)!;
      let r: Awaited<ReturnType<LogicalCapture['applyAll']>>;
      try {
        r = await lc.applyAll(spec, [...tenants]);
      } catch (err) {
        // the queue could not be read, or the table is blocked by a column's type change (it waits
        // for new changes, said once per batch, not every pass: a set-up copies it again)
        if (!isBlock(err)) mark(table, tenants);
        say(`${table}\tapply failed: ${safeApplyError(lc.o.wh, err)}`);
        continue;
      }
      for (const p of r.applied) {
        if (p.changes === 0) continue;
        summary.changes += p.changes;
        summary.applied.set(p.tenant, (summary.applied.get(p.tenant) ?? 0) + p.changes);
        say(`${p.tenant}\t${table}\t${p.changes} change(s): ${p.upserted} upserted, ${p.deleted} removed`);
      }
      for (const { tenant, error } of r.failed) {
        // retried on the next pass; the other practices went on
        if (!isBlock(error)) mark(table, [tenant]);
        say(`${tenant}\t${table}\tapply failed: ${safeApplyError(lc.o.wh, error)}`);
      }
    }
  };
  const applier = (async () => {
    let lastLag = 0;
    while (!stopping || dirty.size > 0) {
      await applyPass();
      if (performance.now() - lastLag >= (opts.lagCheckEveryMs ?? 30_000)) {
        lastLag = performance.now();
        const warning = slotLagWarning(lc.o.name, await readSlotQuietly(lc));
        if (warning) {
          say(`warning: ${warning}`);
          summary.notices.push(warning);
        }
      }
      if (stopping && dirty.size === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, opts.applyEveryMs ?? 500);
      });
      wake = undefined;
    }
  })();

  let lastLsn = setup.lsn;
  try {
    const streamed = await lc.stream(setup.lsn, {
      untilNow: false,
      follower: true,
      signal: opts.signal,
      afterCommit: async (lsn, tenants) => {
        if (compareLsn(lsn, lastLsn) > 0) lastLsn = lsn;
        for (const [table, ts] of tenants) mark(table, ts);
        wake?.();
      },
    });
    const notes = streamNotices(lc.o.name, streamed);
    for (const n of notes) say(`notice: ${n}`);
    summary.notices.push(...notes);
  } finally {
    stopping = true;
    wake?.();
    await applier;
  }
  say(`stopped at ${lastLsn}: ${summary.changes} change(s) applied`);
  return summary;
}

function isBlock(err: unknown): boolean {
  return err instanceof TsformError && err.code === Codes.columnTypeChanged;
}

async function readSlotQuietly(lc: LogicalCapture) {
  try {
    return await readSlot(lc.o.oltp, lc.o.name);
  } catch {
    // a status check only: the stream itself reports a broken connection
    return { exists: false };
  }
}
