/**
 * `npm run bench:compile`: compile + plan of a synthetic 500-model × 5,000-practice project.
 *
 * Generates the project into a fresh temp dir (not timed), then in this one process measures:
 *   compile_ms         first (cold) compileWorkspace(dir, { write: false }) = load + compile + DAG
 *   compile_ms_median  median of 3 further compiles
 *   plan_ms            planWorkspace(ws, { command: 'build' }) over every practice
 *   nodes              plan.nodeCount
 *   peak_rss_mb        max of process.memoryUsage().rss sampled every 10 ms (by a worker thread,
 *                      since compile is synchronous and blocks this thread's timers) and at the end
 *   max_rss_mb         process.resourceUsage().maxRSS: the kernel's true peak
 * Progress goes to stderr; the last stdout line is one JSON object. Never asserts wall-clock
 * times (DESIGN §8); it does assert that the compile is correct for the project it measured.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { compileWorkspace, planWorkspace, type Workspace } from '../src/cli/api.ts';
import { compileProject } from '../src/compile/compile.ts';
import { DiagnosticsError, formatDiagnostic, hasErrors } from '../src/errors.ts';
import { buildDag } from '../src/graph/dag.ts';
import { loadProject } from '../src/project/load-project.ts';
import { generateSyntheticProject, prng, tenantId } from './lib/synthetic-project.ts';

const MODELS = 500;
const TENANTS = 5000;
const REPEATS = 3;

const log = (msg: string) => process.stderr.write(`[bench:compile] ${msg}\n`);
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const round = (ms: number) => Math.round(ms * 10) / 10;

class BenchAssertion extends Error {
  override name = 'BenchAssertion';
}
function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new BenchAssertion(message);
}

/**
 * Samples RSS every 10 ms from a worker thread: compile is synchronous, so a setInterval on the
 * main thread would not fire while it runs. RSS is process-wide, so the worker sees the main
 * thread's memory. The peak is shared through a SharedArrayBuffer.
 */
