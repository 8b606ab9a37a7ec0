import type { Adapter } from '../adapters/adapter.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { postgresCaptured, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { selectNodes, selectTenants } from '../graph/select.ts';
import { backfillTenant, type BackfillResult } from '../ingest/backfill.ts';
import { OltpConnections } from '../ingest/oltp-connections.ts';
import { captureSpecOf, type PostgresCapture } from '../ingest/run-capture.ts';
import { drain, FairScheduler, type SchedulerUnit } from '../schedule/index.ts';
import { applyPolicyFoundation } from '../execute/apply-policies.ts';
import { protectWith } from '../execute/strategies/relation-write.ts';
import { compileWorkspace, openAdapter, policyContext, resolveTarget } from './api.ts';
import { openOltpFromEnv, type OpenOltp } from './capture-wiring.ts';

export interface BackfillRequest {
  projectDir: string;
  target?: string;
  /** Practices to re-capture (required unless allTenants: a backfill is always named). */
  tenants: string[];
  /** Every practice of tenants.yml (`--all-tenants`): after a source column needs its earlier rows read again. */
  allTenants?: boolean;
  /** Captured sources to backfill (default: every PostgreSQL-captured source). */
  select?: string[];
  /** updated_at range: `from` inclusive, `to` exclusive (ISO date or timestamp). */
  from?: string;
  to?: string;
  chunkRows?: number;
  /** Stop after this many chunks per (table, practice); the same command resumes. */
  maxChunks?: number;
  /** Stops between chunks (Ctrl-C); the same command resumes. */
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
  adapter?: Adapter;
  openOltp?: OpenOltp;
}

export interface BackfillOutcome extends BackfillResult {
  source: string;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;
const BACKFILL_POOL = 'backfill';

interface BackfillUnit extends SchedulerUnit {
  node: ManifestNode;
  capture: PostgresCapture;
  tenant: string;
}

/**
 * Re-captures practices (optionally an updated_at range) from the OLTP in the `backfill` pool:
 * one unit per (source table, practice), each in bounded chunks that commit with the backfill's
 * own watermark, so an interrupted backfill resumes where it stopped and steady capture of the
 * same practice waits for at most one chunk (both take the practice's capture lock per chunk).
 */
export async function backfillWorkspace(req: BackfillRequest): Promise<BackfillOutcome[]> {
  for (const [flag, v] of [['--from', req.from], ['--to', req.to]] as const) {
    if (v !== undefined && !ISO_DATE.test(v)) throw new TsformError(Codes.badDateArgument, `${flag} ${JSON.stringify(v)} is not an ISO date or timestamp (2024-01-31 or 2024-01-31T12:00:00Z)`);
  }
  if (req.tenants.length === 0 && !req.allTenants) throw new TsformError(Codes.badTenantArgument, 'backfill needs --tenant <id> (or --all-tenants)');
  const ws = compileWorkspace(req.projectDir, { write: false });
  const tenants = selectTenants(ws.project.tenants, req.allTenants ? undefined : req.tenants).map((t) => t.id);
  const selected = req.select?.length ? selectNodes(ws.dag, req.select, undefined) : undefined;
  const chosen = postgresCaptured(ws.manifest).filter((n) => !selected || selected.has(n.name));
  // A backfill reads updated_at ranges; a source in mode logical is copied again from a new slot instead.
  const sources = chosen.filter((n) => n.capture.mode !== 'logical');
  if (sources.length === 0) {
    throw new TsformError(
      Codes.badSelector,
      chosen.length > 0
        ? 'the selected sources are captured in mode logical: backfill reads updated_at ranges and does not apply to them (to copy them again, drop the replication slot and run capture)'
        : 'no source captured from PostgreSQL is selected: nothing to backfill',
    );
  }
  const pools = ws.project.config.pools;
  if (!pools[BACKFILL_POOL]) throw new TsformError(Codes.invalidRunSetting, `tsform.yml declares no '${BACKFILL_POOL}' pool (pools: { backfill: { slots: 1 } })`, { file: 'tsform.yml' });

  const wh = req.adapter ?? (await openAdapter(ws.project, resolveTarget(ws.project, req.target)));
  // A backfill may be the first to create a raw table (a practice onboarded by backfill): roles
  // and the membership table must exist so that the table is protected as it is created.
  const policy = wh.capabilities.rowLevelSecurity ? policyContext(ws) : undefined;
  if (policy) await wh.transaction((s) => applyPolicyFoundation(s, policy));
  const oltps = new OltpConnections(req.openOltp ?? openOltpFromEnv(process.env));
  const say = req.onProgress ?? (() => undefined);
  const out: BackfillOutcome[] = [];
  try {
    // Only the backfill pool: a backfill never takes a steady slot (DESIGN §6).
    const scheduler = new FairScheduler<BackfillUnit>({ pools: { [BACKFILL_POOL]: pools[BACKFILL_POOL] } });
    for (const tenant of tenants) {
      for (const node of sources) scheduler.submit({ id: `${node.name}@${tenant}`, lane: tenant, pool: BACKFILL_POOL, node, capture: node.capture, tenant });
    }
    await drain(scheduler, async (u) => {
      const r = await runUnit(u);
      out.push(r);
      return { outcome: r.failure ? 'error' : 'success' };
    });
  } finally {
    await oltps.close();
    if (!req.adapter) await wh.close();
  }
  return out;

  async function runUnit(u: BackfillUnit): Promise<BackfillOutcome> {
    const label = `${u.node.name}@${u.tenant}`;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    req.signal?.addEventListener('abort', onAbort);
    try {
      const oltp = await oltps.get(u.capture);
      const r = await backfillTenant(wh, oltp, captureSpecOf(u.node, u.capture, ws.project.config.tenantColumn), u.tenant, {
        from: req.from,
        to: req.to,
        metaSchema: ws.project.config.schemas.meta,
        chunkRows: req.chunkRows ?? u.capture.chunk_rows,
        timeoutMs: u.capture.timeout_ms,
        protect: (s) => protectWith(policy, s, u.node),
        signal: stop.signal,
        onProgress: (p) => {
          say(`backfill ${label}: chunk ${p.chunk}, ${p.rowsThisRun} row(s) so far, at updated_at ${p.position ?? '-'}`);
          if (req.maxChunks !== undefined && p.chunk >= req.maxChunks) stop.abort();
        },
      });
      say(
        r.failure
          ? `backfill ${label}: FAILED: ${r.failure.message}`
          : r.complete
            ? `backfill ${label}: complete, ${r.rows} row(s), ${r.deleted} deletion(s) in ${r.chunks} chunk(s)`
            : `backfill ${label}: stopped after ${r.chunks} chunk(s), ${r.rows} row(s); run the same command again to resume`,
      );
      return { ...r, source: u.node.name };
    } catch (err) {
      // Opening the OLTP failed: this unit fails, the others go on.
      const message = `${u.tenant}: ${err instanceof TsformError ? err.message : safeDbMessage(err, 1)}`;
      say(`backfill ${label}: FAILED: ${message}`);
      return { tenant: u.tenant, rows: 0, deleted: 0, chunks: 0, complete: false, failure: { tenant: u.tenant, message }, source: u.node.name };
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
    }
  }
}
