import { systemClock, type Clock } from '../clock.ts';
import { readRunHistory, readTenantState } from '../execute/state-store.ts';
import { selectTenants } from '../graph/select.ts';
import { AlertDispatcher, createAlertSinks, DEFAULT_ALERT_SINKS, DurationProfile, evaluateFreshness, slaAlert, summarizeFreshness, type FreshnessRow } from '../sla/index.ts';
import { compileWorkspace, openAdapter, resolveTarget } from './api.ts';
import { unbuiltWarehouse } from './target.ts';

export interface FreshnessRequest {
  projectDir: string;
  target?: string;
  tenants?: string[];
  /** Default: the system clock. */
  clock?: Clock;
  /** Send at-risk / late alerts to the configured sinks. */
  alert?: boolean;
  alertLog?: { write(line: string): unknown };
}

/** Every selected practice as fresh, at risk or late against its own SLA, with the reason. */
export async function freshness(req: FreshnessRequest): Promise<FreshnessRow[]> {
  const ws = compileWorkspace(req.projectDir, { write: false });
  const target = resolveTarget(ws.project, req.target);
  // No warehouse file yet: every practice is unbuilt, said without creating an empty one.
  const adapter = unbuiltWarehouse(ws.project, target) ? undefined : await openAdapter(ws.project, target, { threads: 1 });
  try {
    const meta = ws.project.config.schemas.meta;
    const tenants = selectTenants(ws.project.tenants, req.tenants);
    const clock = req.clock ?? systemClock;
    const now = clock.now();
    const rows = evaluateFreshness({
      tenants,
      now,
      state: adapter ? await readTenantState(adapter, meta) : new Map(),
      history: DurationProfile.fromHistory(adapter ? await readRunHistory(adapter, meta, clock) : []),
    });
    if (req.alert) {
      const sinks = createAlertSinks(ws.alertSinks.length > 0 ? ws.alertSinks : DEFAULT_ALERT_SINKS, { log: req.alertLog ?? process.stderr, clock, env: process.env });
      const dispatcher = new AlertDispatcher(sinks.sinks);
      for (const row of rows) {
        const alert = slaAlert(row, { at: now });
        if (alert) await dispatcher.send(alert);
      }
    }
    return rows;
  } finally {
    await adapter?.close();
  }
}

export function formatFreshness(rows: readonly FreshnessRow[]): string {
  const counts = summarizeFreshness(rows);
  const order = { late: 0, at_risk: 1, pending: 2, fresh: 3 } as const;
  const sorted = [...rows].sort((a, b) => order[a.status] - order[b.status] || a.tenant.localeCompare(b.tenant));
  const lines = sorted.map((r) => `${r.status.padEnd(8)} ${r.tenant.padEnd(16)} ${r.ready_by} ${r.timezone.padEnd(20)} ${r.reason}`);
  return [`status   practice         sla   zone                 reason`, ...lines, '', `${counts.fresh} fresh, ${counts.pending} pending, ${counts.at_risk} at risk, ${counts.late} late`].join('\n');
}
