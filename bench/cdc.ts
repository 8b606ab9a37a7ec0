/**
 * Log-based capture: change events per second from a PostgreSQL OLTP's logical replication stream
 * through the per-practice queue into raw, on DuckDB and on PostgreSQL, then the lag from OLTP
 * commit to raw under a steady load.
 *
 * Throughput: at least BENCH_CDC_CHANGES (1,000,000) changes over BENCH_CDC_PRACTICES (1,000) practices
 * with Zipf (s = 1) sizes, in transactions of 5,000: 60 % inserts, 30 % updates, 10 % hard
 * deletes, made before the clock starts. Per warehouse (BENCH_CDC_TARGETS, default
 * `duckdb,postgres`; each has its own slot, created before the workload): `queue` = the stream
 * decoded, routed and committed to the queue with the slot confirmed; `apply` = every practice's
 * queue applied to raw as `tsform capture` and the follower do (groups of small practices per
 * transaction, apply-groups.ts), or with BENCH_CDC_APPLY=practice one practice per transaction,
 * as `tsform run`'s extract nodes do; `raw_equals_oltp`: count and sum compared.
 *
 * Lag (BENCH_CDC_LAG_SECONDS, 60; 0 skips it; BENCH_CDC_LAG_TARGET duckdb): a writer commits
 * BENCH_CDC_LAG_RATE (5,000) changes/s in transactions every 100 ms, each holding one marker row
 * stamped with the OLTP's clock_timestamp() just before its COMMIT, while the follower
 * (followCapture, what `tsform capture --follow` runs) streams and applies; a poller reads raw
 * every 50 ms and takes a marker's lag as the poll that first sees it minus its stamp (so the
 * figures include up to 50 ms of polling).
 *
 * Last line: {"changes", "practices", "duckdb": {...}, "postgres": {...}, "lag": {...}, ...}; per
 * target also this process's CPU seconds per phase and the 1-minute load average (the machine is shared).
 * BENCH_CDC_PROFILE=1 prints the warehouse time per statement to stderr.
 * Server: a throwaway cluster with wal_level=logical of the machine's PostgreSQL when installed;
 * the PostgreSQL warehouse is a second database on it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter } from '../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../src/adapters/postgres/pg-oltp-source.ts';
import { resolveSpec } from '../src/ingest/capture-spec.ts';
import { followCapture } from '../src/ingest/logical/follow.ts';
import { LogicalCapture } from '../src/ingest/logical/logical-capture.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { profileAdapter } from './lib/fleet-profile.ts';

const CHANGES = Number(process.env.BENCH_CDC_CHANGES ?? 1_000_000);
const PRACTICES = Number(process.env.BENCH_CDC_PRACTICES ?? 1_000);
const TARGETS = (process.env.BENCH_CDC_TARGETS ?? 'duckdb,postgres').split(',').filter(Boolean) as ('duckdb' | 'postgres')[];
const LAG_SECONDS = Number(process.env.BENCH_CDC_LAG_SECONDS ?? 60);
const LAG_RATE = Number(process.env.BENCH_CDC_LAG_RATE ?? 5_000);
const LAG_TARGET = (process.env.BENCH_CDC_LAG_TARGET ?? 'duckdb') as 'duckdb' | 'postgres';
const PER_TX = 5_000;
const log = (line: string) => process.stderr.write(`${line}\n`);

const server = await startThrowawayPostgres({ binaries: 'machine-first', logical: {} });
const dir = mkdtempSync(join(tmpdir(), 'tsform-bench-cdc-'));
const admin = await createPostgresAdapter({ url: server.url });
const source = await PgOltpSource.open(server.url);
const warehouses = new Map<string, { wh: Adapter; close(): Promise<void>; profile?: ReturnType<typeof profileAdapter>['profile'] }>();
const spec = resolveSpec({ table: 'events', key: ['event_id'], tenantColumn: 'practice_id' });
const tenants = Array.from({ length: PRACTICES }, (_, i) => `p${String(i).padStart(5, '0')}`);

async function openWarehouse(kind: 'duckdb' | 'postgres'): Promise<Adapter> {
  let inner: Adapter;
  // three connections: the follower's stream and apply, and the lag poller never waiting for either
  if (kind === 'duckdb') inner = await DuckDBAdapter.open({ path: join(dir, 'wh.duckdb'), connections: 3 });
  else inner = await createPostgresAdapter({ url: (await server.createDatabase()).url });
  const prof = profileAdapter(inner, (sql) => sql.replace(/__tsf_[a-z]+_[0-9a-f]{12}/g, '__tsf_x').replace(/\s+/g, ' ').slice(0, 90));
  const wh = process.env.BENCH_CDC_PROFILE ? prof.adapter : inner;
  warehouses.set(kind, { wh, close: () => inner.close(), ...(process.env.BENCH_CDC_PROFILE ? { profile: prof.profile } : {}) });
  return wh;
}

const captureOf = (wh: Adapter, kind: string) =>
  new LogicalCapture({ wh, oltp: source, metaSchema: 'tsform_meta', name: `tsform_bench_cdc_${kind}`, tables: [{ spec }], known: tenants });

/** Zipf practice of each row: the first practice whose cumulative weight reaches a per-row random number. */
const ZIPF_PRACTICE = `CROSS JOIN LATERAL (SELECT z.practice_id FROM public.zipf z WHERE z.cum >= x.r ORDER BY z.cum LIMIT 1) p`;

