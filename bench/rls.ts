/**
 * `npm run bench:rls`: what our row-level security policy (src/security/templates.ts) costs the
 * practice dashboards on PostgreSQL 15.
 *
 *  1. A throwaway server (or a fresh database on TSFORM_TEST_PG_URL). Inside it, with
 *     generate_series: staging.stg_encounters, ≥ 5,000,000 rows over 1,000 practices with a
 *     Zipf-like skew (largest 402,777, median ~2,800), and tsform_meta.tenants with US time
 *     zones; index on (practice_id, started_at).
 *  2. Our policy, exactly as tsform applies it: applyPolicyFoundation (roles, membership table,
 *     grants) and renderer.protect(rel), in one adapter transaction. Tables and schemas belong
 *     to tsform_owner, a non-superuser (a superuser would bypass RLS).
 *  3. Three queries (daily activity, provider panel, an ad hoc analyst query) for the median
 *     practice and the largest: (i) as the practice's login role with NO practice filter in the
 *     SQL, RLS doing the work, versus (ii) as the owner with an explicit `practice_id = $1`.
 *     Warm-up, then interleaved runs; medians; results must be identical.
 *  4. EXPLAIN ANALYZE of every pair, summarised on stderr.
 * Progress goes to stderr; the last stdout line is one JSON object:
 *   ratio = median(RLS) / median(owner with filter), per query and practice size.
 * Never asserts timings; asserts correctness (isolation, identical results).
 *
 * With RLS_BENCH_EXPERIMENTS=array_policy the same measurement is repeated with the policy form
 * our template uses for multi-practice group roles only (`= ANY (ARRAY(…))`, ~50 µs more per
 * query), applied to one-practice roles, and reported under "experiments"; the top-level figures
 * are always those of our template.
 *
 * With RLS_BENCH_EXPERIMENTS=tenant_statistics_none the same measurement is repeated after
 * `policies apply` with `planner_statistics: { tenant_column: none }` (the tenant column's
 * statistics removed, its target 0, then VACUUM ANALYZE), in the same process and on the same
 * data; reported under "experiments" with the medians in ms, and the template's statistics are
 * restored afterwards.
 *
 * With RLS_BENCH_EXPERIMENTS=partitioned the table is then rebuilt as `partition_by_practice`
 * lays it out (LIST for the 8 largest practices, HASH 16 for the rest) and measured again;
 * reported under "experiments" with ratios, medians, and each RLS median over the unpartitioned one.
 *
 * Env: TSFORM_TEST_PG_URL (use that server); RLS_BENCH_QUICK=1 (a 10× smaller data set, for
 * trying the bench out; its figures are not the reported ones); RLS_BENCH_EXPERIMENTS=none,
 * =array_policy, =tenant_statistics_none, =partitioned, =all (both of those, also the mart-style join
 * queries, no parallel workers, and without the template's (practice_id) index; ~4 more
 * minutes); RLS_BENCH_PLANS=1 (print every plan, not only when a ratio is above target).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createPostgresAdapter, type PostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { applyPolicies, applyPolicyFoundation, type PolicyContext } from '../src/execute/apply-policies.ts';
import type { PolicyConfig, Schemas } from '../src/project/types.ts';
import type { ProtectedRelation } from '../src/security/protected-relations.ts';
import { createPartitionedTable } from '../src/adapters/postgres/practice-partitions.ts';
import { createPolicyRenderer, MEMBERS_TABLE, practiceRole } from '../src/security/render-rls.ts';
import { quoteIdent, quoteRelation } from '../src/sql/quote.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { benchTenants, createCompositeIndex, createTables, DEFAULT_SHAPE, generateData, META_SCHEMA, practiceId, SCHEMA, TABLE, TENANTS_TABLE, type DataShape } from './lib/rls-data.ts';
import { BenchAssertion, check, explain, measurePair, median, round, type PairResult, type PlanSummary } from './lib/rls-measure.ts';
import { benchQueries, type BenchQuery } from './lib/rls-queries.ts';

const T0 = performance.now();
const log = (msg: string) => process.stderr.write(`[bench:rls ${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);

const QUICK = process.env.RLS_BENCH_QUICK === '1';
const SHAPE: DataShape = QUICK ? { tenants: 1000, floorRows: 200, zipfRows: 300_000 } : DEFAULT_SHAPE;
const TARGET_RATIO = 1.1;
const EXPERIMENT_CHOICES = ['none', 'array_policy', 'tenant_statistics_none', 'partitioned', 'all'];
const EXPERIMENTS = process.env.RLS_BENCH_EXPERIMENTS;
const PAIR = { budgetMs: QUICK ? 1500 : 5000, minReps: 31, maxReps: 601, warmups: 5, warmupBudgetMs: 1500 };

/** tsform.yml's schemas. */
const SCHEMAS: Schemas = { raw: 'raw', seeds: 'ref', staging: 'staging', marts: 'marts', research: 'research', vault: 'vault', meta: 'tsform_meta' };
const TENANT_COLUMN = 'practice_id';

