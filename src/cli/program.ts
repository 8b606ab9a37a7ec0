import { Command, Option } from 'commander';
import pc from 'picocolors';
import type { NodeResult, RunResults } from '../artifacts/run-results.ts';
import { DiagnosticsError, formatDiagnostic, TsformError } from '../errors.ts';
import type { Command as PlanCommand, Plan, PlanStep } from '../plan/plan.ts';

export const EXIT_OK = 0;
export const EXIT_NODE_FAILED = 1;
export const EXIT_USER_ERROR = 2;

interface CommonOptions {
  projectDir: string;
  target?: string;
  select?: string[];
  exclude?: string[];
  tenant?: string[];
  threads?: number;
  fullRefresh?: boolean;
  fanIn?: 'use_last_good' | 'skip' | 'block';
  nodeTimeout?: number;
}

/** Parses argv, runs one command, returns the exit code (never calls process.exit). */
export async function runCli(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  let code = EXIT_OK;
  const err = (line: string) => process.stderr.write(`${line}\n`);
  const program = new Command()
    .name('tsform')
    .description('SQL transformations per medical practice, with row-level security and a pseudonymized research layer')
    .showHelpAfterError()
    .exitOverride();

  const common = (cmd: Command) =>
    cmd
      .option('--project-dir <dir>', 'project directory', '.')
      .option('--target <name>', 'target from tsform.yml (default: its `target`)')
      .option('-s, --select <selector...>', 'dbt selector: name, +name, name+, tag:x, path:x, source:x; comma = and, space = or')
      .option('--exclude <selector...>', 'nodes to leave out (same grammar)')
      .option('--tenant <ids...>', 'practices: id[,id...] or tag:<tag> (default: every practice)')
      .addOption(new Option('--threads <n>', 'statements in flight at once').argParser((v) => Number.parseInt(v, 10)))
      .option('--full-refresh', 'rebuild tables from scratch (every practice must be selected)')
      .addOption(new Option('--fan-in <policy>', 'global nodes when a practice failed upstream').choices(['use_last_good', 'skip', 'block']))
      .addOption(new Option('--node-timeout <seconds>', 'cancel a node after this long (default: run.node_timeout_seconds)').argParser((v) => Number.parseFloat(v)));

  const guard = (fn: (o: CommonOptions) => Promise<number>) => async (o: CommonOptions) => {
    try {
      code = await fn(o);
    } catch (e) {
      code = reportError(e, err);
    }
  };

  common(program.command('compile').description('compile models to target/manifest.json and target/compiled/*.sql; no database is touched')).action(
    guard(async (o) => {
      const { compileWorkspace } = await import('./api.ts');
      const ws = compileWorkspace(o.projectDir);
      for (const d of ws.diagnostics) err(formatDiagnostic(d));
      const m = ws.manifest;
      out(`compiled ${Object.keys(m.models).length} models, ${Object.keys(m.seeds).length} seeds, ${Object.keys(m.sources).length} sources, ${Object.keys(m.tests).length} tests for ${m.tenants.length} practices → target/manifest.json`);
      return EXIT_OK;
    }),
  );

  common(program.command('ls').description('list selected nodes and the practices they fan out to')).action(
    guard(async (o) => {
      const { compileWorkspace, planWorkspace } = await import('./api.ts');
      const ws = compileWorkspace(o.projectDir, { write: false });
      const plan = planWorkspace(ws, { command: 'build', select: o.select, exclude: o.exclude, tenants: o.tenant });
      for (const s of plan.steps) out(`${s.id}\t${s.kind}\t${s.scope}\t${s.materialized}\t${s.fanOut ? `${plan.tenants.length} practices` : 'once'}`);
      out(`${plan.steps.length} nodes, ${plan.nodeCount} (node × practice) units, ${plan.batches.length} batches`);
      return EXIT_OK;
    }),
  );

  for (const [name, description] of [
    ['run', 'build selected models for selected practices'],
    ['seed', 'load seeds/*.csv'],
    ['test', 'run data tests (per practice for tenant-scoped models)'],
    ['build', 'seed + run + test in DAG order; a failing test skips that practice\'s downstream'],
  ] as const) {
    common(program.command(name).description(description)).action(
      guard(async (o) => {
        const { runWorkspace } = await import('./api.ts');
        const run = await runWorkspace({
          projectDir: o.projectDir,
          command: name as PlanCommand,
          target: o.target,
          select: o.select,
          exclude: o.exclude,
          tenants: o.tenant,
          threads: o.threads,
          fullRefresh: o.fullRefresh,
          fanIn: o.fanIn,
          nodeTimeoutMs: o.nodeTimeout === undefined ? undefined : o.nodeTimeout * 1000,
          onPlan: (p) => out(describePlan(p)),
          onTaskEnd: (step, results) => printTask(step, results, out),
        });
        printSummary(run, out);
        return run.results.some((r) => r.status === 'error') ? EXIT_NODE_FAILED : EXIT_OK;
      }),
    );
  }

  const policies = program.command('policies').description('row-level security: render, apply and verify the DDL of policies/policies.yml');
  common(policies.command('render').description('print the DDL (roles, membership, RLS per protected relation); works on every target')).option('--out <file>', 'write to a file instead of stdout').action(
    guard(async (o) => {
      const { renderPoliciesText } = await import('./policies.ts');
      const text = renderPoliciesText(o.projectDir);
      const file = (o as CommonOptions & { out?: string }).out;
      if (file) (await import('node:fs')).writeFileSync(file, text);
      else out(text);
      return EXIT_OK;
    }),
  );
  common(policies.command('apply').description('create roles, sync memberships, protect every existing relation (one transaction; PostgreSQL only)')).action(
    guard(async (o) => {
      const { applyPoliciesCommand } = await import('./policies.ts');
      return applyPoliciesCommand(o.projectDir, o.target, out);
    }),
  );
  common(policies.command('verify').description('connect as practice roles and prove that no practice sees another\'s rows (PostgreSQL only)'))
    .option('--max-roles <n>', 'practice roles to probe (all of them up to this many)', '200')
    .action(
      guard(async (o) => {
        const { verifyPoliciesCommand } = await import('./policies.ts');
        return verifyPoliciesCommand(o.projectDir, o.target, Number((o as CommonOptions & { maxRoles?: string }).maxRoles ?? 200), out);
      }),
    );

  try {
    await program.parseAsync(argv);
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' || ce.code === 'commander.help') return EXIT_OK;
    if (ce.code?.startsWith('commander.')) return EXIT_USER_ERROR;
    return reportError(e, err);
  }
  return code;
}

