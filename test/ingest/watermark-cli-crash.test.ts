import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { spawnTsform, type CliChild } from '../support/cli-child.ts';
import { fingerprintDifferences, relationFingerprints, type Fingerprints } from '../support/fingerprints.ts';
import { prng, testSeed } from '../support/prng.ts';
import { INCREMENTAL_ENCOUNTERS } from './logical/support/logical-fixture.ts';
import { copyCaptureProject, rawDiffers, startSmallOltp, withWarehouse, type SmallOltp } from './support/capture-project.ts';

const SEED = testSeed(20261205);
/** kill -9s that landed (a run that ended before its kill does not count, and another is started). */
const KILLS = 20;
const MAX_ROUNDS = 100;
const PRACTICES = 5;

type Target = 'duckdb' | 'postgres';

/** `tsform run` as a user starts it: the CLI in a process of its own; the PostgreSQL warehouse at `whUrl`. Started once it reports its first node. */
function tsformRun(projectDir: string, oltpUrl: string, target: Target, whUrl?: string): CliChild {
  const env = { ...process.env, TSFORM_OLTP_URL: oltpUrl, ...(whUrl ? { TSFORM_PG_URL: whUrl } : {}) };
  return spawnTsform(['run', '--project-dir', projectDir, '--target', target], env, '"event":"node"');
}

/** The capture-project fixture (watermark capture, chunks of 700 rows, batches of 4) with an incremental model on encounters. */
function watermarkProject(tenants: readonly string[]): ReturnType<typeof copyCaptureProject> {
  const project = copyCaptureProject(tenants);
  writeFileSync(join(project.dir, 'models', 'inc_encounters.sql'), INCREMENTAL_ENCOUNTERS);
  const sources = join(project.dir, 'models', 'sources.yml');
  writeFileSync(
    sources,
    readFileSync(sources, 'utf8')
      .replace('          - { name: encounter_class, phi: none }', '          - { name: encounter_class, phi: none }\n          - { name: updated_at, phi: none }')
      // the fixture's 2 s read timeout is for the timeout tests: on a busy CI machine a read may
      // take longer, and a failed extract is not what this test is about
      .replace('        timeout_seconds: 2\n', '        timeout_seconds: 60\n'),
  );
  return project;
}

/**
 * What watermark capture is for: inserts, updates and practice moves that stamp updated_at, and
 * soft deletes (the demo OLTP's trigger turns a DELETE into one, stamped). Eight transactions
 * over the practices and both tables.
 */
async function stampedWorkload(admin: PostgresAdapter, tenants: readonly string[], rand: () => number, round: number): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  for (let i = 0; i < 8; i++) {
    const p = pick(tenants);
    const q = pick(tenants.filter((t) => t !== p));
    await admin.transaction(async (s) => {
      await s.query(
        `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, updated_at) SELECT $1, 'w${round}-${i}-' || g, 'pat', 'new', now() FROM generate_series(1, 3) g`,
        [p],
      );
      const some = (table: string, key: string, n: number, salt: string) =>
        `${key} IN (SELECT ${key} FROM oltp.${table} WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY md5(${key} || '${salt}') LIMIT ${n})`;
      await s.query(`UPDATE oltp.encounters SET encounter_class = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND ${some('encounters', 'encounter_id', 3, `u${round}-${i}`)}`, [p, `c${round}-${i}`]);
      await s.query(`DELETE FROM oltp.procedures WHERE practice_id = $1 AND ${some('procedures', 'procedure_id', 2, `d${round}-${i}`)}`, [q]);
      await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND ${some('encounters', 'encounter_id', 1, `e${round}-${i}`)}`, [q]);
      await s.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND ${some('encounters', 'encounter_id', 1, `m${round}-${i}`)}`, [p, q]);
    });
  }
}

/**
 * kill -9 at seeded random moments of `tsform run` with watermark capture (the CLI, the path a
 * user's run takes: batched extracts, per-practice chunks, then the models), with stamped
 * inserts, updates, soft deletes and practice moves committed while it runs and in between;
 * then a clean run. Raw must equal the OLTP's live rows, and raw and every model a fresh full
 * load of the same project into a new warehouse.
 */
/** Opens a warehouse of the test for one look: the project's DuckDB file, or the PostgreSQL database. */
async function withTargetWarehouse<T>(target: Target, projectDir: string, whUrl: string | undefined, fn: (wh: Adapter) => Promise<T>): Promise<T> {
  if (target === 'duckdb') return withWarehouse(projectDir, fn);
  const wh = await createPostgresAdapter({ url: whUrl! });
  try {
    return await fn(wh);
  } finally {
    await wh.close();
  }
}

