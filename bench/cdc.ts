/**
 * Log-based capture throughput: change events per second from a PostgreSQL OLTP's logical
 * replication stream through the per-practice queue into DuckDB raw.
 * Workload: BENCH_CDC_CHANGES (200,000) changes over BENCH_CDC_PRACTICES (1,000) practices with
 * Zipf (s = 1) sizes, in transactions of 5,000 changes: 60 % inserts, 30 % updates, 10 % hard
 * deletes. Measured separately: `queue` (stream decoded, routed and committed to the queue,
 * slot confirmed) and `apply` (every practice's queue applied to raw), and `end_to_end`.
 * Last line: {"changes", "practices", "queue_changes_per_s", "apply_changes_per_s", "end_to_end_changes_per_s", "raw_equals_oltp", ...}
 * Server: a throwaway cluster with wal_level=logical of the machine's PostgreSQL when installed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../src/adapters/postgres/pg-oltp-source.ts';
import { resolveSpec } from '../src/ingest/capture-spec.ts';
import { LogicalCapture } from '../src/ingest/logical/logical-capture.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';

const CHANGES = Number(process.env.BENCH_CDC_CHANGES ?? 200_000);
const PRACTICES = Number(process.env.BENCH_CDC_PRACTICES ?? 1_000);
const PER_TX = 5_000;

const server = await startThrowawayPostgres({ binaries: 'machine-first', logical: {} });
const dir = mkdtempSync(join(tmpdir(), 'tsform-bench-cdc-'));
const admin = await createPostgresAdapter({ url: server.url });
const source = await PgOltpSource.open(server.url);
const wh = await DuckDBAdapter.open({ path: join(dir, 'wh.duckdb'), connections: 2 });
try {
  const tenants = Array.from({ length: PRACTICES }, (_, i) => `p${String(i).padStart(5, '0')}`);
  // Zipf weights as a cumulative table in the OLTP: practice of a change = first with cum >= random
  await admin.query('CREATE SCHEMA oltp');
  await admin.query('CREATE TABLE oltp.events (practice_id text NOT NULL, event_id bigint NOT NULL, kind text, amount numeric(12,2), note text, updated_at timestamptz NOT NULL, PRIMARY KEY (practice_id, event_id))');
  await admin.query('CREATE TABLE public.zipf (i int PRIMARY KEY, practice_id text, cum float8)');
  await admin.query(
    `INSERT INTO public.zipf SELECT i, 'p' || lpad((i - 1)::text, 5, '0'), sum(1.0 / i) OVER (ORDER BY i) / (SELECT sum(1.0 / g) FROM generate_series(1, $1::int) g) FROM generate_series(1, $1::int) i`,
    [PRACTICES],
  );
  await admin.query('CREATE INDEX ON public.zipf (cum)');
  const lc = new LogicalCapture({ wh, oltp: source, metaSchema: 'tsform_meta', name: 'tsform_bench_cdc', tables: [{ spec: resolveSpec({ table: 'events', key: ['event_id'], tenantColumn: 'practice_id' }) }], known: tenants });
  const setup = await lc.setUp(tenants);

  let made = 0;
  let nextId = 1;
  while (made < CHANGES) {
    const n = Math.min(PER_TX, CHANGES - made);
    const ins = Math.round(n * 0.6);
    const upd = Math.round(n * 0.3);
    const del = n - ins - upd;
    await admin.transaction(async (s) => {
      await s.query(
        `INSERT INTO oltp.events SELECT (SELECT z.practice_id FROM public.zipf z WHERE z.cum >= random() ORDER BY z.cum LIMIT 1), $1::bigint + g, 'k' || (g % 7), (g % 1000) / 3.0, md5(g::text), clock_timestamp() FROM generate_series(0, $2::int - 1) g`,
        [nextId, ins],
      );
      nextId += ins;
      await s.query(`UPDATE oltp.events SET amount = amount + 1, note = md5(note) WHERE ctid = ANY(ARRAY(SELECT ctid FROM oltp.events TABLESAMPLE SYSTEM (20) LIMIT $1))`, [upd]);
      await s.query(`DELETE FROM oltp.events WHERE ctid = ANY(ARRAY(SELECT ctid FROM oltp.events TABLESAMPLE SYSTEM (20) LIMIT $1))`, [del]);
    });
    made += n;
  }
  const t0 = performance.now();
  const streamed = await lc.stream(setup.lsn, { untilNow: true });
  const t1 = performance.now();
  const spec = lc.specs[0]!;
  let applied = 0;
  for (const t of tenants) applied += (await lc.apply(spec, t)).changes;
  const t2 = performance.now();
  const live = await admin.query('SELECT count(*) AS n, sum(amount)::text AS s FROM oltp.events');
  const raw = await wh.query('SELECT count(*) AS n, CAST(sum(amount) AS VARCHAR) AS s FROM raw.events');
  const equal = Number(live.rows[0]!.n) === Number(raw.rows[0]!.n) && Number(live.rows[0]!.s) === Number(raw.rows[0]!.s);
  const result = {
    changes: streamed.changes,
    transactions: streamed.transactions,
    practices: PRACTICES,
    queue_seconds: Number(((t1 - t0) / 1000).toFixed(2)),
    apply_seconds: Number(((t2 - t1) / 1000).toFixed(2)),
    queue_changes_per_s: Math.round(streamed.changes / ((t1 - t0) / 1000)),
    apply_changes_per_s: Math.round(applied / ((t2 - t1) / 1000)),
    end_to_end_changes_per_s: Math.round(streamed.changes / ((t2 - t0) / 1000)),
    raw_rows: Number(raw.rows[0]!.n),
    raw_equals_oltp: equal,
    oltp_server: server.server,
    node: process.version,
  };
  console.log(JSON.stringify(result));
} finally {
  await wh.close();
  await source.close();
  await admin.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