function reportError(e: unknown, err: (l: string) => void): number {
  if (e instanceof DiagnosticsError) {
    for (const d of e.diagnostics) err(formatDiagnostic(d));
    const n = e.diagnostics.filter((d) => d.severity === 'error').length;
    err(pc.red(`${n} error(s); nothing was run`));
    return EXIT_USER_ERROR;
  }
  if (e instanceof TsformError) {
    err(formatDiagnostic(e.toDiagnostic()));
    return EXIT_USER_ERROR;
  }
  err(pc.red(`internal error: ${(e as Error)?.stack ?? String(e)}`));
  return EXIT_NODE_FAILED;
}

function describePlan(p: Plan): string {
  return `${p.command}: ${p.steps.length} nodes × ${p.tenants.length} practices = ${p.nodeCount} units in ${p.batches.length} batches`;
}

function printTask(step: PlanStep, results: NodeResult[], out: (l: string) => void): void {
  const builds = results.filter((r) => r.kind === 'build');
  const ok = builds.filter((r) => r.status === 'success');
  const bad = results.filter((r) => r.status === 'error');
  const skipped = builds.filter((r) => r.status === 'skipped');
  const rows = ok.reduce((n, r) => n + (r.rows ?? 0), 0);
  const scope = builds.some((r) => r.tenant) ? ` [${builds.length} practice${builds.length === 1 ? '' : 's'}]` : '';
  if (builds.length > 0) {
    const status = bad.some((r) => r.kind === 'build') ? pc.red('ERROR') : skipped.length === builds.length ? pc.yellow('SKIP ') : pc.green('OK   ');
    out(`${status} ${step.id}${scope} ${rows} rows${skipped.length ? `, ${skipped.length} skipped` : ''}`);
  }
  for (const r of bad) out(`  ${pc.red('✗')} ${r.node}: ${r.message ?? ''}`);
  const tests = results.filter((r) => r.kind === 'test');
  if (tests.length > 0 && !tests.some((r) => r.status === 'error')) out(`${pc.green('PASS ')} ${step.id}: ${new Set(tests.map((t) => t.node.split('@')[0])).size} test(s)`);
}

function printSummary(run: RunResults, out: (l: string) => void): void {
  const count = (s: string) => run.results.filter((r) => r.status === s).length;
  const failedTenants = Object.entries(run.tenants).filter(([, s]) => s.status === 'error').map(([t]) => t);
  out('');
  out(`Done in ${(run.elapsed_ms / 1000).toFixed(1)}s: ${count('success')} succeeded, ${count('error')} failed, ${count('skipped')} skipped.`);
  const globalFailed = run.results.filter((r) => r.tenant === null && r.status === 'error').map((r) => r.node);
  if (globalFailed.length > 0) out(pc.red(`Failed global nodes: ${globalFailed.join(', ')}`));
  if (failedTenants.length > 0) out(pc.red(`Practices with failures (${failedTenants.length}): ${failedTenants.slice(0, 20).join(', ')}${failedTenants.length > 20 ? ', …' : ''}`));
  out('Results: target/run_results.json');
}
