import { isAbsolute, join, relative, resolve } from 'node:path';
import { Command, Option } from 'commander';
import pc from 'picocolors';
import { registerCaptureCommands } from './capture-commands.ts';
import { registerDocsCommands } from './docs-command.ts';
import { registerDbtCommands } from './dbt-commands.ts';
import { registerInitCommand } from './init-command.ts';
import { positiveInteger, projectOption, runOptions, selectionOptions, stateOption, targetOption, targetPathOption, tenantOption, varsOption } from './option-sets.ts';
import { tsformVersion } from './package-root.ts';
import { useNearestProject } from './project-root.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { Codes, DiagnosticsError, formatDiagnostic, hasErrors, TsformError, type Diagnostic } from '../errors.ts';
import type { Command as PlanCommand } from '../plan/plan.ts';

export const EXIT_OK = 0;
export const EXIT_NODE_FAILED = 1;
export const EXIT_USER_ERROR = 2;
/** A bug in tsform itself, not in the project or its data: README's exit code table. */
export const EXIT_INTERNAL_ERROR = 3;
/** 128 + SIGINT, as a shell reports a process Ctrl-C stopped; the run's record is still written. */
export const EXIT_INTERRUPTED = 130;

/**
 * The first Ctrl-C (or SIGTERM) stops the run gracefully: nothing new starts, running nodes
 * finish, run_results.json records the rest as `interrupted`. A second one exits at once.
 */
