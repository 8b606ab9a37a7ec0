import { type Command, InvalidArgumentError, Option } from 'commander';
import { parse } from 'yaml';
import { TARGET_PATH_ENV } from './target-path.ts';

/**
 * The option groups of the CLI. Each command adds only the groups it reads, so `--help` of
 * `ls` or `docs generate` never offers `--full-refresh` or `--threads`.
 */

/** `--threads 0` or `--threads abc` is a commander error, before any database sees the value. */
export function positiveInteger(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number.parseInt(value, 10) < 1) {
    throw new InvalidArgumentError(`expected a whole number of at least 1, got '${value}'`);
  }
  return Number.parseInt(value, 10);
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number above 0, got '${value}'`);
  return n;
}

/** `--project-dir`; without it the nearest folder up from here holding tsform.yml (see project-root.ts). */
export function projectOption(cmd: Command): Command {
  return cmd.option('--project-dir <dir>', 'project directory (default: the nearest folder holding tsform.yml, from here upwards)');
}

/** `--target-path` (env TSFORM_TARGET_PATH): where artifacts go; see target-path.ts. */
export function targetPathOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--target-path <dir>', 'where manifest.json, compiled SQL, run_results.json and docs go, relative to the project folder (default: target/; databases stay where tsform.yml puts them)').env(TARGET_PATH_ENV),
  );
}

export function targetOption(cmd: Command): Command {
  return cmd.option('--target <name>', 'target from tsform.yml (default: its `target`)');
}

export function selectOption(cmd: Command): Command {
  return cmd.option('-s, --select <selector...>', 'dbt selector: name, +name, name+, 2+name, name+1, @name, tag:x, path:x, source:x, resource_type:x, config.materialized:x, state:modified; comma = and, space = or');
}

/** `--select` and `--exclude`. */
export function selectionOptions(cmd: Command): Command {
  return selectOption(cmd).option('--exclude <selector...>', 'nodes to leave out (same grammar)');
}

export function tenantOption(cmd: Command): Command {
  return cmd.option('--tenant <ids...>', 'practices: id[,id...] or tag:<tag> (default: every practice)');
}

export function stateOption(cmd: Command): Command {
  return cmd.option('--state <dir>', 'a previous manifest.json (production) for state:modified');
}

/**
 * `--vars '{panel_months: 6}'` (YAML or JSON, as dbt takes them): a mapping of vars that override
 * tsform.yml's for this command. `privacy_k` is derived from privacy.k and cannot be overridden.
 */
export function parseVars(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parse(value);
  } catch (e) {
    throw new InvalidArgumentError(`not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError("expected a mapping, e.g. '{panel_months: 6}'");
  if ('privacy_k' in parsed) throw new InvalidArgumentError('privacy_k comes from privacy.k in tsform.yml (a reviewed file) and cannot be overridden on the command line');
  return parsed as Record<string, unknown>;
}

export function varsOption(cmd: Command): Command {
  return cmd.addOption(new Option('--vars <yaml>', "override tsform.yml vars with a YAML or JSON mapping, e.g. '{panel_months: 6}'").argParser(parseVars));
}

/** Options that only a run (`run`, `seed`, `test`, `build`; `retry` without the defer pair, which needs --state) reads. */
export function runOptions(cmd: Command, opts: { defer?: boolean } = {}): Command {
  cmd
    .addOption(new Option('--threads <n>', 'statements in flight at once (a whole number ≥ 1)').argParser(positiveInteger))
    .option('--full-refresh', 'rebuild from scratch: with every practice, tables are created again (each practice keeps its rows until its rebuild commits); with --tenant, those practices\' slices are rebuilt from the full SELECT')
    .addOption(new Option('--fan-in <policy>', 'global nodes when a practice failed upstream').choices(['use_last_good', 'skip', 'block']))
    .addOption(new Option('--node-timeout <seconds>', 'cancel a node after this long (default: run.node_timeout_seconds)').argParser(positiveNumber));
  if (opts.defer !== false) {
    cmd.option('--defer', 'read unselected upstream relations from <state>/tsform.duckdb when present, else build them for the selected practices').option('--defer-database <file>', 'the DuckDB file for --defer (never production rows in a pull request\'s CI)');
  }
  return cmd.option('--fail-fast', 'stop at the first failed node or test: nothing new starts, the rest is recorded as interrupted');
}
