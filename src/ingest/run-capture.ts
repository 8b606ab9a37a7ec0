import type { Adapter } from '../adapters/adapter.ts';
import { classifyIfPgError, pgFailureCode } from '../adapters/pg-errors.ts';
import { quoteRelation } from '../sql/quote.ts';
import type { ManifestCapture, ManifestNode, PostgresCapture, SourceNode } from '../artifacts/manifest.ts';
import { CancelledError, Codes, errorClassOf, TransientError, TsformError } from '../errors.ts';
import { CAPTURE_LOCKS } from '../warehouse/meta-schema.ts';
import { horizonGaps, resolveSpec, type CaptureSpec, type RawState, type ResolvedSpec } from './capture-chunk.ts';
import { defaultChunkRows, failureOf, prepareCapture, type ProtectRelation } from './capture.ts';
import { countUnknownTenantRows } from './unknown-practices.ts';
import { countUnplacedRows, unplacedNotice } from './unplaced-rows.ts';
import { BatchCapture } from './batch-capture.ts';
import { captureLandingFiles } from './landing-capture.ts';
import { OltpConnections } from './oltp-connections.ts';
import type { OltpSource } from './oltp-source.ts';
import { captureTenant } from './steady-capture.ts';
import type { SourceColumn } from './source-columns.ts';
import { readWatermarks, STEADY } from './watermarks.ts';
import { LogicalCapture, streamNotices } from './logical/logical-capture.ts';
import { movedAwayNotice, sweepFailedNotice, sweepIndexGap, sweepMovedRows } from './move-sweep.ts';
import { withRetry } from './retry.ts';
import { logicalObjectName } from './logical/slot-setup.ts';

export type { PostgresCapture } from '../artifacts/manifest.ts';

export interface RunCaptureOptions {
  warehouse: Adapter;
  projectRoot: string;
  metaSchema: string;
  tenantColumn: string;
  /** Every practice of tenants.yml: rows of any other practice id are counted, never loaded. */
  knownTenants: readonly string[];
  /** Practices of this run (their lock rows are created once per table). */
  runTenants: readonly string[];
  /** Opens the OLTP named by a source's `url_env` (the CLI reads the variable; tests inject faults). */
  openOltp: (capture: PostgresCapture) => Promise<OltpSource>;
  /** tsform.yml `name`: the publication and slot of log-based capture are named after it. */
  projectName?: string;
  /** Every source of the manifest captured in mode logical (one stream per OLTP carries them all). */
  logicalNodes?: readonly (SourceNode & { capture: PostgresCapture })[];
}

/** A source with `capture:` in sources.yml. */
export type CapturedSourceNode = SourceNode & { capture: ManifestCapture };

/** What one practice's capture of one source did (the runner's BuildOutcome, execute/strategy.ts). */
export interface CaptureOutcome {
  /** Rows written per practice. */
  rows: Map<string | null, number>;
  /** Counted problems that are not failures (e.g. source rows of unknown practices). */
  notes: string[];
  /** The time slice ran out with chunks left; what was done is committed. */
  workLeft?: boolean;
  /** Other practices whose slices lost rows that moved to this one (BuildOutcome.changedElsewhere). */
  changedElsewhere?: string[];
}

/** The row-level security of any captured source's raw table (log-based capture creates them all at once). */
export type ProtectOf = (node: ManifestNode) => ProtectRelation;

interface PreparedTable {
  spec: ResolvedSpec;
  oltp: OltpSource;
  raw: RawState;
  /** The source's columns when the table was prepared. */
  source: readonly SourceColumn[];
}

/**
 * A practice's capture gives its slot back after this long when it has chunks left, and runs
 * again after every practice with less service (CaptureOutcome.workLeft): a large backlog waits
 * behind itself, never in front of a small practice.
 */
const DEFAULT_SLICE_MS = 10_000;

/**
 * The capture side of one run: builds a captured source for one practice at a time (the runner
 * calls `captureNode` per (source table, practice) node). Work that concerns a whole table —
 * the raw table and drift check, lock rows, counting rows of unknown practices — is done once
 * per table per run, not once per practice.
 */