async function startRssSampler(): Promise<{ peak(): number; stop(): Promise<void> }> {
  const shared = new SharedArrayBuffer(16);
  const view = new Float64Array(shared);
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const view = new Float64Array(workerData);
    const tick = () => { const r = process.memoryUsage.rss(); if (r > view[0]) view[0] = r; };
    tick();
    const timer = setInterval(tick, 10);
    parentPort.on('message', () => { clearInterval(timer); tick(); parentPort.close(); });
  `;
  // execArgv: [] so the worker does not load tsx: it should weigh as little as possible.
  const worker = new Worker(code, { eval: true, workerData: shared, execArgv: [] });
  await new Promise((resolve, reject) => worker.once('online', resolve).once('error', reject));
  const sample = () => {
    const r = process.memoryUsage.rss();
    if (r > view[0]!) view[0] = r;
  };
  return {
    peak: () => {
      sample();
      return view[0]!;
    },
    stop: async () => {
      worker.postMessage('stop');
      await new Promise((resolve) => worker.once('exit', resolve));
      sample();
    },
  };
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

function compileOrExplain(dir: string): Workspace {
  try {
    return compileWorkspace(dir, { write: false });
  } catch (err) {
    if (err instanceof DiagnosticsError) {
      const errors = err.diagnostics.filter((d) => d.severity === 'error');
      throw new BenchAssertion(
        `synthetic project did not compile: ${errors.length} error diagnostic(s):\n${errors.slice(0, 20).map(formatDiagnostic).join('\n')}`,
      );
    }
    throw err;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function verify(ws: Workspace, tenantIds: string[]): void {
  const errors = ws.diagnostics.filter((d) => d.severity === 'error');
  check(!hasErrors(ws.diagnostics), `compile produced ${errors.length} error diagnostic(s): ${errors.slice(0, 5).map(formatDiagnostic).join('; ')}`);
  const models = Object.keys(ws.manifest.models).length;
  check(models === MODELS, `manifest has ${models} models, expected ${MODELS}`);
  check(ws.manifest.tenants.length === TENANTS, `manifest has ${ws.manifest.tenants.length} tenants, expected ${TENANTS}`);

  // DESIGN §4: a model is rendered once; practice ids are bound at execution, never in the text.
  const rand = prng(7);
  const sample = new Set([tenantId(1), tenantId(TENANTS)]);
  while (sample.size < 50) sample.add(tenantIds[Math.floor(rand() * tenantIds.length)]!);
  const texts: [string, string][] = [];
  for (const node of Object.values(ws.manifest.models)) {
    if (node.compiled_sql !== undefined) texts.push([`model ${node.name}`, node.compiled_sql]);
    if (node.compiled_incremental_sql !== undefined) texts.push([`model ${node.name} (incremental)`, node.compiled_incremental_sql]);
  }
  for (const t of Object.values(ws.manifest.tests)) texts.push([`test ${t.name}`, t.sql]);
  const rendered = Object.values(ws.manifest.models).filter((n) => n.compiled_sql !== undefined).length;
  check(rendered === MODELS, `only ${rendered} of ${MODELS} models have compiled SQL`);
  for (const [what, sql] of texts) {
    for (const id of sample) check(!sql.includes(id), `${what}: compiled SQL contains practice id '${id}'`);
  }
  log(`verified: 0 errors, ${models} models, ${ws.manifest.tenants.length} tenants, ${texts.length} SQL texts free of ${sample.size} sampled practice ids`);
}

async function main(): Promise<void> {
  log(`generating ${MODELS} models × ${TENANTS} practices …`);
  const gen = timed(() => generateSyntheticProject({ models: MODELS, tenants: TENANTS }));
  const project = gen.value;
  const c = project.counts;
  log(
    `generated in ${round(gen.ms)} ms (not counted): ${project.files} files, ${mb(project.bytes)} MB at ${project.dir}\n` +
      `  staging ${c.staging}, intermediate ${c.intermediate}, marts ${c.marts}, global ${c.global}; ` +
      `incremental ${c.incremental}, views ${c.views}, ephemeral ${c.ephemeral}; ` +
      `properties for ${c.withProperties} models, ~${c.tests} tests; ${c.largeTenants} large practices`,
  );

  const baseline = process.memoryUsage.rss();
  const sampler = await startRssSampler();
  try {
    log(`rss before work: ${mb(baseline)} MB (${mb(process.memoryUsage.rss())} MB with the sampler thread running)`);

    const cold = timed(() => compileOrExplain(project.dir));
    log(`cold compile (load + compile + dag): ${round(cold.ms)} ms, rss ${mb(sampler.peak())} MB peak so far`);
    verify(cold.value, project.tenantIds);

    const plan = timed(() => planWorkspace(cold.value, { command: 'build' }));
    log(`plan (build, all practices): ${round(plan.ms)} ms: ${plan.value.steps.length} steps, ${plan.value.batches.length} batches, ${plan.value.nodeCount} nodes`);
    const nodes = plan.value.nodeCount;
    log(`peak rss after cold compile + plan: ${mb(sampler.peak())} MB`);

    const repeats: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const r = timed(() => compileOrExplain(project.dir));
      repeats.push(r.ms);
      log(`compile #${i + 2}: ${round(r.ms)} ms`);
    }

    // Not part of the figures: where one (warm) compile spends its time, for whoever reads the log.
    const load = timed(() => loadProject(project.dir));
    const comp = timed(() => compileProject(load.value));
    const dag = timed(() => buildDag(comp.value.manifest));
    log(`breakdown (warm): loadProject ${round(load.ms)} ms, compileProject ${round(comp.ms)} ms, buildDag ${round(dag.ms)} ms`);

    await sampler.stop();
    const result = {
      models: MODELS,
      tenants: TENANTS,
      nodes,
      compile_ms: round(cold.ms),
      compile_ms_median: round(median(repeats)),
      plan_ms: round(plan.ms),
      peak_rss_mb: mb(sampler.peak()),
      max_rss_mb: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    project.cleanup();
    log(`removed ${project.dir}`);
  }
}

main().catch((err: unknown) => {
  log(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exitCode = 1;
});
