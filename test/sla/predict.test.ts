import { describe, expect, it } from 'vitest';
import { DurationProfile, p90RunMs, predictFinish, quantile, type HistoryRow } from '../../src/sla/predict.ts';
import { syntheticHistory } from './history.ts';

const MIN = 60_000;
const MODELS = ['stg_encounters', 'stg_patients', 'mart_visits'];
const now = new Date('2026-11-28T10:00:00Z');

// 10 runs; run i takes i+1 minutes per model: p90 (nearest rank) of 1..10 is 9.
const clinic = syntheticHistory('clinic', MODELS, 10, (i) => i + 1);

describe('quantile (nearest rank)', () => {
  it('picks the smallest sample with at least q of the samples at or below it', () => {
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(quantile([10, 1, 5], 0.9)).toBe(10);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([], 0.9)).toBe(0);
  });
});

describe('prediction from run history', () => {
  it('a whole run is the sum of the practice’s per-model p90s', () => {
    expect(p90RunMs('clinic', clinic)).toBe(27 * MIN);
    expect(p90RunMs({ id: 'clinic' }, clinic, ['stg_encounters'])).toBe(9 * MIN);
  });

  it('predicts a run in progress from its remaining models', () => {
    expect(predictFinish('clinic', now, ['stg_patients', 'mart_visits'], clinic).toISOString()).toBe('2026-11-28T10:18:00.000Z');
    expect(predictFinish('clinic', now, [], clinic)).toEqual(now);
  });

  it('ignores failed and skipped nodes, global nodes and other practices', () => {
    const noisy: HistoryRow[] = [
      ...clinic,
      ...syntheticHistory('clinic', MODELS, 5, () => 500, { status: 'error' }),
      ...syntheticHistory('clinic', MODELS, 5, () => 500, { status: 'skipped' }),
      { tenant: null, node: 'pop_health', model: 'pop_health', status: 'success', duration_ms: 900 * MIN, finished_at: '2026-11-01T00:00:00Z' },
      ...syntheticHistory('hospital', MODELS, 10, () => 120),
    ];
    expect(p90RunMs('clinic', noisy)).toBe(27 * MIN);
    expect(p90RunMs('hospital', noisy)).toBe(360 * MIN);
  });

  it('keeps only the most recent samples, so a practice that grew is seen as it is now', () => {
    // 30 old runs at 1 minute, then 20 recent ones at 30 minutes
    const grew = syntheticHistory('grew', ['m'], 50, (i) => (i < 30 ? 1 : 30));
    expect(DurationProfile.fromHistory(grew).modelQuantileMs('grew', 'm')).toEqual({ ms: 30 * MIN, basis: 'practice' });
    expect(DurationProfile.fromHistory(grew, { window: 100 }).modelQuantileMs('grew', 'm')?.ms).toBe(30 * MIN);
    expect(DurationProfile.fromHistory(grew, { window: 100, quantile: 0.5 }).modelQuantileMs('grew', 'm')?.ms).toBe(1 * MIN);
  });

  it('partial runs (--select) do not shrink the whole-run estimate', () => {
    const withPartial = [...clinic, ...syntheticHistory('clinic', ['mart_visits'], 20, () => 2, { from: '2026-11-01T10:00:00Z' })];
    // mart_visits' own recent samples fall to 2 minutes; the other two models keep their 9
    expect(p90RunMs('clinic', withPartial)).toBe(20 * MIN);
  });

  it('a model the practice never ran borrows the fleet’s p90; a model nobody ran counts 0 and is named', () => {
    const profile = DurationProfile.fromHistory([...clinic, ...syntheticHistory('hospital', ['mart_revenue'], 10, (i) => 10 * (i + 1))]);
    const e = profile.remaining('clinic', ['mart_visits', 'mart_revenue', 'mart_new']);
    expect(e).toEqual({ ms: (9 + 90) * MIN, fromPractice: 1, fromFleet: 1, unknown: ['mart_new'] });
    expect(profile.hasHistory('newcomer')).toBe(false);
    expect(profile.runEstimate('newcomer', ['stg_encounters']).ms).toBe(9 * MIN);
    expect(p90RunMs('newcomer', profile)).toBeUndefined();
  });

  it('accepts BIGINT durations as bigint or string, and Date timestamps', () => {
    const rows: HistoryRow[] = [
      { tenant: 't', node: 'm@t', model: 'm', status: 'success', duration_ms: 120_000n, finished_at: new Date('2026-11-01T00:00:00Z') },
      { tenant: 't', node: 'm@t', model: 'm', status: 'success', duration_ms: '60000', finished_at: '2026-11-02 00:00:00+00' },
    ];
    expect(p90RunMs('t', rows)).toBe(120_000);
  });
});