/**
 * policies/policies.yml, as readPolicies would load it, except that practice roles may also read
 * `staging` (the benchmarked table lives there; the template grants SELECT on a protected table
 * only in a practice-readable schema).
 */
const POLICIES: PolicyConfig = {
  file: 'policies/policies.yml',
  roles: { owner: 'tsform_owner', practices: 'tsform_practices', practiceGroups: 'tsform_practice_groups', researchReader: 'research_reader', vaultSteward: 'vault_steward' },
  practiceRolePattern: 'practice_{tenant}',
  groups: [{ role: 'northshore_group', practices: ['p_79a06fd69f', 'p_86880e5887'] }],
  securitySchema: 'tsform_security',
  protectSchemas: ['raw', 'staging', 'marts'],
  protectRelations: [],
  practiceSchemas: ['marts', SCHEMA],
  researchSchemas: ['research'],
  templates: {},
};

const PROTECTED: ProtectedRelation = { node: `model.stg_encounters`, schema: SCHEMA, identifier: TABLE, kind: 'table' };

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, options: '-c TimeZone=UTC', application_name: 'bench:rls' });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function ensureOwnerRole(c: pg.Client, owner: string): Promise<void> {
  const { rows } = await c.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1', [owner]);
  if (rows.length === 0) await c.query(`CREATE ROLE ${quoteIdent(owner)} NOLOGIN NOSUPERUSER NOBYPASSRLS`);
  else check(rows[0].rolsuper === false && rows[0].rolbypassrls === false, `role ${owner} exists and is a superuser or has BYPASSRLS: it would not be filtered`);
}

