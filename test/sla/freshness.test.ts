import { describe, expect, it } from 'vitest';
import type { NodeResult } from '../../src/artifacts/run-results.ts';
import { fixedClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/project/types.ts';
import { AlertDeduper, slaAlert, type Alert } from '../../src/sla/alert.ts';
import type { AlertDispatcher } from '../../src/sla/alert-dispatcher.ts';
import { RunMonitor } from '../../src/sla/run-monitor.ts';
import {
  evaluateFreshness,
  evaluateTenantFreshness,
  summarizeFreshness,
  type FreshnessRow,
  type FreshnessTenant,
  type TenantLoadState,
  type TenantProgress,
} from '../../src/sla/freshness.ts';
import { DurationProfile } from '../../src/sla/predict.ts';
import { syntheticHistory } from './history.ts';

// 11:30 UTC: 06:30 in New York (past a 06:00 deadline), 05:30 in Chicago, 03:30 in Los Angeles,
// 01:30 in Honolulu. Everyone's data date is 2026-11-27.
const now = new Date('2026-11-28T11:30:00Z');
const MODELS = ['stg_encounters', 'stg_patients', 'mart_visits'];

const tenant = (id: string, timezone: string, readyBy = '06:00'): FreshnessTenant => ({ id, name: `Practice ${id}`, timezone, readyBy });
const tenants = [
  tenant('ny_fresh', 'America/New_York'),
  tenant('ny_late', 'America/New_York'),
  tenant('ny_late_running', 'America/New_York'),
  tenant('ny_never', 'America/New_York'),
  tenant('la_on_track', 'America/Los_Angeles'),
  tenant('la_running_ok', 'America/Los_Angeles'),
  tenant('la_running_slow', 'America/Los_Angeles', '03:40'),
  tenant('la_idle_short', 'America/Los_Angeles', '03:45'),
  tenant('chi_behind', 'America/Chicago'),
  tenant('hnl_new', 'Pacific/Honolulu'),
];

// Every practice but hnl_new: run i takes 2(i+1) minutes per model, so each model's p90 is 18
// minutes and a whole run 54.
const history = tenants.filter((t) => t.id !== 'hnl_new').flatMap((t) => syntheticHistory(t.id, MODELS, 10, (i) => 2 * (i + 1)));

const state = new Map<string, TenantLoadState>([
  ['ny_fresh', { loadedThrough: '2026-11-27', lastSuccessAt: '2026-11-28T09:40:00Z' }],
  ['ny_late', { loadedThrough: '2026-11-26' }],
  ['ny_late_running', { loadedThrough: '2026-11-26' }],
  ['la_on_track', { loadedThrough: '2026-11-26' }],
  ['la_running_ok', { loadedThrough: '2026-11-26' }],
  ['la_running_slow', { loadedThrough: '2026-11-26' }],
  ['la_idle_short', { loadedThrough: '2026-11-26' }],
  ['chi_behind', { loadedThrough: '2026-11-25' }],
]);
const inProgress = new Map<string, TenantProgress>([
  ['ny_late_running', { remainingModels: ['mart_visits'], queuedNodes: 12 }],
  ['la_running_ok', { remainingModels: MODELS, queuedNodes: 3 }],
  ['la_running_slow', { remainingModels: ['mart_visits'], queuedNodes: 12 }],
]);

const rows = evaluateFreshness({ tenants, now, state, inProgress, history });
const row = (id: string): FreshnessRow => {
  const r = rows.find((x) => x.tenant === id);
  if (!r) throw new Error(`no row for ${id}`);
  return r;
};

describe('evaluateFreshness at a fixed instant (2026-11-28T11:30Z)', () => {
  it('one row per practice, in input order, naming it', () => {
    expect(rows.map((r) => r.tenant)).toEqual(tenants.map((t) => t.id));
    for (const r of rows) {
      expect(r.name).toBe(`Practice ${r.tenant}`);
      expect(r.data_date).toBe('2026-11-27');
    }
    expect(JSON.parse(JSON.stringify(rows))).toEqual(rows);
  });

  it('fresh: the data date is loaded', () => {
    expect(row('ny_fresh')).toEqual({
      tenant: 'ny_fresh',
      name: 'Practice ny_fresh',
      timezone: 'America/New_York',
      ready_by: '06:00',
      deadline: '2026-11-28T11:00:00.000Z',
      data_date: '2026-11-27',
      loaded_through: '2026-11-27',
      status: 'fresh',
      reason: 'loaded through 2026-11-27; 2026-11-27 due by 06:00 local: met',
      loaded: true,
      predicted_finish: null,
      p90_ms: 54 * 60_000,
      queued_nodes: null,
      last_success_at: '2026-11-28T09:40:00Z',
    });
  });

  it('late: not loaded and the practice’s own deadline has passed', () => {
    expect(row('ny_late')).toMatchObject({ status: 'late', loaded: false, loaded_through: '2026-11-26' });
    expect(row('ny_late').reason).toBe('loaded through 2026-11-26; 2026-11-27 was due by 06:00 local, 30 min ago; no run in progress');
    expect(row('ny_never')).toMatchObject({ status: 'late', loaded_through: null });
    expect(row('ny_never').reason).toMatch(/^never loaded; 2026-11-27 was due by 06:00 local, 30 min ago/);
  });

  it('late, with the run in progress: queued work and predicted finish', () => {
    expect(row('ny_late_running')).toMatchObject({ status: 'late', queued_nodes: 12, predicted_finish: '2026-11-28T11:48:00.000Z', p90_ms: 18 * 60_000 });
    expect(row('ny_late_running').reason).toBe(
      'loaded through 2026-11-26; 2026-11-27 was due by 06:00 local, 30 min ago; 12 nodes queued; predicted finish 06:48 local (p90 18 min)',
    );
  });

  it('late before its deadline when it has not even caught up with yesterday’s', () => {
    expect(row('chi_behind')).toMatchObject({ status: 'late', deadline: '2026-11-28T12:00:00.000Z' });
    expect(row('chi_behind').reason).toMatch(/^loaded through 2026-11-25; 2026-11-26 was due by 06:00 local yesterday; no run in progress/);
  });

  it('at risk: the run in progress is predicted to finish after the deadline', () => {
    expect(row('la_running_slow')).toMatchObject({ status: 'at_risk', predicted_finish: '2026-11-28T11:48:00.000Z', deadline: '2026-11-28T11:40:00.000Z' });
    expect(row('la_running_slow').reason).toBe('loaded through 2026-11-26; 12 nodes queued; predicted finish 03:48 local (p90 18 min) after 03:40 deadline');
  });

  it('at risk: no run in progress and less than a p90 run left', () => {
    expect(row('la_idle_short')).toMatchObject({ status: 'at_risk', predicted_finish: null, p90_ms: 54 * 60_000 });
    expect(row('la_idle_short').reason).toBe('loaded through 2026-11-26; no run in progress; 15 min left before 03:45 deadline, p90 run 54 min');
  });

  it('fresh but not loaded yet: on track for a deadline still ahead', () => {
    expect(row('la_on_track')).toMatchObject({ status: 'fresh', loaded: false });
    expect(row('la_on_track').reason).toBe('loaded through 2026-11-26; no run in progress; 2 h 30 min left before 06:00 deadline, p90 run 54 min');
    expect(row('la_running_ok')).toMatchObject({ status: 'fresh', loaded: false, predicted_finish: '2026-11-28T12:24:00.000Z' });
    expect(row('la_running_ok').reason).toBe('loaded through 2026-11-26; 3 nodes queued; predicted finish 04:24 local (p90 54 min) before 06:00 deadline');
  });

  it('a practice without any history is not predicted, and says so; never loaded, it is pending', () => {
    expect(row('hnl_new')).toMatchObject({ status: 'pending', loaded: false, p90_ms: null, deadline: '2026-11-28T16:00:00.000Z' });
    expect(row('hnl_new').reason).toBe('never loaded; no run in progress; no run history to predict from');
  });

  it('counts statuses for a summary', () => {
    expect(summarizeFreshness(rows)).toEqual({ fresh: 3, pending: 1, at_risk: 2, late: 4 });
  });
});

describe('a first run pages no one (issue 15)', () => {
  // 12:30 UTC: 07:30 in New York, past its 06:00 deadline.
  const after = new Date('2026-11-28T12:30:00Z');
  const fleet = [tenant('new_a', 'America/New_York'), tenant('new_b', 'America/New_York'), tenant('was_loaded', 'America/New_York')];

  async function monitorAlerts(state: Map<string, TenantLoadState>, history = DurationProfile.fromHistory([])) {
    const sent: Alert[] = [];
    const monitor = new RunMonitor({
      runId: 'first-run',
      tenants: fleet.map((t) => ({ ...t, tags: [], pool: 'steady' }) as unknown as Tenant),
      models: MODELS,
      profile: history,
      state,
      dispatcher: { send: async (a: Alert) => void sent.push(a) } as unknown as AlertDispatcher,
      clock: fixedClock(after),
    });
    await monitor.start();
    for (const t of fleet) {
      await monitor.onResults(MODELS.map((m) => ({ node: `${m}@${t.id}`, model: m, tenant: t.id, kind: 'build', status: 'success', rows: 1, duration_ms: 5, message: null }) as NodeResult));
    }
    return { sent, rows: monitor.evaluateAll() };
  }

  it('a practice with no load and no history is pending past its deadline: no sla_late, no sla_at_risk', async () => {
    const r = evaluateTenantFreshness(fleet[0]!, { now: after, profile: DurationProfile.fromHistory([]) });
    expect(r).toMatchObject({ status: 'pending', loaded: false, loaded_through: null });
    expect(slaAlert(r, { at: after, runId: 'first-run' })).toBeUndefined();
    const { sent, rows: monitored } = await monitorAlerts(new Map([['was_loaded', { loadedThrough: '2026-11-26' }]]));
    expect(monitored.find((x) => x.tenant === 'new_a')!.status).toBe('pending');
    expect(sent.filter((a) => a.tenant.id !== 'was_loaded')).toEqual([]);
  });

  it('a practice loaded before and now late still alerts, once', async () => {
    const { sent } = await monitorAlerts(new Map([['was_loaded', { loadedThrough: '2026-11-26' }]]));
    expect(sent.map((a) => `${a.kind} ${a.tenant.id}`)).toContain('sla_late was_loaded');
    expect(sent.every((a) => a.tenant.id === 'was_loaded')).toBe(true);
  });

  it('a practice never loaded but with run history (its earlier runs failed or were partial) is late', () => {
    const profile = DurationProfile.fromHistory(syntheticHistory('new_a', MODELS, 2, () => 1));
    const r = evaluateTenantFreshness(fleet[0]!, { now: after, profile });
    expect(r.status).toBe('late');
    expect(slaAlert(r, { at: after })?.kind).toBe('sla_late');
  });
});

describe('freshness while a run goes on (what the runner does after each node)', () => {
  it('raises at-risk once, as soon as the predicted finish passes the deadline', () => {
    const practice = tenant('small', 'America/Los_Angeles', '04:00');
    const profile = DurationProfile.fromHistory(syntheticHistory('small', MODELS, 10, (i) => 2 * (i + 1)));
    const deduper = new AlertDeduper();
    const raised: string[] = [];
    // the run started at 03:00 local; each node took twice its p90, so the forecast slips
    const remaining = [...MODELS];
    for (let done = 0, t = new Date('2026-11-28T11:00:00Z'); done <= MODELS.length; done++) {
      const r = evaluateTenantFreshness(practice, {
        now: t,
        state: { loadedThrough: '2026-11-26' },
        progress: { remainingModels: remaining, queuedNodes: remaining.length },
        profile,
      });
      const alert = slaAlert(r, { at: t, runId: 'run-1' });
      if (alert && deduper.admit(alert)) raised.push(`${alert.kind} at ${t.toISOString()}: ${r.reason}`);
      remaining.shift();
      t = new Date(t.getTime() + 36 * 60_000);
    }
    expect(raised).toEqual([
      'sla_at_risk at 2026-11-28T11:36:00.000Z: loaded through 2026-11-26; 2 nodes queued; predicted finish 04:12 local (p90 36 min) after 04:00 deadline',
      'sla_late at 2026-11-28T12:12:00.000Z: loaded through 2026-11-26; 2026-11-27 was due by 04:00 local, 12 min ago; 1 node queued; predicted finish 04:30 local (p90 18 min)',
    ]);
  });
});
