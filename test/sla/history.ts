import type { HistoryRow } from '../../src/sla/predict.ts';

const MIN = 60_000;

/**
 * Synthetic run history: `runs` past daily runs of `models` for one practice, the i-th run's
 * node of model m taking `minutes(i, m)` minutes. Runs finish one day apart, oldest first.
 */
export function syntheticHistory(
  tenant: string,
  models: readonly string[],
  runs: number,
  minutes: (run: number, model: string) => number,
  opts: { from?: string; status?: string } = {},
): HistoryRow[] {
  const from = new Date(opts.from ?? '2026-10-01T10:00:00Z').getTime();
  const rows: HistoryRow[] = [];
  for (let i = 0; i < runs; i++) {
    const finished = new Date(from + i * 86_400_000).toISOString();
    for (const model of models) {
      rows.push({
        run_id: `run-${tenant}-${i}`,
        tenant,
        node: `${model}@${tenant}`,
        model,
        status: opts.status ?? 'success',
        duration_ms: minutes(i, model) * MIN,
        finished_at: finished,
      });
    }
  }
  return rows;
}
