import { beforeAll, describe, expect, it } from 'vitest';
import { TENANT_ID_PATTERN } from '../../src/project/types.ts';
import { slaAlert } from '../../src/sla/alert.ts';
import { evaluateFreshness, type FreshnessRow, type TenantLoadState } from '../../src/sla/freshness.ts';
import type { HistoryRow } from '../../src/sla/predict.ts';
import { loadUkIpopPractices, type UkIpopPractice } from '../fixtures/uk-ipop/uk-ipop-tenants.ts';
import { syntheticHistory } from './history.ts';

/**
 * The real third-party Synthea uk-ipop organizations as 1,050 practices in four US zones, all
 * with ready_by 06:00. At 2026-11-28T11:30Z it is 06:30 in New York, 05:30 in Chicago, 04:30
 * in Boise and 03:30 in Los Angeles: the Eastern practices' deadline has passed, no one else's.
 */
const now = new Date('2026-11-28T11:30:00Z');
const MODELS = ['stg_encounters', 'stg_patients', 'mart_visits'];
const EASTERN = new Set(['KY', 'TN', 'DE', 'MA']);
const PACIFIC = new Set(['CA', 'WA']);

let practices: UkIpopPractice[] = [];
let rows: FreshnessRow[] = [];
const byId = new Map<string, { practice: UkIpopPractice; row: FreshnessRow }>();
/** Every fifth practice has loaded 2026-11-27; every seventh (from the 4th) was never loaded. */
const loadedToday = (i: number) => i % 5 === 0;
const neverLoaded = (i: number) => !loadedToday(i) && i % 7 === 3;
/** Per-model minutes: most practices are small; every 25th is big (a run's p90 is 3 × 60 min). */
const minutes = (i: number) => (i % 25 === 1 ? 60 : 1 + (i % 10));

beforeAll(() => {
  practices = loadUkIpopPractices('06:00');
  const state = new Map<string, TenantLoadState>();
  const history: HistoryRow[] = [];
  practices.forEach((p, i) => {
    if (loadedToday(i)) state.set(p.tenant.id, { loadedThrough: '2026-11-27' });
    else if (!neverLoaded(i)) state.set(p.tenant.id, { loadedThrough: '2026-11-26' });
    history.push(...syntheticHistory(p.tenant.id, MODELS, 10, () => minutes(i)));
  });
  rows = evaluateFreshness({ tenants: practices.map((p) => p.tenant), now, state, history });
  practices.forEach((p, i) => byId.set(p.tenant.id, { practice: p, row: rows[i]! }));
});

describe('freshness of the uk-ipop practices (real third-party data)', () => {
  it('reads 1,050 organizations into valid, distinct practice ids', () => {
    expect(practices).toHaveLength(1050);
    const ids = practices.map((p) => p.tenant.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(TENANT_ID_PATTERN);
    expect(new Set(practices.map((p) => p.tenant.timezone))).toEqual(
      new Set(['America/New_York', 'America/Chicago', 'America/Boise', 'America/Los_Angeles']),
    );
  });

  it('each practice’s deadline is 06:00 in its own zone', () => {
    const deadlines: Record<string, Set<string>> = {};
    for (const r of rows) (deadlines[r.timezone] ??= new Set()).add(r.deadline);
    expect(Object.fromEntries(Object.entries(deadlines).map(([z, s]) => [z, [...s]]))).toEqual({
      'America/New_York': ['2026-11-28T11:00:00.000Z'],
      'America/Chicago': ['2026-11-28T12:00:00.000Z'],
      'America/Boise': ['2026-11-28T13:00:00.000Z'],
      'America/Los_Angeles': ['2026-11-28T14:00:00.000Z'],
    });
    for (const r of rows) expect(r.data_date).toBe('2026-11-27');
  });

  it('Eastern practices are late unless loaded; Pacific ones are not late yet (fresh or at risk)', () => {
    const byStateStatus: Record<string, Record<string, number>> = {};
    for (const { practice, row } of byId.values()) {
      const counts = (byStateStatus[practice.state] ??= {});
      counts[row.status] = (counts[row.status] ?? 0) + 1;
      if (EASTERN.has(practice.state)) expect(row.status, row.tenant).toBe(row.loaded ? 'fresh' : 'late');
      else expect(row.status, row.tenant).not.toBe('late');
      if (PACIFIC.has(practice.state)) expect(['fresh', 'at_risk'], row.tenant).toContain(row.status);
    }
    // the big Pacific practices need 3 h for a run with 2 h 30 min left: at risk
    const pacificAtRisk = rows.filter((r) => r.timezone === 'America/Los_Angeles' && r.status === 'at_risk');
    expect(pacificAtRisk.length).toBeGreaterThan(0);
    for (const r of pacificAtRisk) expect(r.reason).toMatch(/no run in progress; 2 h 30 min left before 06:00 deadline, p90 run 3 h 00 min$/);
    expect(Object.keys(byStateStatus).sort()).toEqual(['CA', 'DE', 'ID', 'KS', 'KY', 'MA', 'MO', 'NE', 'TN', 'WA']);
    expect(rows.filter((r) => r.status === 'late').length).toBe(
      [...byId.values()].filter(({ practice, row }) => EASTERN.has(practice.state) && !row.loaded).length,
    );
  });

  it('every row and alert names its practice, and carries no organization data beyond id and name', () => {
    for (const { practice, row } of byId.values()) {
      expect(row.tenant).toBe(practice.tenant.id);
      expect(row.name).toBe(practice.tenant.name);
      expect(row.name.length).toBeGreaterThan(0);
      for (const field of [practice.address, practice.city]) expect(row.reason).not.toContain(field);
      const alert = slaAlert(row, { at: now, runId: 'fleet-run' });
      if (row.status === 'fresh') expect(alert).toBeUndefined();
      else {
        expect(alert?.tenant).toEqual({ id: practice.tenant.id, name: practice.tenant.name });
        expect(alert?.sla).toEqual({ ready_by: '06:00', timezone: practice.tenant.timezone, deadline: row.deadline });
        expect(alert?.message).toContain(`practice ${practice.tenant.id} (${practice.tenant.name})`);
        expect(alert?.message).not.toContain(practice.address);
      }
    }
  });
});