export class RunCapture {
  private readonly oltps: OltpConnections;
  private readonly tables = new Map<string, Promise<PreparedTable>>();
  private readonly notices: string[] = [];
  /** Things only an operator can do (a backfill), once each: the run exits non-zero while any is open. */
  private readonly actions = new Set<string>();
  /** Unknown-practice rows in landing files per source: summed over practice folders, or the most any practice's read of shared files saw. */
  private readonly landingUnknown = new Map<string, number>();
  /** Landing entries not read (links, not regular files), counted as landingUnknown is. */
  private readonly landingRefused = new Map<string, number>();
  /** Checks and captures a batch's practices of one table together (batch-capture.ts). */
  private readonly batches: BatchCapture;

  constructor(private readonly opts: RunCaptureOptions) {
    this.oltps = new OltpConnections(opts.openOltp);
    this.batches = new BatchCapture(opts.warehouse, opts.metaSchema, [opts.runTenants]);
  }

  /**
   * The plan's batches (after onboarding practices were put in batches of their own): the OLTP
   * is asked once per table and batch which practices have anything to capture, when the first
   * of them runs; its batch-mates' extracts follow it. Until told, the run's practices are one batch.
   */
  useBatches(batches: readonly (readonly string[])[]): void {
    this.batches.useBatches(batches);
  }

  /** Counted problems of the whole run (unknown practice ids, landing entries not read), one line per table. */
  runNotices(): string[] {
    const landing = [...this.landingUnknown].map(
      ([node, n]) => `${node}: ${n} row(s) in landing files carry a ${this.opts.tenantColumn} that is not in tenants.yml; not loaded`,
    );
    const refused = [...this.landingRefused].map(
      ([node, n]) => `${node}: ${n} entr${n === 1 ? 'y' : 'ies'} in landing folders not loaded (symbolic links or not regular files; each named in its practice's notes)`,
    );
    return [...this.notices, ...landing, ...refused];
  }

  /** What the operator must do for the captured data to be complete (each names its command). */
  actionsNeeded(): string[] {
    return [...this.actions];
  }

  readonly captureNode = async (node: CapturedSourceNode, tenant: string, protect?: ProtectRelation, protectOf?: ProtectOf): Promise<CaptureOutcome> => {
    const capture = node.capture;
    switch (capture.kind) {
      case 'postgres':
        if (capture.mode === 'logical') return this.captureLogical(node, capture, tenant, protectOf);
        return this.capturePostgres(node, capture, tenant, protect);
      case 'csv_landing': {
        const r = await captureLandingFiles(this.opts.warehouse, node, capture, tenant, { ...this.opts, protect }).catch((err: unknown) => {
          throw asTenantError(this.opts.warehouse, tenant, err);
        });
        // A shared file (practice_column) is read by every practice: count what it holds once.
        const count = (m: Map<string, number>, n: number) => {
          const before = m.get(node.name) ?? 0;
          if (n > 0) m.set(node.name, capture.layout === 'practice_column' ? Math.max(before, n) : before + n);
        };
        count(this.landingUnknown, r.unknownTenantRows);
        count(this.landingRefused, r.refused);
        return { rows: new Map([[tenant, r.loaded]]), notes: r.notes };
      }
      default: {
        const never: never = capture;
        throw new Error(`unknown capture ${JSON.stringify(never)}`);
      }
    }
  };

  /** One practice's steady extract: chunk after chunk from its watermark, each chunk committed with its watermark. */
  private async capturePostgres(node: ManifestNode, capture: PostgresCapture, tenant: string, protect?: ProtectRelation): Promise<CaptureOutcome> {
    const wh = this.opts.warehouse;
    const notes: string[] = [];
    let loaded = 0;
    let deleted = 0;
    let workLeft = false;
    let movedOutOf: string[] = [];
    const started = performance.now();
    try {
      const { spec, oltp, raw, source } = await this.prepare(node, capture, protect);
      const chunkRows = capture.chunk_rows ?? defaultChunkRows(wh);
      const batched = await this.batches.outcome({ node: node.name, spec, oltp, raw, source, chunkRows, timeoutMs: capture.timeout_ms }, tenant);
      if (batched) {
        const notes = batched.deleted > 0 ? [`${batched.deleted} deleted row(s) removed`] : [];
        return { rows: new Map([[tenant, batched.loaded]]), notes, changedElsewhere: batched.movedOutOf };
      }
      const after = (await readWatermarks(wh, this.opts.metaSchema, spec.label, STEADY, [tenant])).get(tenant);
      const r = await captureTenant(wh, oltp, spec, this.opts.metaSchema, raw, {
        tenant,
        after,
        chunkRows,
        timeoutMs: capture.timeout_ms,
        stopsAfter: started + (capture.slice_ms ?? DEFAULT_SLICE_MS),
      });
      ({ loaded, deleted, workLeft, movedOutOf } = r);
      for (const c of r.added) notes.push(`new source column "${c}" added to ${spec.rawSchema}.${spec.table}`);
      for (const c of r.needsBackfill) {
        notes.push(`column "${c}" was added to the source with values capture cannot know for earlier rows`);
        this.actions.add(backfillAction(node.name, spec, c));
      }
    } catch (err) {
      throw asTenantError(wh, tenant, err);
    }
    if (deleted > 0) notes.push(`${deleted} deleted row(s) removed`);
    return { rows: new Map([[tenant, loaded]]), notes, workLeft, changedElsewhere: movedOutOf };
  }

