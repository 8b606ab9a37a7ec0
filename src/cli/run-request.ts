import type { Adapter } from '../adapters/adapter.ts';
import type { NodeResult } from '../artifacts/run-results.ts';
import type { Clock } from '../clock.ts';
import type { Command, FanInPolicy, Plan, PlanStep } from '../plan/plan.ts';
import type { PlannedUnits } from '../plan/units.ts';
import type { SchedulerSnapshot } from '../schedule/index.ts';
import type { OpenOltp } from './capture-wiring.ts';
import type { Env } from './env.ts';


/** `tsform run | build | seed | test`, as the CLI and tests ask for it. */
export interface RunRequest {
  projectDir: string;
  command: Command;
  target?: string;
  select?: string[];
  exclude?: string[];
  /** Exactly these plan steps (a distributed run's job, by step id); `select` and `exclude` are then not read. */
  nodes?: string[];
  /**
   * `nodes` are every per-practice step of an unselected run (a distributed job of a whole run):
   * the practices' loaded-through dates (T+1) are then recorded as a full run records them.
   */
  nodesAreWholeRun?: boolean;
  /** A part of a distributed run: its coordinator runs the leak scan once, after every part. */
  skipLeakScan?: boolean;
  tenants?: string[];
  threads?: number;
  fullRefresh?: boolean;
  /** With fullRefresh: rebuild the practices' slices only, never drop a table (a distributed job). */
  fullRefreshSlicesOnly?: boolean;
  /** With fullRefreshSlicesOnly: the coordinator's refresh over every practice (execute/full-refresh.ts). */
  fullRefreshId?: string;
  /** Also write every unit to target/run_results.full.json (run_results.json is grouped per node). */
  fullResults?: boolean;
  fanIn?: FanInPolicy;
  nodeTimeoutMs?: number;
  onTaskEnd?: (step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot) => void;
  /**
   * Told the plan the run executes (after onboarding practices are put in batches of their own)
   * and the units it will report: builds, tests and run-wide checks, so that the announced total
   * is the final one.
   */
  onPlan?: (plan: Plan, units: PlannedUnits) => void;
  /** Use this adapter instead of opening the target's (tests). */
  adapter?: Adapter;
  /** Where `type: log` alerts are written (default: nowhere; the CLI passes stderr). */
  alertLog?: { write(line: string): unknown };
  /** Told when another tsform process holds the warehouse and this run waits for it. */
  onLockWait?: (holder: string) => void;
  /** `--state <dir>`: the previous manifest.json that `state:modified` compares against. */
  state?: string;
  /** `--defer`: read unselected upstream relations from `<state>/tsform.duckdb` when present, else build them. */
  defer?: boolean;
  deferDatabase?: string;
  /** The run's one clock: run timestamps, history window, loaded-through dates, SLA, alerts, vault, lock waits. Default: the system clock. */
  clock?: Clock;
  /** Opens the OLTP of captured sources (default: the URL in the source's `url_env`); tests inject faults here. */
  openOltp?: OpenOltp;
  /** Environment variables (target URL, OLTP URLs, vault key, webhook URLs). Default: the process environment. */
  env?: Env;
  /**
   * Ctrl-C: once aborted, nothing new starts, running nodes finish, and the run is recorded with
   * `interrupted` for every node it did not run (run_results.json `interrupted: true`).
   */
  signal?: AbortSignal;
  /** `--vars`: override tsform.yml's vars. */
  vars?: Record<string, unknown>;
  /** `--target-path`: where manifest.json, compiled SQL and run_results.json go (default target/). */
  targetPath?: string;
  /**
   * Set by the run itself for `state:captured`: the practices whose raw data log-based capture
   * changed since their last successful model run; the run builds only these.
   */
  capturedTenants?: ReadonlySet<string>;
}
