/**
 * Child of test/project/duckdb-settings.test.ts: opens a DuckDB warehouse as a run does, commits
 * `rows` rows in one transaction, says so on stdout and waits to be killed (SIGKILL), so that
 * nothing is checkpointed at close.
 */
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';

const [path, rows] = process.argv.slice(2);
const adapter = await DuckDBAdapter.open({ path: path!, connections: 1 });
await adapter.transaction(async (s) => {
  await s.query('CREATE TABLE t AS SELECT range AS i FROM range(CAST($1 AS BIGINT))', [Number(rows)]);
});
process.stdout.write('committed\n');
setInterval(() => undefined, 1000);