  /**
   * One practice's log-based extract: the OLTP's stream is queued once per run (the first
   * practice's node of any logical table waits for it, the others share it), then this practice's
   * queue of this table is applied, in its own transactions.
   */
  private async captureLogical(node: ManifestNode, capture: PostgresCapture, tenant: string, protectOf?: ProtectOf): Promise<CaptureOutcome> {
    const started = performance.now();
    try {
      const lc = await this.logicalStream(capture, protectOf);
      const spec = lc.specs.find((s) => s.label === `${capture.schema}.${node.identifier}`)!;
      const r = await lc.apply(spec, tenant, { stopsAfter: started + (capture.slice_ms ?? DEFAULT_SLICE_MS) });
      const notes = [`${r.changes} change(s) applied from the replication stream`];
      if (r.deleted > 0) notes.push(`${r.deleted} row(s) removed (deleted or moved to another practice)`);
      return { rows: new Map([[tenant, r.upserted]]), notes, workLeft: r.more };
    } catch (err) {
      throw asTenantError(this.opts.warehouse, tenant, err);
    }
  }

  private readonly logical = new Map<string, Promise<LogicalCapture>>();

  private logicalStream(capture: PostgresCapture, protectOf?: ProtectOf): Promise<LogicalCapture> {
    let p = this.logical.get(capture.url_env);
    if (!p) {
      p = (async () => {
        const nodes = (this.opts.logicalNodes ?? []).filter((n) => n.capture.url_env === capture.url_env);
        const lc = new LogicalCapture({
          wh: this.opts.warehouse,
          oltp: await this.oltps.get(capture),
          metaSchema: this.opts.metaSchema,
          name: logicalObjectName(this.opts.projectName ?? 'tsform', capture.url_env),
          tables: nodes.map((n) => ({ spec: resolveSpec(captureSpecOf(n, n.capture, this.opts.tenantColumn)), protect: protectOf?.(n) })),
          known: this.opts.knownTenants,
        });
        const setup = await lc.setUp(this.opts.runTenants);
        this.notices.push(...setup.notes);
        // a follower streams; the run applies what it has queued
        if (!setup.followed) this.notices.push(...streamNotices(lc.o.name, await lc.stream(setup.lsn, { untilNow: true })));
        return lc;
      })();
      // a failed stream (a lost connection is retried by the runner) is read again by the retry, not remembered
      p.catch(() => this.logical.delete(capture.url_env));
      this.logical.set(capture.url_env, p);
    }
    return p;
  }

