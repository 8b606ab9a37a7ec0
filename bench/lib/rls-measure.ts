import { performance } from 'node:perf_hooks';
import type pg from 'pg';

/** Timing helpers of `npm run bench:rls`: interleaved runs, medians, result checks, plans. */

export class BenchAssertion extends Error {
  override name = 'BenchAssertion';
}

export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new BenchAssertion(message);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Variant {
  label: string;
  client: pg.Client;
  sql: string;
  params: unknown[];
}

interface Run {
  ms: number;
  rows: unknown[];
}

async function runOnce(v: Variant): Promise<Run> {
  const t0 = performance.now();
  const r = await v.client.query({ text: v.sql, values: v.params });
  return { ms: performance.now() - t0, rows: r.rows };
}

function sameRows(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

export interface PairResult {
  a: number[];
  b: number[];
  reps: number;
  resultRows: number;
}

export interface PairOptions {
  /** Wall-clock budget for the timed runs of both variants together. */
  budgetMs: number;
  minReps: number;
  maxReps: number;
  /** At most this many warm-up runs of each variant … */
  warmups: number;
  /** … and no more once the warm-up has taken this long (at least 2 runs each). */
  warmupBudgetMs: number;
}

/**
 * Warm-up, then the two variants alternately: A B, B A, A B, … (which one goes first alternates,
 * so neither always runs on the caches the other just warmed). Every run's result must equal the
 * other variant's; a difference fails the bench.
 */
export async function measurePair(what: string, a: Variant, b: Variant, opts: PairOptions): Promise<PairResult> {
  let reference: unknown[] | undefined;
  const compare = (v: Variant, run: Run) => {
    if (reference === undefined) {
      reference = run.rows;
      return;
    }
    if (!sameRows(reference, run.rows)) {
      throw new BenchAssertion(
        `${what}: ${v.label} returned a different result (${run.rows.length} rows) than the other variant (${reference.length} rows)\n` +
          `  first rows ${v.label}: ${JSON.stringify(run.rows.slice(0, 3))}\n  first rows reference: ${JSON.stringify(reference.slice(0, 3))}`,
      );
    }
  };
  let lastA = 0;
  let lastB = 0;
  const warmStart = performance.now();
  for (let i = 0; i < opts.warmups && (i < 2 || performance.now() - warmStart < opts.warmupBudgetMs); i++) {
    const ra = await runOnce(a);
    compare(a, ra);
    const rb = await runOnce(b);
    compare(b, rb);
    lastA = ra.ms;
    lastB = rb.ms;
  }
  check(reference !== undefined && reference.length > 0, `${what}: the query returned no rows; the bench would measure nothing`);
  const reps = Math.max(opts.minReps, Math.min(opts.maxReps, Math.ceil(opts.budgetMs / Math.max(0.05, lastA + lastB))));
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < reps; i++) {
    const order: [Variant, number[]][] = i % 2 === 0 ? [[a, ta], [b, tb]] : [[b, tb], [a, ta]];
    for (const [v, times] of order) {
      const run = await runOnce(v);
      compare(v, run);
      times.push(run.ms);
    }
  }
  return { a: ta, b: tb, reps, resultRows: reference.length };
}

// ---- plans ---------------------------------------------------------------------------------

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Plan Rows'?: number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

export interface PlanSummary {
  planning_ms: number;
  execution_ms: number;
  /** Scans of the protected table: how, with which condition, estimated vs actual rows. */
  scans: string[];
  /** Sub-plans and how often they ran: an InitPlan runs once; a SubPlan may run per row. */
  subplans: string[];
  shared_blocks: number;
}

export async function explain(client: pg.Client, sql: string, params: unknown[], table: string): Promise<{ summary: PlanSummary; text: string }> {
  const json = await client.query({ text: `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, values: params });
  const doc = (json.rows[0] as Record<string, unknown>)['QUERY PLAN'] as [{ Plan: PlanNode; 'Planning Time': number; 'Execution Time': number }];
  const top = doc[0];
  const scans: string[] = [];
  const subplans: string[] = [];
  const walk = (n: PlanNode) => {
    if (n['Subplan Name']) subplans.push(`${n['Subplan Name']}: ${n['Node Type']} on ${n['Relation Name'] ?? n['Index Name'] ?? '-'}, loops=${n['Actual Loops']}`);
    if (n['Relation Name'] === table) {
      const how = n['Index Name'] ? `${n['Node Type']} using ${n['Index Name']}` : n['Node Type'];
      const cond = [n['Index Cond'] && `cond ${n['Index Cond']}`, n.Filter && `filter ${n.Filter}`].filter(Boolean).join('; ');
      scans.push(`${how} [${cond}] est=${n['Plan Rows']} actual=${n['Actual Rows']}×${n['Actual Loops']}`);
    }
    // a bitmap heap scan's index is in its child
    if (n['Node Type'] === 'Bitmap Index Scan' && n['Index Name']?.startsWith(table)) {
      scans.push(`Bitmap Index Scan using ${n['Index Name']} [cond ${n['Index Cond']}] est=${n['Plan Rows']} actual=${n['Actual Rows']}`);
    }
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(top.Plan);
  const text = await client.query({ text: `EXPLAIN (ANALYZE, BUFFERS) ${sql}`, values: params });
  return {
    summary: {
      planning_ms: round(top['Planning Time']),
      execution_ms: round(top['Execution Time']),
      scans,
      subplans,
      shared_blocks: (top.Plan['Shared Hit Blocks'] ?? 0) + (top.Plan['Shared Read Blocks'] ?? 0),
    },
    text: text.rows.map((r) => String((r as Record<string, unknown>)['QUERY PLAN'])).join('\n'),
  };
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
