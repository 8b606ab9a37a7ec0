import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReporter } from './progress.ts';
import { planLine, summaryOf, totalsLine } from './progress.ts';

/**
 * `target/tsform.log`: what one invocation did, at debug level, like dbt's logs/dbt.log: the
 * command, the plan, every unit's result (status, rows, time, code and the runner's redacted
 * message), every alert as JSON, the totals. Rewritten by each run, so it stays one run's size.
 * No PHI: messages are the runner's (database errors pass the one redactor), alerts carry
 * practice ids and names only.
 */
export interface RunLog {
  line(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  /** Where alerts of `type: log` go, one JSON line each. */
  alerts: { write(line: string): unknown };
  close(): void;
}

export function openRunLog(targetDir: string, argv: readonly string[], clock: () => Date = () => new Date()): RunLog {
  mkdirSync(targetDir, { recursive: true });
  const fd = openSync(join(targetDir, 'tsform.log'), 'w', 0o600);
  let open = true;
  const line = (level: string, text: string) => {
    if (!open) return;
    for (const l of text.split('\n')) writeSync(fd, `${clock().toISOString()} [${level}] ${l}\n`);
  };
  line('info', `tsform ${argv.join(' ')} (pid ${process.pid}, node ${process.version})`);
  return {
    line,
    alerts: { write: (l: string) => line('warn', l.trimEnd()) },
    close: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/** The reporter, with every hook also written to the log. */
export function loggingReporter(inner: RunReporter, log: RunLog): RunReporter {
  let planned: Parameters<NonNullable<RunReporter['onPlan']>>[1];
  return {
    onPlan(plan, units) {
      planned = units;
      log.line('info', units ? planLine(plan, units) : `${plan.command}: ${plan.steps.length} steps for ${plan.tenants.length} practices`);
      log.line('debug', `practices: ${plan.tenants.join(', ')}`);
      log.line('debug', `batches: ${plan.batches.map((b) => b.length).join(', ')} practice(s)`);
      inner.onPlan?.(plan, units);
    },
    onTaskEnd(step, results, progress) {
      for (const r of results) {
        const parts = [`${r.node}`, r.status, `rows=${r.rows ?? '-'}`, `ms=${r.duration_ms}`];
        if (r.code) parts.push(`code=${r.code}`);
        if (r.batch_size) parts.push(`batch=${r.batch_size}`);
        log.line(r.status === 'error' ? 'error' : 'debug', `${parts.join(' ')}${r.message ? ` ${r.message}` : ''}`);
      }
      inner.onTaskEnd?.(step, results, progress);
    },
    onEnd(run) {
      log.line('info', `${totalsLine(summaryOf(run, planned))} in ${(run.elapsed_ms / 1000).toFixed(1)}s; run_id ${run.run_id}`);
      for (const n of run.notices ?? []) log.line('info', `notice: ${n}`);
      for (const n of run.needs_action ?? []) log.line('warn', `action needed: ${n}`);
      inner.onEnd(run);
    },
    alertLog: {
      write: (l: string) => {
        log.alerts.write(l);
        return inner.alertLog.write(l);
      },
    },
  };
}
