import type { NodeResult } from '../artifacts/run-results.ts';
import type { Clock } from '../clock.ts';
import type { Tenant } from '../project/types.ts';
import { nodeFailedAlert, slaAlert } from './alert.ts';
import type { AlertDispatcher } from './alert-dispatcher.ts';
import { evaluateTenantFreshness, type FreshnessRow, type TenantLoadState } from './freshness.ts';
import type { DurationProfile } from './predict.ts';

export interface RunMonitorOptions {
  runId: string;
  tenants: readonly Tenant[];
  /** Tenant-scoped models each practice runs this run (its remaining work at the start). */
  models: readonly string[];
  profile: DurationProfile;
  state: ReadonlyMap<string, TenantLoadState>;
  dispatcher: AlertDispatcher;
  clock: Clock;
  /** Re-evaluate every practice still working at most this often (ms). */
  sweepEveryMs?: number;
}

/**
 * Watches a run as it goes: alerts a failed node's practice at once, and a practice whose
 * predicted finish (p90 of its own history for the models it still has to run) passes its
 * SLA deadline as soon as that is known, not after the run.
 */
export class RunMonitor {
  private readonly remaining = new Map<string, Set<string>>();
  private readonly byId: Map<string, Tenant>;
  private lastSweep = 0;

  constructor(private readonly opts: RunMonitorOptions) {
    this.byId = new Map(opts.tenants.map((t) => [t.id, t]));
    for (const t of opts.tenants) this.remaining.set(t.id, new Set(opts.models));
  }

  /** The state of every practice at the start of the run (raises at-risk alerts already). */
  async start(): Promise<void> {
    await this.sweep(true);
  }

  async onResults(results: readonly NodeResult[]): Promise<void> {
    const touched = new Set<string>();
    const now = this.opts.clock.now();
    for (const r of results) {
      if (r.tenant === null) continue;
      touched.add(r.tenant);
      if (r.kind === 'build') this.remaining.get(r.tenant)?.delete(r.model);
      const tenant = this.byId.get(r.tenant);
      if (r.status === 'error' && tenant) {
        await this.opts.dispatcher.send(nodeFailedAlert({ tenant, node: r.node, code: r.code, at: now, runId: this.opts.runId }));
      }
    }
    for (const id of touched) await this.evaluate(id, now);
    await this.sweep(false);
  }

  /** Practices at risk or late according to the latest evaluation. */
  evaluateAll(): FreshnessRow[] {
    const now = this.opts.clock.now();
    return this.opts.tenants.map((t) => this.row(t, now));
  }

  private row(t: Tenant, now: Date): FreshnessRow {
    const left = [...(this.remaining.get(t.id) ?? [])];
    return evaluateTenantFreshness(t, {
      now,
      state: this.opts.state.get(t.id),
      progress: { remainingModels: left, queuedNodes: left.length },
      profile: this.opts.profile,
    });
  }

  private async evaluate(id: string, now: Date): Promise<void> {
    const t = this.byId.get(id);
    if (!t) return;
    const alert = slaAlert(this.row(t, now), { at: now, runId: this.opts.runId });
    if (alert) await this.opts.dispatcher.send(alert);
  }

  private async sweep(force: boolean): Promise<void> {
    const now = this.opts.clock.now();
    if (!force && now.getTime() - this.lastSweep < (this.opts.sweepEveryMs ?? 2000)) return;
    this.lastSweep = now.getTime();
    for (const [id, left] of this.remaining) if (left.size > 0) await this.evaluate(id, now);
  }
}