/** `SET SESSION AUTHORIZATION` on a superuser connection, then proof that RLS applies to it. */
async function impersonate(c: pg.Client, role: string): Promise<void> {
  await c.query(`SET SESSION AUTHORIZATION ${quoteIdent(role)}`);
  const { rows } = await c.query(
    `SELECT current_user AS cu, r.rolsuper, r.rolbypassrls, current_setting('row_security') AS row_security
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const r = rows[0];
  check(r?.cu === role && r.rolsuper === false && r.rolbypassrls === false && r.row_security === 'on', `impersonating ${role}: ${JSON.stringify(r)}`);
}

async function protectTable(url: string, ctx: PolicyContext): Promise<void> {
  let adapter: PostgresAdapter | undefined;
  try {
    adapter = await createPostgresAdapter({ url, poolSize: 1, applicationName: 'bench:rls' });
    await adapter.transaction(async (s) => {
      await s.query('SET LOCAL maintenance_work_mem = \'256MB\'');
      // roles, then renderer.bootstrap() (membership table and its policy), schema grants, members
      await applyPolicyFoundation(s, ctx);
      await s.runScript(ctx.renderer.protect(PROTECTED));
      // Bench only: the dashboard query reads the time zone from the tenants relation, which
      // tsform does not grant to practices (it is not in a practice-readable schema).
      await s.query(`GRANT USAGE ON SCHEMA ${quoteIdent(META_SCHEMA)} TO ${quoteIdent(ctx.policies.roles.practices)}`);
      await s.query(`GRANT SELECT ON ${quoteRelation(META_SCHEMA, TENANTS_TABLE)} TO ${quoteIdent(ctx.policies.roles.practices)}`);
    });
  } finally {
    await adapter?.close();
  }
}

interface Size {
  size: 'small' | 'large';
  id: string;
  rows: number;
}

interface Sessions {
  rls: pg.Client;
  owner: pg.Client;
}

interface Outcome {
  query: string;
  size: 'small' | 'large';
  pair: PairResult;
  rlsMedian: number;
  ownerMedian: number;
  ratio: number;
  /** Median of the per-repetition ratios (each RLS run over the owner run next to it): less sensitive to load drifting during a pair. */
  pairedRatio: number;
  plans: { rls: PlanSummary; owner: PlanSummary };
  planText: string;
}

/** 1-minute load average after each measured pair: the machine is shared. */
const loads: number[] = [];

/** Every query for both practices: interleaved timings, then EXPLAIN ANALYZE of both variants. */
async function measureAll(sessions: Sessions, sizes: readonly Size[], queries: readonly BenchQuery[], label: string): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const { size, id } of sizes) {
    const role = practiceRole(POLICIES, id);
    await impersonate(sessions.rls, role);
    for (const q of queries) {
      const what = `${label} ${q.name}/${size}`;
      const rls = { label: `RLS as ${role}`, client: sessions.rls, sql: q.sql(false), params: [] };
      const own = { label: 'owner + practice_id = $1', client: sessions.owner, sql: q.sql(true), params: [id] };
      const pair = await measurePair(what, rls, own, PAIR);
      const rlsMedian = median(pair.a);
      const ownerMedian = median(pair.b);
      const ratio = rlsMedian / ownerMedian;
      const pr = await explain(sessions.rls, rls.sql, rls.params, TABLE);
      const po = await explain(sessions.owner, own.sql, own.params, TABLE);
      const paired = median(pair.a.map((a, i) => a / pair.b[i]!));
      loads.push(loadavg()[0]!);
      log(
        `${what.padEnd(40)} ${String(pair.reps).padStart(3)} reps × 2, ${pair.resultRows} result rows: RLS ${rlsMedian.toFixed(3)} ms, owner ${ownerMedian.toFixed(3)} ms, ` +
          `ratio ${ratio.toFixed(3)} (median of paired ratios ${paired.toFixed(3)}; load ${loadavg()[0]!.toFixed(1)})${ratio > TARGET_RATIO ? `  ABOVE ${TARGET_RATIO}` : ''}`,
      );
      for (const [who, p] of [
        ['RLS  ', pr.summary],
        ['owner', po.summary],
      ] as const) {
        log(`    ${who} plan ${p.planning_ms} ms + exec ${p.execution_ms} ms, ${p.shared_blocks} buffers`);
        for (const s of p.scans) log(`      scan: ${s}`);
        for (const s of p.subplans) log(`      ${s}`);
      }
      outcomes.push({
        query: q.name,
        size,
        pair,
        rlsMedian,
        ownerMedian,
        ratio,
        pairedRatio: paired,
        plans: { rls: pr.summary, owner: po.summary },
        planText: `==== ${what}: RLS ====\n${pr.text}\n==== ${what}: owner + filter ====\n${po.text}`,
      });
    }
  }
  return outcomes;
}

function ratios(outcomes: readonly Outcome[]): Record<string, number> {
  return Object.fromEntries(outcomes.map((o) => [`${o.query}_${o.size}_ratio`, round(o.ratio, 3)]));
}

async function inTransaction(c: pg.Client, sql: string): Promise<void> {
  await c.query('BEGIN');
  try {
    await c.query(sql);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * EXPERIMENT, not our template for one-practice roles: the array form the template gives group
 * roles (`= ANY (ARRAY(…))`), applied to the practices group instead of the scalar sub-select.
 */
function arrayPolicySql(): string {
  const t = quoteRelation(SCHEMA, TABLE);
  const col = quoteIdent(TENANT_COLUMN);
  const pred = `${col} = ANY (ARRAY(SELECT m.${col} FROM ${quoteRelation(POLICIES.securitySchema, MEMBERS_TABLE)} m WHERE m.role_name = current_user))`;
  return `DROP POLICY IF EXISTS tsform_practice_isolation ON ${t};
CREATE POLICY tsform_practice_isolation ON ${t} AS PERMISSIVE FOR ALL TO ${quoteIdent(POLICIES.roles.practices)} USING (${pred}) WITH CHECK (${pred});`;
}

/** The index protect_table creates (render-rls.ts names it `<table>__<column>_idx`). */
function templateIndexName(): string {
  return `${TABLE}__${TENANT_COLUMN}_idx`;
}

async function main(): Promise<void> {
  let server: ThrowawayPostgres | undefined;
  const clients: pg.Client[] = [];
  const onSignal = () => {
    log('interrupted: stopping the server');
    void Promise.allSettled(clients.map((c) => c.end()))
      .then(() => server?.stop())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    check(EXPERIMENTS === undefined || EXPERIMENT_CHOICES.includes(EXPERIMENTS), `RLS_BENCH_EXPERIMENTS must be one of ${EXPERIMENT_CHOICES.join(', ')}`);
    log(process.env.TSFORM_TEST_PG_URL ? 'creating a throwaway database on TSFORM_TEST_PG_URL …' : 'starting a throwaway PostgreSQL …');
    server = await startThrowawayPostgres();
    const admin = await connect(server.url);
    clients.push(admin);
    const version = String((await admin.query('SHOW server_version')).rows[0].server_version);
    const jit = (await admin.query('SELECT pg_jit_available() AS a')).rows[0].a === true;
    log(`PostgreSQL ${version} (JIT available: ${jit})`);

    // ---- 1. data ------------------------------------------------------------------------------
    const owner = POLICIES.roles.owner;
    const tenants = benchTenants(SHAPE);
    await ensureOwnerRole(admin, owner);
    await createTables(admin, owner);
    log(`generating ${QUICK ? 'the QUICK (10× smaller) ' : ''}data set in PostgreSQL: ${tenants.length} practices …`);
    const tGen = performance.now();
    await admin.query("SET maintenance_work_mem = '256MB'");
    const gen = await generateData(admin, SHAPE, tenants);
    log(`  ${gen.rows.toLocaleString('en-US')} rows in ${((performance.now() - tGen) / 1000).toFixed(1)} s`);
    await createCompositeIndex(admin);
    log(`  index (practice_id, started_at) after ${((performance.now() - tGen) / 1000).toFixed(1)} s`);

    // ---- 2. our policy --------------------------------------------------------------------------
    const ctx: PolicyContext = {
      policies: POLICIES,
      renderer: createPolicyRenderer(POLICIES, TENANT_COLUMN, SCHEMAS),
      tenants,
      tenantColumn: TENANT_COLUMN,
      relations: new Map([[PROTECTED.node, PROTECTED]]),
    };
    await protectTable(server.url, ctx);
    log(`  policy applied (roles, membership, template index) after ${((performance.now() - tGen) / 1000).toFixed(1)} s`);
    for (const rel of [quoteRelation(SCHEMA, TABLE), quoteRelation(META_SCHEMA, TENANTS_TABLE), quoteRelation(POLICIES.securitySchema, MEMBERS_TABLE)]) {
      await admin.query(`VACUUM (ANALYZE) ${rel}`);
    }
    const generationS = (performance.now() - tGen) / 1000;
    log(`  vacuum + analyze done: data set ready in ${generationS.toFixed(1)} s`);

    const sorted = [...gen.sizes.entries()].sort((x, y) => x[1] - y[1]);
    const [smallId, smallRows] = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const [largeId, largeRows] = sorted.at(-1)!;
    check(largeId === practiceId(1), `largest practice is ${largeId}, expected ${practiceId(1)}`);
    if (!QUICK) {
      check(gen.rows >= 5_000_000, `only ${gen.rows} rows generated`);
      check(tenants.length >= 1000, `only ${tenants.length} practices`);
    }
    log(`small (median) practice ${smallId}: ${smallRows} rows; large ${largeId}: ${largeRows} rows`);

    // ---- sanity: the policy isolates, the owner sees all -------------------------------------------
    const rlsClient = await connect(server.url);
    clients.push(rlsClient);
    const ownerClient = await connect(server.url);
    clients.push(ownerClient);
    await impersonate(ownerClient, owner);
    const enc = quoteRelation(SCHEMA, TABLE);
    const flags = await admin.query('SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = $1::regclass', [enc]);
    check(flags.rows[0].relrowsecurity && flags.rows[0].relforcerowsecurity && flags.rows[0].owner === owner, `table flags: ${JSON.stringify(flags.rows[0])}`);
    const all = Number((await ownerClient.query(`SELECT count(*) AS n FROM ${enc}`)).rows[0].n);
    check(all === gen.rows, `owner sees ${all} rows, expected all ${gen.rows}`);
    for (const [id, n] of [
      [smallId, smallRows],
      [largeId, largeRows],
    ] as const) {
      await impersonate(rlsClient, practiceRole(POLICIES, id));
      const seen = await rlsClient.query(`SELECT count(*) AS n, count(DISTINCT practice_id) AS p, min(practice_id) AS id FROM ${enc}`);
      check(Number(seen.rows[0].n) === n && Number(seen.rows[0].p) === 1 && seen.rows[0].id === id, `${id} sees ${JSON.stringify(seen.rows[0])}, expected ${n} rows of its own`);
      await rlsClient.query("SET app.practice_id = 'p_0001'"); // spoofing a GUC changes nothing
      const again = Number((await rlsClient.query(`SELECT count(*) AS n FROM ${enc}`)).rows[0].n);
      check(again === n, `${id} sees ${again} rows after SET app.practice_id`);
      await rlsClient.query('RESET app.practice_id');
    }
    log('isolation checked: each practice role sees exactly its own rows; the owner sees all');

    // ---- 3. measurements (our template) ---------------------------------------------------------
    const sizes: Size[] = [
      { size: 'small', id: smallId, rows: smallRows },
      { size: 'large', id: largeId, rows: largeRows },
    ];
    const sessions: Sessions = { rls: rlsClient, owner: ownerClient };
    log('measuring our template (queries with the sub-select anchor) …');
    const outcomes = await measureAll(sessions, sizes, benchQueries('subselect'), 'template');
    const above = outcomes.filter((o) => o.ratio > TARGET_RATIO);
    if (above.length > 0 || process.env.RLS_BENCH_PLANS === '1') {
      log(`plans of the reported runs (EXPLAIN ANALYZE, BUFFERS):\n${outcomes.map((o) => o.planText).join('\n')}`);
    }

    // ---- experiments: what the excess comes from; never the reported figures ----------------------
    const experiments: Record<string, Record<string, number>> = {};
    const which = EXPERIMENTS ?? 'none';
    const arrayPolicy = async (label: string) => {
      log(`EXPERIMENT ${label}: policy \`practice_id = ANY (ARRAY(SELECT m.practice_id … WHERE m.role_name = current_user))\` for one-practice roles …`);
      await inTransaction(admin, arrayPolicySql());
      try {
        experiments[label] = ratios(await measureAll(sessions, sizes, benchQueries('subselect'), label));
      } finally {
        await inTransaction(admin, ctx.renderer.protect(PROTECTED)); // back to our template
      }
    };
    const tenantStatisticsNone = async (label: string) => {
      log(`EXPERIMENT ${label}: policies apply with planner_statistics: { tenant_column: none }, then VACUUM ANALYZE …`);
      const policies: PolicyConfig = { ...POLICIES, plannerStatistics: { tenantColumn: 'none' } };
      const ctxNone: PolicyContext = { ...ctx, policies, renderer: createPolicyRenderer(policies, TENANT_COLUMN, SCHEMAS) };
      const tApply = performance.now();
      let adapter: PostgresAdapter | undefined;
      try {
        adapter = await createPostgresAdapter({ url: server!.url, poolSize: 1, applicationName: 'bench:rls' });
        const applied = await applyPolicies(adapter, ctxNone);
        check(applied.tenantStatistics?.cleared.length === 1, `${label}: statistics not cleared: ${JSON.stringify(applied.tenantStatistics)}`);
      } finally {
        await adapter?.close();
      }
      const applyMs = performance.now() - tApply;
      await admin.query(`VACUUM (ANALYZE) ${quoteRelation(SCHEMA, TABLE)}`);
      const left = await admin.query(
        `SELECT count(*)::int AS n FROM pg_statistic s JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum WHERE s.starelid = $1::regclass AND a.attname = $2`,
        [quoteRelation(SCHEMA, TABLE), TENANT_COLUMN],
      );
      check(left.rows[0].n === 0, `${label}: ${TENANT_COLUMN} still has statistics after ANALYZE`);
      log(`  applied in ${applyMs.toFixed(0)} ms (statistics removed, target 0); ANALYZE kept none for ${TENANT_COLUMN}`);
      try {
        const measured = await measureAll(sessions, sizes, benchQueries('subselect'), label);
        experiments[label] = {
          ...ratios(measured),
          ...Object.fromEntries(measured.flatMap((o) => [[`${o.query}_${o.size}_rls_ms`, round(o.rlsMedian)], [`${o.query}_${o.size}_owner_ms`, round(o.ownerMedian)]])),
          apply_ms: round(applyMs, 0),
        };
      } finally {
        // back to our template's statistics for whatever is measured next
        await admin.query(`ALTER TABLE ${quoteRelation(SCHEMA, TABLE)} ALTER COLUMN ${quoteIdent(TENANT_COLUMN)} SET STATISTICS -1`);
        await admin.query(`ANALYZE ${quoteRelation(SCHEMA, TABLE)}`);
      }
    };
    // Last in `all`: it replaces the table for good. The same rows move into the layout
    // `partition_by_practice` creates (practice-partitions.ts): LIST for the 8 largest practices,
    // a DEFAULT partition HASH-subpartitioned 16 ways; then the template policy and indexes.
    const partitioned = async (label: string) => {
      log(`EXPERIMENT ${label}: the same rows partitioned by practice (LIST 8 largest + HASH 16), our template policy …`);
      const flat = quoteRelation(SCHEMA, `${TABLE}_flat`);
      const enc = quoteRelation(SCHEMA, TABLE);
      await admin.query(`ALTER TABLE ${enc} RENAME TO ${quoteIdent(`${TABLE}_flat`)}`);
      await admin.query(`CREATE TEMPORARY TABLE bench_like AS SELECT * FROM ${flat} LIMIT 0`);
      const layout = { list: Array.from({ length: 8 }, (_, i) => practiceId(i + 1)), hashPartitions: 16 };
      await createPartitionedTable(async (sql, params) => ({ rows: (await admin.query(sql, [...params])).rows, columns: [], rowsChanged: 0 }), layout, SCHEMA, TABLE, 'bench_like', TENANT_COLUMN);
      const tMove = performance.now();
      await admin.query(`INSERT INTO ${enc} SELECT * FROM ${flat}`);
      await admin.query(`DROP TABLE ${flat}`);
      const tree = await admin.query(`SELECT relid::regclass::text AS rel FROM pg_partition_tree($1::regclass)`, [enc]);
      for (const r of tree.rows) await admin.query(`ALTER TABLE ${String(r.rel)} OWNER TO ${quoteIdent(owner)}`);
      await createCompositeIndex(admin);
      await inTransaction(admin, ctx.renderer.protect(PROTECTED));
      await admin.query(`VACUUM (ANALYZE) ${enc}`);
      log(`  ${tree.rows.length} relations; rows moved, indexed and analyzed in ${((performance.now() - tMove) / 1000).toFixed(1)} s`);
      const moved = Number((await ownerClient.query(`SELECT count(*) AS n FROM ${enc}`)).rows[0].n);
      check(moved === gen.rows, `${label}: owner sees ${moved} rows, expected ${gen.rows}`);
      const measured = await measureAll(sessions, sizes, benchQueries('subselect'), label);
      experiments[label] = {
        ...ratios(measured),
        ...Object.fromEntries(measured.flatMap((o) => [[`${o.query}_${o.size}_rls_ms`, round(o.rlsMedian)], [`${o.query}_${o.size}_owner_ms`, round(o.ownerMedian)]])),
        // against the same query on the unpartitioned table, measured earlier in this run
        ...Object.fromEntries(measured.map((o) => [`${o.query}_${o.size}_rls_vs_unpartitioned`, round(o.rlsMedian / outcomes.find((u) => u.query === o.query && u.size === o.size)!.rlsMedian, 3)])),
      };
    };
    if (which === 'array_policy') await arrayPolicy('array_policy');
    if (which === 'partitioned') await partitioned('partitioned');
    if (which === 'tenant_statistics_none') await tenantStatisticsNone('tenant_statistics_none');
    if (which === 'all') {
      log('EXPERIMENT join_shape: our template, the dashboards with the mart-style `latest` CTE join …');
      experiments.join_shape = ratios(await measureAll(sessions, sizes, benchQueries('join'), 'join_shape'));

      log('EXPERIMENT no_parallel: our template, max_parallel_workers_per_gather = 0 in both sessions …');
      for (const c of [rlsClient, ownerClient]) await c.query('SET max_parallel_workers_per_gather = 0');
      experiments.no_parallel = ratios(await measureAll(sessions, sizes, benchQueries('subselect'), 'no_parallel'));
      for (const c of [rlsClient, ownerClient]) await c.query('RESET max_parallel_workers_per_gather');

      await arrayPolicy('array_policy');
      await tenantStatisticsNone('tenant_statistics_none');

      // Last, since it drops the template's (practice_id) index for good: with it, the planner
      // reads the whole practice slice through it and filters started_at.
      log('EXPERIMENT composite_only: our template policy, without the template index on (practice_id) …');
      await admin.query(`DROP INDEX ${quoteRelation(SCHEMA, templateIndexName())}`);
      experiments.composite_only = ratios(await measureAll(sessions, sizes, benchQueries('subselect'), 'composite_only'));
      await arrayPolicy('composite_only_array_policy');
      await partitioned('partitioned');
    }

    // ---- 4. result ---------------------------------------------------------------------------------
    const r = ratios(outcomes);
    const medianMs: Record<string, Record<string, number>> = {};
    for (const o of outcomes) {
      medianMs[`${o.query}_${o.size}`] = { rls: round(o.rlsMedian), owner_filtered: round(o.ownerMedian), paired_ratio: round(o.pairedRatio) };
    }
    const result = {
      rows: gen.rows,
      tenants: tenants.length,
      daily_activity_small_ratio: r.daily_activity_small_ratio!,
      daily_activity_large_ratio: r.daily_activity_large_ratio!,
      provider_panel_small_ratio: r.provider_panel_small_ratio!,
      provider_panel_large_ratio: r.provider_panel_large_ratio!,
      adhoc_small_ratio: r.adhoc_small_ratio!,
      adhoc_large_ratio: r.adhoc_large_ratio!,
      median_ms: medianMs,
      reps: Object.fromEntries(outcomes.map((o) => [`${o.query}_${o.size}`, o.pair.reps])),
      practices: { small: { id: smallId, rows: smallRows }, large: { id: largeId, rows: largeRows } },
      above_target: above.map((o) => `${o.query}_${o.size}`),
      experiments,
      load_avg_1m: { min: round(Math.min(...loads), 2), max: round(Math.max(...loads), 2) },
      postgres: version,
      generation_s: round(generationS, 1),
      quick: QUICK,
    };
    log(`done in ${((performance.now() - T0) / 1000).toFixed(1)} s`);
    await Promise.allSettled(clients.splice(0).map((c) => c.end()));
    await server.stop();
    server = undefined;
    log('server stopped');
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.end()));
    if (server) {
      log('stopping the server');
      await server.stop().catch((err: unknown) => log(`stopping the server failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
}

main().catch((err: unknown) => {
  log(err instanceof BenchAssertion ? `FAILED: ${err.message}` : err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err));
  process.exitCode = 1;
});