// DuckDB: batches read together, chunks staged in files and read ahead (steady-capture.ts);
// PostgreSQL: each chunk's OLTP read inside its warehouse transaction (capture-chunk.ts).
describe.each<Target>(['duckdb', 'postgres'])('kill -9 of tsform run (watermark capture, %s warehouse): raw and every model equal a fresh full load', (target) => {
  let oltp: SmallOltp;
  let tenants: string[];
  let project: ReturnType<typeof watermarkProject>;
  let freshProject: ReturnType<typeof watermarkProject>;
  let crashed: { url: string; drop(): Promise<void> } | undefined;
  let fresh: { url: string; drop(): Promise<void> } | undefined;

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    // the largest practices: their captures take several chunks, so kills land mid-capture too
    tenants = (await oltp.admin.query(`SELECT practice_id FROM oltp.encounters GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ${PRACTICES}`)).rows.map((r) => String(r.practice_id));
    project = watermarkProject(tenants);
    freshProject = watermarkProject(tenants);
    if (target === 'postgres') {
      crashed = await oltp.server.createDatabase();
      fresh = await oltp.server.createDatabase();
    }
  });
  afterAll(async () => {
    project?.remove();
    freshProject?.remove();
    await crashed?.drop().catch(() => undefined);
    await fresh?.drop().catch(() => undefined);
    await oltp?.stop();
  });

  it(`${KILLS} kills at random points (seed ${SEED}; TSFORM_TEST_SEED replays another), then a clean run`, async () => {
    const rand = prng(SEED);
    const log: string[] = [];
    let kills = 0;
    // How long a run works after its first node (its captures and models): kill points are drawn
    // within it, so that most kills land whatever the machine's speed (0.4 s on PostgreSQL here,
    // ~1 s on DuckDB). Measured on the runs that ended by themselves.
    let runMs = 1000;
    for (let round = 0; kills < KILLS && round < MAX_ROUNDS; round++) {
      const delay = Math.floor(rand() * runMs * 0.8);
      const child = tsformRun(project.dir, oltp.server.url, target, crashed?.url);
      const changes = stampedWorkload(oltp.admin, tenants, rand, round);
      const working = await Promise.race([child.started.then(() => true), child.exited.then(() => false)]);
      const startedAt = performance.now();
      const killed = working && (await Promise.race([new Promise<boolean>((r) => setTimeout(() => r(true), delay)), child.exited.then(() => false)]));
      if (killed) child.kill();
      const end = await child.exited;
      await changes;
      const at = `seed ${SEED}, round ${round}: run killed ${delay} ms after its first node`;
      // where it was: its last progress line (node names, practice ids and counts; no values)
      const lines = child.output().trim().split('\n');
      log.push(`${at}: ${end.signal ?? `exit ${end.code}`}, ${lines.length} line(s) out, last: ${lines[lines.length - 1]!.slice(0, 100)}`);
      if (end.signal === 'SIGKILL') kills++;
      else {
        expect(end.code, `${at}\n${child.output().slice(-2000)}`).toBe(0);
        if (working) runMs = Math.max(50, Math.round(performance.now() - startedAt));
      }
    }
    expect(kills, log.join('\n')).toBe(KILLS);

    const cleanRun = async (): Promise<Fingerprints> => {
      const run = tsformRun(project.dir, oltp.server.url, target, crashed?.url);
      expect((await run.exited).code, run.output().slice(-3000)).toBe(0);
      return withTargetWarehouse(target, project.dir, crashed?.url, async (wh) => {
        for (const t of ['encounters', 'procedures']) expect(await rawDiffers(oltp.admin, wh, t, tenants), `raw.${t}\n${log.join('\n')}`).toEqual([]);
        return relationFingerprints(wh);
      });
    };
    const full = tsformRun(freshProject.dir, oltp.server.url, target, fresh?.url);
    expect((await full.exited).code, full.output().slice(-3000)).toBe(0);
    const want = await withTargetWarehouse(target, freshProject.dir, fresh?.url, (wh) => relationFingerprints(wh));
    expect([...want.keys()].filter((k) => k.startsWith('raw.')).sort()).toEqual(['raw.encounters', 'raw.procedures']);
    expect(want.size, [...want.keys()].join(', ')).toBeGreaterThanOrEqual(6);

    // The clean run captures what the killed runs left: raw equals the OLTP, and every model the
    // fresh load. A row that moved leaves its old practice's raw in its new practice's extract,
    // possibly after the old practice's models were built in that run: the run builds them again
    // at its end (runner.ts, moved-row-rebuilds.ts). Without that, 2 of 4 runs of this test left
    // the moved rows in the old practices' marts on PostgreSQL.
    expect(fingerprintDifferences(await cleanRun(), want), log.join('\n')).toEqual([]);
  }, 600_000);
});