async function makeOltp(): Promise<void> {
  await admin.query('CREATE SCHEMA oltp');
  await admin.query('CREATE TABLE oltp.events (practice_id text NOT NULL, event_id bigint NOT NULL, kind text, amount numeric(12,2), note text, updated_at timestamptz NOT NULL, PRIMARY KEY (practice_id, event_id))');
  await admin.query('CREATE INDEX ON oltp.events (event_id)');
  await admin.query('CREATE TABLE public.zipf (i int PRIMARY KEY, practice_id text, cum float8)');
  await admin.query(
    `INSERT INTO public.zipf SELECT i, 'p' || lpad((i - 1)::text, 5, '0'), sum(1.0 / i) OVER (ORDER BY i) / (SELECT sum(1.0 / g) FROM generate_series(1, $1::int) g) FROM generate_series(1, $1::int) i`,
    [PRACTICES],
  );
  await admin.query('UPDATE public.zipf SET cum = 2 WHERE i = $1', [PRACTICES]);
  await admin.query('CREATE INDEX ON public.zipf (cum)');
}

let nextId = 1;
/**
 * One OLTP transaction: `ins` inserts over Zipf practices, `upd` updates and `del` hard deletes of
 * random existing rows (a few ids drawn were deleted already: slightly fewer change); with
 * `marker`, one more insert stamped just before COMMIT. Returns the rows changed and the marker's id.
 */
async function writeTransaction(ins: number, upd: number, del: number, marker: boolean): Promise<{ changes: number; marker?: number }> {
  const first = nextId;
  nextId += ins + (marker ? 1 : 0);
  return admin.transaction(async (s) => {
    let changes = 0;
    changes += (await s.query(
      `INSERT INTO oltp.events SELECT p.practice_id, $1::bigint + x.g, 'k' || (x.g % 7), (x.g % 1000) / 3.0, md5(x.g::text), clock_timestamp()
         FROM (SELECT g, random() AS r FROM generate_series(0, $2::int - 1) g) x ${ZIPF_PRACTICE}`,
      [first, ins],
    )).rowsChanged;
    const some = `event_id IN (SELECT 1 + floor(random() * ($1::bigint - 1))::bigint FROM generate_series(1, $2::int)) AND kind <> 'marker'`;
    changes += (await s.query(`UPDATE oltp.events SET amount = amount + 1, note = md5(note) WHERE ${some}`, [first, upd])).rowsChanged;
    changes += (await s.query(`DELETE FROM oltp.events WHERE ${some}`, [first, del])).rowsChanged;
    if (!marker) return { changes };
    const id = first + ins;
    // the last statement before COMMIT: its clock is the commit time to within the COMMIT itself
    await s.query(`INSERT INTO oltp.events SELECT p.practice_id, $1::bigint, 'marker', 0, 'lag', clock_timestamp() FROM (SELECT random() AS r) x ${ZIPF_PRACTICE}`, [id]);
    return { changes: changes + 1, marker: id };
  });
}

async function equalToOltp(wh: Adapter): Promise<{ raw_rows: number; raw_equals_oltp: boolean }> {
  const live = await admin.query('SELECT count(*) AS n, sum(amount)::text AS s FROM oltp.events');
  const raw = await wh.query('SELECT count(*) AS n, CAST(sum(amount) AS VARCHAR) AS s FROM raw.events');
  return { raw_rows: Number(raw.rows[0]!.n), raw_equals_oltp: Number(live.rows[0]!.n) === Number(raw.rows[0]!.n) && Number(live.rows[0]!.s) === Number(raw.rows[0]!.s) };
}

async function throughput(lc: LogicalCapture, from: string): Promise<Record<string, unknown>> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const streamed = await lc.stream(from, { untilNow: true });
  const t1 = performance.now();
  const c1 = process.cpuUsage();
  let applied = 0;
  if (process.env.BENCH_CDC_APPLY === 'practice') {
    for (const t of tenants) applied += (await lc.apply(spec, t)).changes;
  } else {
    const r = await lc.applyAll(spec);
    if (r.failed.length > 0) throw new Error(`${r.failed.length} practice(s) failed: ${String(r.failed[0]!.error)}`);
    applied = r.applied.reduce((a, p) => a + p.changes, 0);
  }
  const t2 = performance.now();
  const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => round((b.user + b.system - a.user - a.system) / 1e6);
  const c2 = process.cpuUsage();
  return {
    changes: streamed.changes,
    applied,
    queue_seconds: round((t1 - t0) / 1000),
    apply_seconds: round((t2 - t1) / 1000),
    queue_changes_per_s: Math.round(streamed.changes / ((t1 - t0) / 1000)),
    apply_changes_per_s: Math.round(applied / ((t2 - t1) / 1000)),
    end_to_end_changes_per_s: Math.round(streamed.changes / ((t2 - t0) / 1000)),
    // CPU of this process (JavaScript and DuckDB's threads; not the PostgreSQL servers'): steadier than wall time on a shared machine
    queue_cpu_seconds: cpu(c0, c1),
    apply_cpu_seconds: cpu(c1, c2),
    load_average_1m: round(loadavg()[0]!),
    apply_mode: process.env.BENCH_CDC_APPLY === 'practice' ? 'one practice per transaction' : 'groups of practices per transaction',
    ...(await equalToOltp(lc.o.wh)),
  };
}

