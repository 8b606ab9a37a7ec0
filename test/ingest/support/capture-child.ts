/**
 * Run by crash.test.ts as a child process (node --import tsx): captures every demo table for
 * every practice into a DuckDB file. Every chunk's successor is read ahead (readAheadBytes 0),
 * so a kill also lands between a read ahead and its commit.
 *
 * The test decides where it kills, in chunks rather than milliseconds: after the `killAt`-th
 * committed chunk of this run the child prints `kill-point <n>` and goes on capturing; the test
 * kills it when it reads that line, wherever the capture is by then. A child that reaches the
 * end first waits there to be killed, so every run the test meant to kill is killed.
 * argv: <oltp url> <duckdb path> <chunk rows> <first table index> <kill at chunk, 0: never>
 */
import { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { captureTenantSlice } from '../../../src/ingest/capture.ts';
import { demoSpecs, demoTenantIds } from './capture-fixture.ts';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';

const [url, path, chunk, first, killAtArg] = process.argv.slice(2);
const killAt = Number(killAtArg ?? 0);
const source = await PgOltpSource.open(url!);
const wh = await DuckDBAdapter.open({ path: path!, connections: 2 });
process.stdout.write('ready\n');
// the test picks the table to start with, so kills land in every table, not only the first
const specs = demoSpecs();
const order = [...specs.slice(Number(first ?? 0)), ...specs.slice(0, Number(first ?? 0))];
let chunks = 0;
const onChunk = () => {
  // stdout is a pipe: this write is synchronous, the line is out before the next chunk commits
  if (++chunks === killAt) process.stdout.write(`kill-point ${chunks}\n`);
};
for (const spec of order) {
  const r = await captureTenantSlice(wh, source, spec, demoTenantIds(), { chunkRows: Number(chunk), concurrency: 2, readAheadBytes: 0, onChunk });
  if (r.failures.length > 0) process.stdout.write(`failures ${spec.table}: ${r.failures.map((f) => f.message).join('; ')}\n`);
}
if (killAt > 0 && chunks >= killAt) {
  process.stdout.write('waiting to be killed\n');
  setInterval(() => undefined, 60_000);
} else {
  await wh.close();
  await source.close();
  process.stdout.write(`done after ${chunks} chunks\n`);
}
