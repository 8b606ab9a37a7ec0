import type { Adapter } from '../adapters/adapter.ts';
import { postgresCaptured } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { applyPolicyFoundation } from '../execute/apply-policies.ts';
import { protectWith } from '../execute/strategies/relation-write.ts';
import { selectTenants } from '../graph/select.ts';
import { resolveSpec } from '../ingest/capture-spec.ts';
import { followCapture } from '../ingest/logical/follow.ts';
import { LogicalCapture, safeApplyError, streamNotices } from '../ingest/logical/logical-capture.ts';
import { logicalObjectName } from '../ingest/logical/slot-setup.ts';
import { OltpConnections } from '../ingest/oltp-connections.ts';
import { captureSpecOf } from '../ingest/run-capture.ts';
import { compileWorkspace, openAdapter, policyContext, resolveTarget } from './api.ts';
import { openOltpFromEnv, type OpenOltp } from './capture-wiring.ts';

export interface CaptureRequest {
  projectDir: string;
  target?: string;
  tenants?: string[];
  /** Keep streaming until `signal` (SIGTERM, Ctrl-C); otherwise one pass up to the OLTP's WAL position of now. */
  follow: boolean;
  signal: AbortSignal;
  onProgress: (line: string) => void;
  adapter?: Adapter;
  openOltp?: OpenOltp;
}

/**
 * `tsform capture [--follow]`: log-based capture of every source in mode logical, without
 * building models. One pass queues the stream up to now and applies every practice's queue;
 * `--follow` keeps streaming and applying until stopped, then commits what it received and exits.
 * Models are built by `tsform run --select state:captured+`, for the practices that changed.
 */
export async function captureWorkspace(req: CaptureRequest): Promise<number> {
  const ws = compileWorkspace(req.projectDir, { write: false });
  const tenants = selectTenants(ws.project.tenants, req.tenants).map((t) => t.id);
  const nodes = postgresCaptured(ws.manifest).filter((n) => n.capture.mode === 'logical');
  if (nodes.length === 0) throw new TsformError(Codes.invalidRunSetting, 'no source is captured in mode logical (loader: postgres: { mode: logical } in sources.yml)', { file: 'models' });
  const wh = req.adapter ?? (await openAdapter(ws.project, resolveTarget(ws.project, req.target)));
  const policy = wh.capabilities.rowLevelSecurity ? policyContext(ws) : undefined;
  if (policy) await wh.transaction((s) => applyPolicyFoundation(s, policy));
  const oltps = new OltpConnections(req.openOltp ?? openOltpFromEnv(process.env));
  const meta = ws.project.config.schemas.meta;
  try {
    const byOltp = new Map<string, typeof nodes>();
    for (const n of nodes) byOltp.set(n.capture.url_env, [...(byOltp.get(n.capture.url_env) ?? []), n]);
    const captures = await Promise.all(
      [...byOltp].map(
        async ([urlEnv, group]) =>
          new LogicalCapture({
            wh,
            oltp: await oltps.get(group[0]!.capture),
            metaSchema: meta,
            name: logicalObjectName(ws.project.config.name, urlEnv),
            tables: group.map((n) => ({ spec: resolveSpec(captureSpecOf(n, n.capture, ws.project.config.tenantColumn)), protect: (s) => protectWith(policy, s, n) })),
            known: ws.project.tenants.map((t) => t.id),
          }),
      ),
    );
    if (req.follow) {
      req.onProgress(`following ${captures.length} OLTP stream(s) for ${tenants.length} practice(s); SIGTERM or Ctrl-C stops after committing what was received`);
      await Promise.all(captures.map((lc) => followCapture(lc, { tenants, signal: req.signal, onProgress: req.onProgress })));
      return 0;
    }
    let failed = 0;
    for (const lc of captures) {
      const setup = await lc.setUp(tenants);
      const streamed = setup.followed ? undefined : await lc.stream(setup.lsn, { untilNow: true, signal: req.signal });
      for (const n of [...setup.notes, ...(streamed ? streamNotices(lc.o.name, streamed) : [])]) req.onProgress(`notice: ${n}`);
      for (const spec of lc.specs) {
        const r = await lc.applyAll(spec, tenants);
        for (const p of r.applied) if (p.changes > 0) req.onProgress(`${p.tenant}\t${spec.label}\t${p.changes} change(s): ${p.upserted} upserted, ${p.deleted} removed`);
        for (const { tenant, error } of r.failed) req.onProgress(`${tenant}\t${spec.label}\tapply failed: ${safeApplyError(wh, error)}`);
        failed += r.failed.length;
      }
    }
    // a practice that failed keeps its queue for the next capture; the others are applied
    return failed > 0 ? 1 : 0;
  } finally {
    await oltps.close();
    if (!req.adapter) await wh.close();
  }
}
