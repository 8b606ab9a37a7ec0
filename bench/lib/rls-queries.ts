import { quoteRelation } from '../../src/sql/quote.ts';
import { META_SCHEMA, SCHEMA, TABLE, TENANTS_TABLE } from './rls-data.ts';

/**
 * The three dashboard/analyst queries of `npm run bench:rls`, each in two variants that differ
 * only by the practice filter:
 *   rls   — run by a practice login role; no practice filter at all, row-level security does it;
 *   owner — run by the owner (policy USING (true)) with `practice_id = $1` on every scan of the
 *           protected table, where the rls variant relies on the policy.
 * Both are fully ordered so that their results can be compared row for row.
 *
 * Two shapes of the "latest encounter" anchor of the two dashboards:
 *   subselect — `started_at > (SELECT max(started_at) …) - interval`: an InitPlan, so the main
 *               scan is an index range on (practice_id, started_at). How a dashboard for one
 *               practice is written; the reported figures use it.
 *   join      — a `latest` CTE joined to the encounters, as models/marts/provider_panel.sql does
 *               (written for all practices at once): the window becomes a join filter and the
 *               whole practice slice is read. Measured as an experiment.
 */
export type QueryName = 'daily_activity' | 'provider_panel' | 'adhoc';
export type QueryShape = 'subselect' | 'join';

export interface BenchQuery {
  name: QueryName;
  /** SQL text; `filtered` adds `AND <alias>.practice_id = $1` to every scan of the table. */
  sql(filtered: boolean): string;
}

const enc = quoteRelation(SCHEMA, TABLE);
const tenants = quoteRelation(META_SCHEMA, TENANTS_TABLE);
const f = (filtered: boolean, alias: string) => (filtered ? ` AND ${alias}.practice_id = $1` : '');

// marts/practice_daily_activity.sql (+ int_encounters_local.sql): the last 90 days of the
// practice's data, by local date (tenants time zone) and encounter class.
const dailySelect = `SELECT cast(e.started_at AT TIME ZONE t.timezone AS date) AS activity_date,
       e.encounter_class,
       count(*) AS encounters,
       count(DISTINCT e.patient_id) AS distinct_patients,
       cast(sum(e.total_claim_cost) AS numeric(18, 2)) AS total_claim_cost`;

const daily: Record<QueryShape, (filtered: boolean) => string> = {
  subselect: (filtered) => `${dailySelect}
  FROM ${enc} e
  JOIN ${tenants} t ON t.practice_id = e.practice_id
 WHERE e.started_at > (SELECT max(x.started_at) FROM ${enc} x WHERE true${f(filtered, 'x')}) - interval '90 days'${f(filtered, 'e')}
 GROUP BY 1, 2
 ORDER BY 1, 2`,
  join: (filtered) => `WITH latest AS (
  SELECT max(x.started_at) AS latest_at FROM ${enc} x WHERE true${f(filtered, 'x')}
)
${dailySelect}
  FROM ${enc} e
  JOIN ${tenants} t ON t.practice_id = e.practice_id
 CROSS JOIN latest l
 WHERE e.started_at > l.latest_at - interval '90 days'${f(filtered, 'e')}
 GROUP BY 1, 2
 ORDER BY 1, 2`,
};

// marts/provider_panel.sql: distinct patients per provider in the 12 months up to the
// practice's latest encounter (nothing is later than the latest, so `<= latest` is implied).
const panel: Record<QueryShape, (filtered: boolean) => string> = {
  subselect: (filtered) => `SELECT e.provider_id, count(DISTINCT e.patient_id) AS active_patients_12m
  FROM ${enc} e
 WHERE e.started_at > (SELECT max(x.started_at) FROM ${enc} x WHERE true${f(filtered, 'x')}) - 12 * interval '1 month'${f(filtered, 'e')}
 GROUP BY e.provider_id
 ORDER BY e.provider_id`,
  join: (filtered) => `WITH latest AS (
  SELECT max(x.started_at) AS latest_at FROM ${enc} x WHERE true${f(filtered, 'x')}
)
SELECT e.provider_id, count(DISTINCT e.patient_id) AS active_patients_12m
  FROM ${enc} e
 CROSS JOIN latest l
 WHERE e.started_at > l.latest_at - 12 * interval '1 month'
   AND e.started_at <= l.latest_at${f(filtered, 'e')}
 GROUP BY e.provider_id
 ORDER BY e.provider_id`,
};

// An analyst's ad hoc question: the 10 provider × encounter class pairs with the highest claim
// cost this calendar year (UTC).
const adhoc = (filtered: boolean) => `SELECT e.provider_id, e.encounter_class,
       count(*) AS encounters,
       sum(e.total_claim_cost) AS cost,
       round(avg(e.total_claim_cost), 2) AS avg_cost
  FROM ${enc} e
 WHERE e.started_at >= date_trunc('year', now())${f(filtered, 'e')}
 GROUP BY e.provider_id, e.encounter_class
 ORDER BY cost DESC, e.provider_id, e.encounter_class
 LIMIT 10`;

export function benchQueries(shape: QueryShape): BenchQuery[] {
  return [
    { name: 'daily_activity', sql: daily[shape] },
    { name: 'provider_panel', sql: panel[shape] },
    { name: 'adhoc', sql: adhoc },
  ];
}
