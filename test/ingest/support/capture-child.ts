/**
 * Run by crash.test.ts as a child process (node --import tsx): captures every demo table for
 * every practice into a DuckDB file, then exits. The test kills it with SIGKILL mid-way. Every
 * chunk's successor is read ahead (readAheadBytes 0), so kills also land between a read ahead
 * and its commit.
 * argv: <oltp url> <duckdb path> <chunk rows>
 */
import { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { captureTenantSlice } from '../../../src/ingest/capture.ts';
import { demoSpecs, demoTenantIds } from './capture-fixture.ts';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';

const [url, path, chunk] = process.argv.slice(2);
const source = await PgOltpSource.open(url!);
const wh = await DuckDBAdapter.open({ path: path!, connections: 2 });
process.stdout.write('ready\n');
for (const spec of demoSpecs()) {
  const r = await captureTenantSlice(wh, source, spec, demoTenantIds(), { chunkRows: Number(chunk), concurrency: 2, readAheadBytes: 0 });
  if (r.failures.length > 0) process.stdout.write(`failures ${spec.table}: ${r.failures.map((f) => f.message).join('; ')}\n`);
}
await wh.close();
await source.close();
process.stdout.write('done\n');
