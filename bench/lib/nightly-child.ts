/**
 * One `tsform` CLI invocation in a process of its own, for bench:nightly: the real CLI
 * (src/cli/program.ts), with the process's peak RSS (`process.resourceUsage().maxRSS`, which
 * DuckDB's memory is part of, as it runs in-process) written as JSON to $NIGHTLY_CHILD_OUT.
 * Node events are counted, not kept: at 5,000 practices a run prints ~100,000 lines.
 *
 *   node --import tsx bench/lib/nightly-child.ts run --project-dir <dir> …
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { runCli } from '../../src/cli/program.ts';

const outPath = process.env.NIGHTLY_CHILD_OUT;
if (!outPath) throw new Error('NIGHTLY_CHILD_OUT is not set');
const t0 = performance.now();
let summary: unknown;
// Failed nodes by model, practice and code only (a message may quote a value).
// The node's message too: tsform's messages carry no values (safe-message.ts), and a failed bench run is otherwise unexplained.
const failed: { model: string; tenant: string | null; code: string; message: string | null }[] = [];
let lines = 0;
// NIGHTLY_MEMORY_TRACE=<file>: one JSON line a second (RSS, V8 heap, buffers outside it, the
// last model a node event named), to tell DuckDB's memory from Node's when the peak is too high.
const tracePath = process.env.NIGHTLY_MEMORY_TRACE;
let lastModel = '';
const sampler = tracePath
  ? setInterval(() => {
      const m = process.memoryUsage();
      const mb = (b: number) => Math.round(b / 2 ** 20);
      appendFileSync(tracePath, `${JSON.stringify({ s: Math.round((performance.now() - t0) / 1000), rss: mb(m.rss), heap: mb(m.heapUsed), external: mb(m.external), model: lastModel })}\n`);
    }, 1000).unref()
  : undefined;
const code = await runCli(['node', 'tsform', ...process.argv.slice(2)], (line) => {
  lines++;
  if (tracePath) lastModel = /"model":"([^"]*)"/.exec(line)?.[1] ?? lastModel;
  if (line.includes('"event":"summary"')) summary = JSON.parse(line);
  else if (line.includes('"status":"error"')) {
    const e = JSON.parse(line) as { model: string; tenant: string | null; code?: string; message?: string | null };
    failed.push({ model: e.model, tenant: e.tenant, code: e.code ?? 'none', message: e.message ?? null });
  }
});
if (sampler) clearInterval(sampler);
writeFileSync(
  outPath,
  JSON.stringify({ code, seconds: (performance.now() - t0) / 1000, max_rss_kb: process.resourceUsage().maxRSS, lines, summary, failed }),
);
process.exitCode = code;
