/**
 * Run by logical-crash.test.ts as a child process (node --import tsx): one `tsform run`'s worth of
 * log-based capture (set-up, the stream up to now, every practice's apply) into a DuckDB file,
 * through the same LogicalCapture that `tsform run` uses, with small batches so that there are
 * many commits to land in.
 *
 * The test picks the kill point: at the `n`-th event of `kind` the child prints `kill-point` and
 * stops right there (an await that never resolves), so the kill lands exactly at that point:
 * - `received`: a source transaction is in memory, nothing of it queued;
 * - `before-commit`: queue rows and the slot position written, the warehouse COMMIT not sent;
 * - `after-commit`: the warehouse committed, the slot not yet confirmed;
 * - `mid-apply`: a practice's apply has written raw and deleted its queue rows, not committed.
 * Every committed queue batch and every applied queue row is recorded in an audit schema, in the
 * same warehouse transaction, so the test can tell whether anything was queued or applied twice.
 * argv: <oltp url> <duckdb path> <project> <tenants,comma,separated> <kind|none> <n>
 */
import type { Session } from '../../../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../../../src/adapters/duckdb/duckdb-adapter.ts';
import { lsnSortKey } from '../../../../src/adapters/logical-replication.ts';
import { PgOltpSource } from '../../../../src/adapters/postgres/pg-oltp-source.ts';
import { logicalCaptureOf } from './logical-fixture.ts';

const [url, path, project, tenantList, kind, nArg] = process.argv.slice(2);
const tenants = tenantList!.split(',');
const killAt = Number(nArg ?? 0);
const counts = new Map<string, number>();
const hit = async (event: string): Promise<void> => {
  const n = (counts.get(event) ?? 0) + 1;
  counts.set(event, n);
  if (event === kind && n === killAt) {
    process.stdout.write(`kill-point ${event} ${n}\n`);
    await new Promise(() => undefined);
  }
};

const source = await PgOltpSource.open(url!);
const wh = await DuckDBAdapter.open({ path: path!, connections: 2 });
await wh.query('CREATE SCHEMA IF NOT EXISTS audit');
await wh.query('CREATE TABLE IF NOT EXISTS audit.queued (lsn VARCHAR, changes BIGINT)');
await wh.query('CREATE TABLE IF NOT EXISTS audit.applied (source_table VARCHAR, tenant VARCHAR, pos VARCHAR)');
export const auditQueued = async (s: Session, transactions: readonly string[]): Promise<void> => {
  await s.query(
    `INSERT INTO audit.queued SELECT u.lsn, (SELECT count(*) FROM tsform_meta.logical_queue q WHERE q.lsn = u.lsn) FROM unnest($1::VARCHAR[]) AS u(lsn)`,
    [transactions.map(lsnSortKey)],
  );
};

const lc = logicalCaptureOf(wh, source, project!, tenants);
const setup = await lc.setUp(tenants);
process.stdout.write('ready\n');
await lc.stream(setup.lsn, {
  untilNow: true,
  // a warehouse commit (and a confirmation) per source transaction: the most commits to land between
  batchChanges: 1,
  onTransaction: () => hit('received'),
  beforeCommit: async (s, transactions) => {
    await auditQueued(s, transactions);
    await hit('before-commit');
  },
  afterCommit: () => hit('after-commit'),
});
for (const spec of lc.specs) {
  for (const t of tenants) {
    await lc.apply(spec, t, {
      batchRows: 7,
      beforeCommit: async (s, applied) => {
        await s.query(`INSERT INTO audit.applied SELECT $1, $2, unnest($3::VARCHAR[])`, [spec.label, t, [...(applied.get(t) ?? [])]]);
        await hit('mid-apply');
      },
    });
  }
}
await wh.close();
await source.close();
process.stdout.write(`done ${JSON.stringify(Object.fromEntries(counts))}\n`);
