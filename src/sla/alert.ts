import type { Tenant } from '../project/types.ts';
import { slaDeadline } from './deadline.ts';
import type { FreshnessRow } from './freshness.ts';

/**
 * What an alert says. Pure: building and de-duplicating alerts; sending is in `alert-dispatcher.ts`.
 * Every alert names the practice (id and name) and the SLA at stake. Messages carry practice
 * ids and names, node names, error codes, dates and counts: never row data, and never a
 * database error text (it can quote values); on-call reads those in run_results.json.
 */

export type AlertKind = 'sla_at_risk' | 'sla_late' | 'node_failed';
export const ALERT_KINDS: readonly AlertKind[] = ['sla_at_risk', 'sla_late', 'node_failed'];

export interface Alert {
  kind: AlertKind;
  tenant: { id: string; name: string };
  sla: {
    /** Local HH:MM. */
    ready_by: string;
    /** IANA zone of `ready_by`. */
    timezone: string;
    /** The deadline at stake, ISO instant. */
    deadline: string;
  };
  message: string;
  run_id?: string;
  /** When the alert was raised, ISO instant. */
  at: string;
}

/** The alert a freshness row calls for: none when fresh, nor for a practice never loaded (pending). */
export function slaAlert(row: FreshnessRow, opts: { at: Date; runId?: string }): Alert | undefined {
  if (row.status === 'fresh' || row.status === 'pending') return undefined;
  const kind: AlertKind = row.status === 'late' ? 'sla_late' : 'sla_at_risk';
  const what = row.status === 'late' ? 'is late' : 'is at risk';
  return {
    kind,
    tenant: { id: row.tenant, name: row.name },
    sla: { ready_by: row.ready_by, timezone: row.timezone, deadline: row.deadline },
    message: `practice ${row.tenant} (${row.name}) ${what} for its T+1 SLA: ${row.data_date} by ${row.ready_by} ${row.timezone}; ${row.reason}`,
    ...(opts.runId !== undefined ? { run_id: opts.runId } : {}),
    at: opts.at.toISOString(),
  };
}

/** A practice's node failed: the SLA at stake is the deadline in force when it failed. */
export function nodeFailedAlert(input: {
  tenant: Pick<Tenant, 'id' | 'name' | 'timezone' | 'readyBy'>;
  /** `model@tenant` */
  node: string;
  /** Stable error code (TSF4xx). */
  code?: string;
  at: Date;
  runId?: string;
}): Alert {
  const { tenant } = input;
  const { dataDate, deadline } = slaDeadline(tenant, input.at);
  return {
    kind: 'node_failed',
    tenant: { id: tenant.id, name: tenant.name },
    sla: { ready_by: tenant.readyBy, timezone: tenant.timezone, deadline: deadline.toISOString() },
    message:
      `practice ${tenant.id} (${tenant.name}): node ${input.node} failed${input.code ? ` (${input.code})` : ''}; ` +
      `its downstream is skipped; ${dataDate} is due by ${tenant.readyBy} ${tenant.timezone}`,
    ...(input.runId !== undefined ? { run_id: input.runId } : {}),
    at: input.at.toISOString(),
  };
}

/**
 * One alert per practice, per run, per kind: the first wins, later ones are dropped (a practice
 * with ten failed nodes pages once). Alerts without a run id (e.g. `tsform freshness`) share one
 * key per practice and kind for the deduper's lifetime.
 */
export class AlertDeduper {
  private readonly seen = new Set<string>();

  /** True the first time this (run, practice, kind) is offered, false after. */
  admit(alert: Pick<Alert, 'kind' | 'tenant' | 'run_id'>): boolean {
    const key = `${alert.run_id ?? ''}\u0000${alert.tenant.id}\u0000${alert.kind}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}