function interruptOnSignals(err: (line: string) => void): { signal: AbortSignal; release(): void; failFast(): void; readonly failedFast: boolean } {
  let failedFast = false;
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      err(`${sig} again: exiting now; run_results.json is not written`);
      process.exit(EXIT_INTERRUPTED);
    }
    err(`${sig}: stopping: nothing new starts, running nodes finish, then the run is recorded (${sig} again to exit now)`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    failFast: () => {
      if (stop.signal.aborted) return;
      failedFast = true;
      err('--fail-fast: a node failed; stopping: nothing new starts, running nodes finish');
      stop.abort('--fail-fast stopped the run after the first failure');
    },
    get failedFast() {
      return failedFast;
    },
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Every option a command of this file reads; each command offers only its own groups (option-sets.ts). */
interface CommandOptions {
  projectDir: string;
  target?: string;
  select?: string[];
  exclude?: string[];
  tenant?: string[];
  threads?: number;
  fullRefresh?: boolean;
  fanIn?: 'use_last_good' | 'skip' | 'block';
  nodeTimeout?: number;
  state?: string;
  defer?: boolean;
  deferDatabase?: string;
  vars?: Record<string, unknown>;
  failFast?: boolean;
  distributed?: boolean;
  resume?: string;
  targetPath?: string;
}

/** Parses argv, runs one command, returns the exit code (never calls process.exit). */
export async function runCli(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  let code = EXIT_OK;
  const err = (line: string) => process.stderr.write(`${line}\n`);
  const program = new Command()
    .name('tsform')
    .description('SQL transformations per medical practice, with row-level security and a pseudonymized research layer')
    .version(tsformVersion(), '-V, --version', 'print tsform\'s version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (t) => out(t.replace(/\n$/, '')), writeErr: (t) => process.stderr.write(t) });

  useNearestProject(program, err);

  const project = (cmd: Command) => targetOption(projectOption(cmd));
  const run = (cmd: Command) => runOptions(targetPathOption(varsOption(stateOption(tenantOption(selectionOptions(project(cmd)))))));

  const guard = (fn: (o: CommandOptions) => Promise<number>) => async (o: CommandOptions) => {
    try {
      code = await fn(o);
    } catch (e) {
      code = reportError(e, err);
    }
  };

  targetPathOption(varsOption(stateOption(projectOption(program.command('compile').description('compile models to target/manifest.json and target/compiled/*.sql; no database is touched')))))
    .option('--strict', 'also require: every source and model column classified (phi:) and every output column listed, yml columns the SQL outputs, research models and columns described, the tenant column in every tenant-scoped output, relationships tests on existing columns, no unused macro')
    .option('--target <name>', 'with --strict: DESCRIBE models whose output columns the SQL parser cannot derive on this built target (otherwise no database is touched)')
    .addOption(new Option('--format <format>', 'text, or json (one array of {file, line, code, severity, message} for CI annotations)').choices(['text', 'json']).default('text'))
    .action(async (o: CommandOptions & { strict?: boolean; format: string; state?: string }) => {
      const { compileAgainst, readStateManifest } = await import('./api.ts');
      const { strictDiagnostics } = await import('./strict-stage.ts');
      const emit = (diagnostics: Diagnostic[]) =>
        o.format === 'json' ? out(JSON.stringify(diagnostics.map((d) => ({ file: d.file ?? null, line: d.line ?? null, code: d.code, severity: d.severity, message: d.message })))) : diagnostics.forEach((d) => err(formatDiagnostic(d)));
      try {
        const ws = compileAgainst(o.projectDir, { vars: o.vars, targetPath: o.targetPath }, o.state ? readStateManifest(o.state) : undefined);
        const found = [...ws.diagnostics, ...(o.strict ? await strictDiagnostics(ws, { target: o.target }) : [])];
        emit(found);
        const m = ws.manifest;
        // A failed --strict ended with this success line: the errors' count says it failed.
        const failed = found.filter((d) => d.severity === 'error').length;
        if (o.format !== 'json' && failed > 0) err(`compile --strict: ${failed} error(s)`);
        else if (o.format !== 'json') out(`compiled ${Object.keys(m.models).length} models, ${Object.keys(m.seeds).length} seeds, ${Object.keys(m.sources).length} sources, ${Object.keys(m.tests).length} tests for ${m.tenants.length} practices → ${shownPath(ws.project.root, join(ws.targetDir, 'manifest.json'))}`);
        code = hasErrors(found) ? EXIT_USER_ERROR : EXIT_OK;
      } catch (e) {
        if (e instanceof DiagnosticsError && o.format === 'json') {
          emit(e.diagnostics);
          code = EXIT_USER_ERROR;
        } else code = reportError(e, err);
      }
    });

  targetPathOption(varsOption(stateOption(tenantOption(selectionOptions(projectOption(program.command('ls').description('list selected nodes and the practices they fan out to')))))))
    .addOption(new Option('--resource-type <type...>', 'only these kinds').choices(['model', 'seed', 'source', 'test', 'tenants', 'vault']))
    .addOption(new Option('--output <format>', 'text (a line per node and the units line) or json (one object per node)').choices(['text', 'json']).default('text'))
    .option('--rebuilds', 'read the warehouse of --target (nothing is written): per selected incremental model, how many practices the next run merges into and how many it rebuilds in full, and why')
    .option('--target <name>', 'with --rebuilds: the target whose warehouse is read (default: tsform.yml\'s `target`); ls reads no database otherwise')
    .action(
    guard(async (o) => {
      const lo = o as CommandOptions & { resourceType?: string[]; output: 'text' | 'json'; rebuilds?: boolean };
      const { prepareSlimCi } = await import('./api.ts');
      const { leakScanPlanned } = await import('./run-record.ts');
      const { plannedUnits } = await import('../plan/units.ts');
      const { planLine } = await import('./progress.ts');
      const { ws, plan } = prepareSlimCi({ projectDir: o.projectDir, command: 'build', select: o.select, exclude: o.exclude, tenants: o.tenant, state: o.state, vars: o.vars, targetPath: o.targetPath });
      if (lo.rebuilds) {
        const { listRebuilds } = await import('./rebuilds.ts');
        for (const line of await listRebuilds(ws, plan, o.target, lo.output, err)) out(line);
        return EXIT_OK;
      }
      const { listedNodes } = await import('./list-nodes.ts');
      const listed = listedNodes(ws, plan, lo.resourceType);
      if (lo.output === 'json') {
        for (const n of listed) out(JSON.stringify(n));
        return EXIT_OK;
      }
      const who = (n: (typeof listed)[number]) =>
        n.practices === null ? 'once' : `${n.practices} practices${n.withheld_from_research ? ` (${n.withheld_from_research} withheld from research: nothing written for them)` : ''}`;
      for (const n of listed) out(`${n.name}\t${n.resource_type}\t${n.scope}\t${n.materialized ?? '-'}\t${who(n)}`);
      // The same units and wording as \`tsform build\` announces for this selection.
      out(planLine(plan, plannedUnits(plan, { checks: leakScanPlanned(ws, plan) ? 1 : 0 })));
      return EXIT_OK;
    }),
  );

  /** run / seed / test / build, and retry with the selection it read from run_results.json. */
  const runAction = async (name: PlanCommand, o: CommandOptions): Promise<number> => {
    if (o.resume && !o.distributed) throw new TsformError(Codes.unsupported, '--resume <run id> resumes a distributed run: add --distributed');
    const { runWorkspace } = await import('./api.ts');
    const { jsonReporter, textReporter } = await import('./progress.ts');
    const { loggingReporter, openRunLog } = await import('./run-log.ts');
    const { artifactDir } = await import('./target-path.ts');
    const format = (o as CommandOptions & { logFormat?: string }).logFormat ?? (process.stdout.isTTY ? 'text' : 'json');
    const log = openRunLog(artifactDir(resolve(o.projectDir), o.targetPath), [name, ...argv.slice(3)]);
    const inner = format === 'json' ? jsonReporter(out) : textReporter(out, { isTTY: Boolean(process.stdout.isTTY), write: (t) => process.stdout.write(t) });
    const reporter = loggingReporter(inner, log);
    const stop = interruptOnSignals(err);
    if (o.distributed) {
      const { runDistributed } = await import('./coordinator.ts');
      const run = await runDistributed(
        { projectDir: o.projectDir, command: name, target: o.target, select: o.select, exclude: o.exclude, tenants: o.tenant, threads: o.threads, fullRefresh: o.fullRefresh, fanIn: o.fanIn, vars: o.vars, targetPath: o.targetPath, signal: stop.signal, onPlan: reporter.onPlan },
        { resume: o.resume, onJob: (e) => err(`job ${e.job.slice(0, 8)} ${e.state}: ${e.tenants.length} practice(s) from ${e.tenants[0]}`) },
      ).finally(() => stop.release());
      reporter.onEnd(run);
      log.close();
      if (run.interrupted) return EXIT_INTERRUPTED;
      return run.results.some((r) => r.status === 'error') || (run.needs_action?.length ?? 0) > 0 ? EXIT_NODE_FAILED : EXIT_OK;
    }
    const run = await runWorkspace({
      projectDir: o.projectDir,
      command: name,
      target: o.target,
      select: o.select,
      exclude: o.exclude,
      tenants: o.tenant,
      threads: o.threads,
      fullRefresh: o.fullRefresh,
      fullResults: (o as CommandOptions & { fullResults?: boolean }).fullResults,
      fanIn: o.fanIn,
      nodeTimeoutMs: o.nodeTimeout === undefined ? undefined : o.nodeTimeout * 1000,
      state: o.state,
      defer: o.defer,
      deferDatabase: o.deferDatabase,
      onPlan: reporter.onPlan,
      onTaskEnd: (step, results, progress) => {
        reporter.onTaskEnd?.(step, results, progress);
        if (o.failFast && results.some((r) => r.status === 'error')) stop.failFast();
      },
      vars: o.vars,
      targetPath: o.targetPath,
      // Text mode: alerts are summed up in words at the end; their JSON goes to the log file.
      alertLog: reporter.alertLog,
      onLockWait: (holder) => err(`waiting: the warehouse is held by another tsform run (${holder})`),
      signal: stop.signal,
    })
      .catch((e: unknown) => {
        log.line('error', e instanceof Error ? `${e.name}: ${safeDbMessage(e)}` : 'failed');
        log.close();
        throw e;
      })
      .finally(() => stop.release());
    reporter.onEnd(run);
    log.close();
    if (run.interrupted && !stop.failedFast) return EXIT_INTERRUPTED;
    return run.results.some((r) => r.status === 'error') || (run.needs_action?.length ?? 0) > 0 ? EXIT_NODE_FAILED : EXIT_OK;
  };
  const logFormatOption = (cmd: Command) =>
    cmd.addOption(new Option('--log-format <format>', 'text (live view on a terminal) or json lines (default when not a terminal)').choices(['text', 'json']));

  for (const [name, description] of [
    ['run', 'build selected models for selected practices'],
    ['seed', 'load seeds/*.csv'],
    ['test', 'run data tests (per practice for tenant-scoped models)'],
    ['build', 'seed + run + test in DAG order; a failing test skips that practice\'s downstream'],
  ] as const) {
    logFormatOption(run(program.command(name).description(description)))
      .option('--distributed', 'plan here and let `tsform worker` processes (on any machines reaching the PostgreSQL warehouse) run the practices')
      .option('--resume <run-id>', 'with --distributed: resume this unfinished run, however long ago its coordinator stopped')
      .option('--full-results', 'also write every unit (node × practice) to target/run_results.full.json; run_results.json lists only what did not succeed, per node')
      .action(guard((o) => runAction(name, o)));
  }

  targetOption(projectOption(program.command('worker').description('run practice jobs of distributed runs (`run --distributed`) from the queue in the PostgreSQL warehouse, until stopped')))
    .option('--pool <pool...>', 'serve only these pools of tsform.yml (e.g. backfill); default every pool')
    .option('--worker-id <id>', 'this worker\'s name in the queue (default host:pid); unique among live workers')
    .addOption(new Option('--threads <n>', 'statements in flight at once').argParser(positiveInteger))
    .addOption(new Option('--exit-when-idle <seconds>', 'stop after this long without a job (default: run until SIGTERM)').argParser(positiveInteger))
    .addOption(new Option('--connect-timeout <seconds>', 'retry an unreachable warehouse or queue (with backoff) this long before giving up').default(300).argParser(positiveInteger))
    .action(
      guard(async (o) => {
        const { runWorker } = await import('./worker.ts');
        const w = o as CommandOptions & { pool?: string[]; workerId?: string; exitWhenIdle?: number; connectTimeout: number };
        const stop = interruptOnSignals(err);
        try {
          const done = await runWorker({
            projectDir: o.projectDir,
            target: o.target,
            pools: w.pool,
            workerId: w.workerId,
            threads: o.threads,
            exitWhenIdleMs: w.exitWhenIdle === undefined ? undefined : w.exitWhenIdle * 1000,
            connectGiveUpMs: w.connectTimeout * 1000,
            signal: stop.signal,
            onEvent: (e) => out(JSON.stringify(e)),
          });
          err(`worker stopped after ${done.jobs} job(s)`);
          return EXIT_OK;
        } finally {
          stop.release();
        }
      }),
    );

  registerDbtCommands(program, { guard, out, err, runAction, logFormatOption });

  const freshnessCommand = (cmd: Command) =>
    tenantOption(project(cmd.description('every practice as fresh, at risk or late against its sla.ready_by, in its own time zone, with the reason')))
      .addOption(new Option('--format <format>', 'text or json').choices(['text', 'json']).default('text'))
      .option('--alert', 'send at-risk and late alerts to the sinks of tsform.yml')
      .action(
        guard(async (o) => {
          const { freshness, formatFreshness } = await import('./freshness.ts');
          const opts = o as CommandOptions & { format: string; alert?: boolean };
          const rows = await freshness({ projectDir: o.projectDir, target: o.target, tenants: o.tenant, alert: opts.alert });
          out(opts.format === 'json' ? JSON.stringify(rows) : formatFreshness(rows));
          return EXIT_OK;
        }),
      );
  targetPathOption(projectOption(program.command('clean').description('remove what tsform wrote into target/ (manifest, compiled SQL, run results, docs); keeps the DuckDB warehouse, research and vault files')))
    .action(
      guard(async (o) => {
        const { loadProject } = await import('../project/load-project.ts');
        const { cleanTarget } = await import('./clean.ts');
        const r = cleanTarget(loadProject(o.projectDir), o.targetPath);
        for (const p of r.removed) out(`removed ${p}`);
        for (const p of r.kept) out(`kept ${p} (a database: delete it yourself if you mean to)`);
        for (const p of r.foreign) out(`kept ${p} (not written by tsform)`);
        return EXIT_OK;
      }),
    );

  freshnessCommand(program.command('freshness'));
  // dbt's spelling: `dbt source freshness`.
  freshnessCommand(program.command('source').description('sources (dbt\'s `source freshness` is `tsform freshness`)').command('freshness'));

  const vault = program.command('vault').description('the restricted identity store of the research layer');
  project(vault.command('init').description('create the vault key (or record the fingerprint of $TSFORM_VAULT_KEY); prints the fingerprint only')).action(
    guard(async (o) => {
      const { vaultInitCommand } = await import('./privacy.ts');
      return vaultInitCommand(o.projectDir, o.target, out);
    }),
  );
  project(vault.command('retokenize').description('forget the match keys so that changed privacy.identity linkage settings are accepted (tokens stay; build every practice next)')).action(
    guard(async (o) => {
      const { vaultRetokenizeCommand } = await import('./privacy.ts');
      return vaultRetokenizeCommand(o.projectDir, o.target, out);
    }),
  );
  project(program.command('reidentify').description('the one audited way back from a person token to practice records (vault_steward only)'))
    .requiredOption('--token <token>', 'person token from a research relation')
    .requiredOption('--reason <text>', 'why; written to the audit log with who and when')
    .action(
      guard(async (o) => {
        const { reidentifyCommand } = await import('./privacy.ts');
        const opts = o as CommandOptions & { token: string; reason: string };
        return reidentifyCommand(o.projectDir, o.target, opts.token, opts.reason, out);
      }),
    );

  const privacy = program.command('privacy').description('the research layer\'s gates');
  project(privacy.command('check').description('PHI lineage, k-anonymity of published research relations, leak scan against raw identifiers')).action(
    guard(async (o) => {
      const { privacyCheckCommand } = await import('./privacy.ts');
      return privacyCheckCommand(o.projectDir, o.target, out);
    }),
  );

  const policies = program.command('policies').description('row-level security: render, apply and verify the DDL of policies/policies.yml');
  projectOption(policies.command('render').description('print the DDL (roles, membership, RLS per protected relation); works on every target')).option('--out <file>', 'write to a file instead of stdout').action(
    guard(async (o) => {
      const { renderPoliciesText } = await import('./policies.ts');
      const text = renderPoliciesText(o.projectDir);
      const file = (o as CommandOptions & { out?: string }).out;
      if (file) (await import('node:fs')).writeFileSync(file, text);
      else out(text);
      return EXIT_OK;
    }),
  );
  project(policies.command('apply').description('create roles, sync memberships, protect every existing relation (one transaction; PostgreSQL only)')).action(
    guard(async (o) => {
      const { applyPoliciesCommand } = await import('./policies.ts');
      return applyPoliciesCommand(o.projectDir, o.target, out);
    }),
  );
  project(policies.command('verify').description('connect as practice roles and prove that no practice sees another\'s rows (PostgreSQL only)'))
    .addOption(new Option('--max-roles <n>', 'practice roles to probe (all of them up to this many)').default(200).argParser(positiveInteger))
    .action(
      guard(async (o) => {
        const { verifyPoliciesCommand } = await import('./policies.ts');
        return verifyPoliciesCommand(o.projectDir, o.target, (o as CommandOptions & { maxRoles: number }).maxRoles, out);
      }),
    );

  registerDocsCommands(program, guard, out);
  registerCaptureCommands(program, guard, out);
  registerInitCommand(program, guard, out);

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

/** A path under the project as the project sees it (`target/manifest.json`); elsewhere, absolute. */
function shownPath(root: string, path: string): string {
  const rel = relative(root, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
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
  // A database error that escaped its command: its message goes through the one redactor, and
  // only the stack's frames follow (the stack's first line repeats the unredacted message).
  const frames = (e instanceof Error ? (e.stack ?? '') : '').split('\n').filter((l) => /^\s+at /.test(l));
  err(pc.red(`internal error (a bug in tsform; please report it with this output): ${[safeDbMessage(e), ...frames].join('\n')}`));
  return EXIT_INTERNAL_ERROR;
}
