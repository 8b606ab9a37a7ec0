import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import pc from 'picocolors';
import { Codes } from '../errors.ts';
import { fansOut, type Command as PlanCommand } from '../plan/plan.ts';
import { positiveInteger, projectOption, runOptions, targetOption, targetPathOption, varsOption } from './option-sets.ts';

/**
 * `retry`, `show` and `debug`: the dbt commands an analyst reaches for (issue 15). program.ts
 * owns the run itself (`runAction`: reporter, Ctrl-C, exit code); retry runs it with the
 * selection it reads from run_results.json.
 */

/** Every option these commands read. */
export interface DbtCommandOptions {
  projectDir: string;
  target?: string;
  targetPath?: string;
  vars?: Record<string, unknown>;
  select?: string[];
  tenant?: string[];
}

export interface DbtCommandWiring<O extends DbtCommandOptions> {
  guard: (fn: (o: O) => Promise<number>) => (o: O) => Promise<void>;
  out: (line: string) => void;
  err: (line: string) => void;
  runAction: (name: PlanCommand, o: O) => Promise<number>;
  logFormatOption: (cmd: Command) => Command;
}

// README's exit codes, as program.ts exports them (importing program.ts here would be circular).
const EXIT_OK = 0;
const EXIT_USER_ERROR = 2;

export function registerDbtCommands<O extends DbtCommandOptions>(program: Command, { guard, out, err, runAction, logFormatOption }: DbtCommandWiring<O>): void {
  const project = (cmd: Command) => targetOption(projectOption(cmd));
  // dbt retry: the selection comes from the last run_results.json, so --select, --tenant and --state are not offered.
  logFormatOption(runOptions(targetPathOption(varsOption(project(program.command('retry')))), { defer: false }))
    .description('run again what failed, was skipped or was interrupted in the last run (target/run_results.json), only for the practices it failed for')
    .action(
      guard(async (o) => {
        const { readersLine, readRetryPlan, retryLine, retrySelection } = await import('./retry.ts');
        const { artifactDir } = await import('./target-path.ts');
        const retry = readRetryPlan(artifactDir(resolve(o.projectDir), o.targetPath));
        if (retry.nodes.length === 0 && retry.stale.length === 0) {
          out(`nothing to retry: every node of the last ${retry.command}${retry.runId ? ` (${retry.runId})` : ''} succeeded`);
          return EXIT_OK;
        }
        err(retryLine(retry));
        // The project may have changed since (that is often why one retries): a node that is gone is said so, not a selector error.
        const { compileWorkspace } = await import('./api.ts');
        const ws = compileWorkspace(o.projectDir, { vars: o.vars, targetPath: o.targetPath, write: false });
        const selection = retrySelection(retry, ws.dag);
        if (selection.gone.length > 0) err(`retry: no longer in the project, not run: ${selection.gone.join(', ')}`);
        // A practice offboarded since (tenants.yml): said so and left out; before, the whole retry stopped with TSF302.
        const listed = new Set(ws.project.tenants.map((t) => t.id));
        const tenants = retry.tenants.filter((t) => listed.has(t));
        const left = retry.tenants.filter((t) => !listed.has(t));
        if (left.length > 0) err(`retry: no longer in tenants.yml, not run: ${left.join(', ')}`);
        // With none of its practices left, only the steps run once remain: no --tenant would mean every practice.
        const nodes = left.length > 0 && tenants.length === 0 ? selection.nodes.filter((id) => !fansOut(ws.dag.graph.getNodeAttribute(id, 'node'))) : selection.nodes;
        const readers = readersLine(selection);
        if (readers) err(readers);
        if (nodes.length === 0) return EXIT_OK;
        return runAction(retry.command, { ...o, target: o.target ?? retry.target, select: nodes, tenant: tenants.length > 0 ? [tenants.join(',')] : undefined });
      }),
    );

  varsOption(targetOption(projectOption(program.command('show'))))
    .description('preview rows of one model for one practice (its compiled SQL, bound to that practice); research and vault relations are not shown')
    .requiredOption('-s, --select <model...>', 'the model (one)')
    .option('--tenant <id>', 'the practice (exactly one; not needed for a shared model)')
    .addOption(new Option('--limit <n>', 'rows at most').default(10).argParser(positiveInteger))
    .addOption(new Option('--output <format>', 'text (a table, long values cut) or json (one object per row)').choices(['text', 'json']).default('text'))
    .action(
      guard(async (o) => {
        const so = o as O & { tenant?: string; limit: number; output: 'text' | 'json' };
        const { compileWorkspace } = await import('./api.ts');
        const { formatRows, notBuiltError, runShow, showQuery } = await import('./show.ts');
        const ws = compileWorkspace(o.projectDir, { vars: o.vars, write: false });
        const q = showQuery(ws, { select: o.select ?? [], tenant: so.tenant === undefined ? undefined : [so.tenant], limit: so.limit });
        const { openAdapter, resolveTarget, unbuiltWarehouse } = await import('./target.ts');
        const target = resolveTarget(ws.project, o.target);
        const unbuilt = unbuiltWarehouse(ws.project, target);
        if (unbuilt) throw notBuiltError(q, target.name, unbuilt);
        const adapter = await openAdapter(ws.project, target, { threads: 1 });
        try {
          const shown = await runShow(adapter, q);
          if (so.output === 'json') for (const r of shown.rows) out(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
          else {
            for (const line of formatRows(shown)) out(line);
            err(`${shown.rows.length} row(s) of ${q.model.name}${q.tenant ? ` for practice ${q.tenant}` : ''} (--limit ${so.limit})`);
          }
        } finally {
          await adapter.close();
        }
        return EXIT_OK;
      }),
    );

  targetPathOption(project(program.command('debug')))
    .description('check the project files parse, the target answers and the vault has its key; print versions (exit 2 when a check fails)')
    .action(
      guard(async (o) => {
        const { debugChecks } = await import('./debug.ts');
        const { versions, checks } = await debugChecks({ projectDir: o.projectDir, target: o.target, targetPath: o.targetPath, env: process.env });
        out(versions);
        for (const c of checks) out(`${c.ok ? pc.green('ok  ') : pc.red('FAIL')} ${c.name.padEnd(9)} ${c.detail}`);
        const failed = checks.filter((c) => !c.ok);
        if (failed.length === 0) {
          out('all checks passed');
          return EXIT_OK;
        }
        err(pc.red(`${Codes.debugCheckFailed}: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`));
        return EXIT_USER_ERROR;
      }),
    );
}