  private prepare(node: ManifestNode, capture: PostgresCapture, protect?: ProtectRelation): Promise<PreparedTable> {
    let p = this.tables.get(node.name);
    if (!p) {
      p = (async () => {
        const spec = resolveSpec(captureSpecOf(node, capture, this.opts.tenantColumn));
        const oltp = await this.oltps.get(capture);
        const { source, ...raw } = await prepareCapture(this.opts.warehouse, oltp, spec, this.opts.metaSchema, this.opts.runTenants, protect);
        const unknown = await countUnknownTenantRows(oltp, spec, this.opts.knownTenants);
        for (const gap of await horizonGaps(oltp, spec)) this.notices.push(`${node.name}: ${gap}`);
        const unplaced = unplacedNotice(node.name, spec, await countUnplacedRows(oltp, spec, source.find((c) => c.name === spec.updatedColumn)?.sourceType));
        if (unplaced) this.notices.push(unplaced);
        const indexGap = await sweepIndexGap(oltp, spec);
        if (indexGap) this.notices.push(`${node.name}: ${indexGap}`);
        if (unknown.total > 0) {
          this.notices.push(`${node.name}: ${unknown.total} row(s) in ${spec.label} carry a ${spec.tenantColumn} that is not in tenants.yml, not loaded: ${unknown.shown}`);
        }
        // before any extract of this table: no practice's models are built with a copy the sweep removes
        const swept = await withRetry(this.opts.warehouse, () => sweepMovedRows(this.opts.warehouse, oltp, spec, this.opts.metaSchema, this.opts.knownTenants), oltp).catch((err: unknown) => {
          // the practices' own captures go on; the sweep's position did not move, so the next run sweeps again
          this.notices.push(`${node.name}: ${sweepFailedNotice(err)}`);
          return undefined;
        });
        if (swept && swept.away.rows > 0) this.notices.push(movedAwayNotice(node.name, swept.away));
        return { spec, oltp, raw, source };
      })();
      this.tables.set(node.name, p);
    }
    return p;
  }

  async close(): Promise<void> {
    await this.oltps.close();
  }
}

/**
 * A column added with a volatile default (the OLTP rewrote every row without bumping
 * updated_at) or made NOT NULL after a fill: raw's earlier rows are NULL there until every
 * practice is read again.
 */
export function backfillAction(nodeName: string, spec: ResolvedSpec, column: string): string {
  return `${nodeName}: column "${column}" of ${spec.label} has values for earlier rows that capture cannot read without re-reading them; raw holds NULL there until you run: tsform backfill --select ${nodeName} --all-tenants`;
}

/** The ingest spec of a captured source: the OLTP table and the raw table share the identifier. */
export function captureSpecOf(node: ManifestNode, capture: PostgresCapture, tenantColumn: string): CaptureSpec {
  return {
    table: node.identifier,
    key: capture.key,
    tenantColumn,
    sourceSchema: capture.schema,
    rawSchema: node.schema,
    updatedColumn: capture.updated_at,
    deletedColumn: capture.deleted_at,
    ...(capture.settle_seconds !== undefined ? { settleSeconds: capture.settle_seconds } : {}),
  };
}

/**
 * A capture failure as a coded error that names the practice (the runner reports it on that
 * practice's node). A lost connection (TSF409) is transient, so the runner retries the extract,
 * which resumes from the practice's committed watermark; a cancelled read (TSF411) is not.
 */
export function asTenantError(wh: Adapter, tenant: string, err: unknown): TsformError {
  const f = failureOf(wh, tenant, err);
  const where = err instanceof TsformError ? err.where : {};
  const code = err instanceof TsformError ? err.code : (pgFailureCode(err) ?? Codes.sqlError);
  // the OLTP's failures by the OLTP's classifier (PostgreSQL, whatever the warehouse is), the rest by the warehouse's
  const errorClass = errorClassOf(err) ?? classifyIfPgError(err) ?? wh.classifyError(err);
  switch (errorClass) {
    case 'transient':
      return new TransientError(f.message, code, where);
    case 'cancelled':
      return new CancelledError(f.message, code, where);
    case 'permanent':
      return new TsformError(code, f.message, where);
    default: {
      const never: never = errorClass;
      throw new RangeError(`unknown error class '${String(never)}'`);
    }
  }
}

/**
 * Practices being onboarded: no committed capture chunk yet (an empty one counts) for one of
 * these tables while other practices have one. Empty on a warehouse's first capture (everyone
 * starts from zero then, and isolating everyone would only undo batching).
 */
export async function onboardingTenants(wh: Adapter, metaSchema: string, tableLabels: readonly string[], tenants: readonly string[]): Promise<Set<string>> {
  if (tableLabels.length === 0 || !(await wh.describe(metaSchema, CAPTURE_LOCKS.name))) return new Set();
  const { rows } = await wh.query(
    `SELECT source_table, tenant FROM ${quoteRelation(metaSchema, CAPTURE_LOCKS.name)} WHERE chunks > 0 AND source_table = ANY($1::VARCHAR[])`,
    [[...tableLabels]],
  );
  if (rows.length === 0) return new Set();
  const has = new Set(rows.map((r) => `${String(r.source_table)}\u0000${String(r.tenant)}`));
  return new Set(tenants.filter((t) => tableLabels.some((l) => !has.has(`${l}\u0000${t}`))));
}