/** The follower running in this process while a writer commits LAG_RATE changes/s; marker lags read from raw. */
async function lag(lc: LogicalCapture): Promise<Record<string, unknown>> {
  const stop = new AbortController();
  const follower = followCapture(lc, { tenants, signal: stop.signal });
  // the follower's set-up and first pass
  await new Promise((r) => setTimeout(r, 2_000));
  const expected = new Set<number>();
  const seen = new Set<number>();
  const lags: number[] = [];
  let writing = true;
  let drainDeadline = Infinity;
  const epochMs = lc.o.wh.kind === 'duckdb' ? 'epoch_ms(updated_at)' : 'CAST(extract(epoch FROM updated_at) * 1000 AS BIGINT)';
  const poller = (async () => {
    while ((writing || seen.size < expected.size) && performance.now() < drainDeadline) {
      const { rows } = await lc.o.wh.query(`SELECT event_id, ${epochMs} AS ms FROM raw.events WHERE kind = 'marker'`);
      const now = Date.now();
      for (const r of rows) {
        const id = Number(r.event_id);
        if (seen.has(id)) continue;
        seen.add(id);
        lags.push(now - Number(r.ms));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const perTx = Math.max(1, Math.round(LAG_RATE / 10));
  const started = performance.now();
  let made = 0;
  for (let tick = 0; performance.now() - started < LAG_SECONDS * 1000; tick++) {
    const ins = Math.round(perTx * 0.6) - 1;
    const upd = Math.round(perTx * 0.3);
    const w = await writeTransaction(ins, upd, perTx - ins - upd - 1, true);
    expected.add(w.marker!);
    made += w.changes;
    const wait = started + (tick + 1) * 100 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const wrote = (performance.now() - started) / 1000;
  drainDeadline = performance.now() + 60_000;
  writing = false;
  await poller;
  stop.abort();
  await follower;
  lags.sort((a, b) => a - b);
  const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] ?? null;
  return {
    target: lc.o.wh.kind,
    seconds: round(wrote),
    changes_per_s_written: Math.round(made / wrote),
    markers: expected.size,
    markers_seen: seen.size,
    p50_ms: q(0.5),
    p95_ms: q(0.95),
    max_ms: lags.at(-1) ?? null,
    ...(await equalToOltp(lc.o.wh)),
  };
}

const round = (x: number) => Number(x.toFixed(2));

try {
  await makeOltp();
  const captures = new Map<string, { lc: LogicalCapture; lsn: string }>();
  for (const kind of TARGETS) {
    const lc = captureOf(await openWarehouse(kind), kind);
    captures.set(kind, { lc, lsn: (await lc.setUp(tenants)).lsn });
  }
  const g0 = performance.now();
  let made = 0;
  while (made < CHANGES) {
    const n = Math.min(PER_TX, CHANGES - made);
    const ins = Math.max(1, Math.round(n * 0.6));
    const upd = Math.round(n * 0.3);
    made += (await writeTransaction(ins, upd, Math.max(0, n - ins - upd), false)).changes;
  }
  log(`workload: ${made} changes written in ${round((performance.now() - g0) / 1000)} s`);
  const result: Record<string, unknown> = { changes: made, practices: PRACTICES };
  for (const [kind, { lc, lsn }] of captures) {
    result[kind] = await throughput(lc, lsn);
    log(`${kind}: ${JSON.stringify(result[kind])}`);
  }
  const lagCapture = captures.get(LAG_TARGET);
  if (LAG_SECONDS > 0 && lagCapture) {
    result.lag = await lag(lagCapture.lc);
    log(`lag: ${JSON.stringify(result.lag)}`);
  }
  for (const [kind, w] of warehouses) {
    if (!w.profile) continue;
    for (const [k, v] of Object.entries(w.profile.seconds).sort((a, b) => b[1] - a[1]).slice(0, 20)) log(`${kind}\t${v.toFixed(2)}s\t${w.profile.counts[k]}\t${k}`);
  }
  console.log(JSON.stringify({ ...result, oltp_server: server.server, node: process.version }));
} finally {
  for (const w of warehouses.values()) await w.close();
  await source.close();
  await admin.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

