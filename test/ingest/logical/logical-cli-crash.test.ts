import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../../src/adapters/postgres/postgres-adapter.ts';
import { spawnTsform, type CliChild } from '../../support/cli-child.ts';
import { fingerprintDifferences, relationFingerprints } from '../../support/fingerprints.ts';
import { prng, testSeed } from '../../support/prng.ts';
import { startSmallOltp, type SmallOltp } from '../support/capture-project.ts';
import { logicalProject } from './support/logical-fixture.ts';
import { workload } from './support/logical-workload.ts';

const SEED = testSeed(20261204);
/** kill -9s that landed (a child that ended before its kill does not count, and another is started). */
const KILLS = 20;
const MAX_ROUNDS = 40;

type Command = 'follow' | 'run';

/** The first line each command prints once it works: follow before its set-up, run after its first node. */
const STARTED: Record<Command, string> = { follow: 'following ', run: '"event":"node"' };

function tsform(command: Command, projectDir: string, env: NodeJS.ProcessEnv): CliChild {
  const args = command === 'follow' ? ['capture', '--follow'] : ['run'];
  return spawnTsform([...args, '--project-dir', projectDir, '--target', 'postgres'], env, STARTED[command]);
}

/**
 * kill -9 at seeded random moments of `tsform capture --follow` and `tsform run` (CLI processes,
 * PostgreSQL warehouse), with inserts, updates, hard deletes and practice moves committed while
 * they run and in between; then a clean run. Raw and every model must equal a fresh full load of
 * the same project into a new warehouse.
 */
describe('kill -9 of tsform capture --follow and tsform run (log-based capture): raw and every model equal a fresh full load', () => {
  let oltp: SmallOltp;
  let tenants: string[];
  let crashed: { url: string; drop(): Promise<void> };
  let fresh: { url: string; drop(): Promise<void> };
  let project: ReturnType<typeof logicalProject>;
  let freshProject: ReturnType<typeof logicalProject>;

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures'], { logical: {} });
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 4`)).rows.map((r) => String(r.practice_id));
    crashed = await oltp.server.createDatabase();
    fresh = await oltp.server.createDatabase();
    project = logicalProject(tenants, 'logical_cli_crash');
    // another name: another slot and publication, so the fresh load leaves the crashed one's alone
    freshProject = logicalProject(tenants, 'logical_cli_fresh');
  });
  afterAll(async () => {
    project?.remove();
    freshProject?.remove();
    await crashed?.drop().catch(() => undefined);
    await fresh?.drop().catch(() => undefined);
    await oltp?.stop();
  });

  it(`${KILLS} kills at random points (seed ${SEED}), then a clean run`, async () => {
    const rand = prng(SEED);
    const env = (wh: string): NodeJS.ProcessEnv => ({ ...process.env, TSFORM_OLTP_URL: oltp.server.url, TSFORM_PG_URL: wh });
    const log: string[] = [];
    let kills = 0;
    for (let round = 0; kills < KILLS && round < MAX_ROUNDS; round++) {
      const command: Command = rand() < 0.5 ? 'follow' : 'run';
      // after it started working: a follower's set-up, copy, stream and applies take seconds; a
      // run's capture and 25 nodes about one
      const delay = Math.floor(rand() * (command === 'follow' ? 3000 : 1200));
      const child = tsform(command, project.dir, env(crashed.url));
      const changes = workload(oltp.admin, oltp.server.url, tenants, rand, round, true);
      const working = await Promise.race([child.started.then(() => true), child.exited.then(() => false)]);
      const killed = working && (await Promise.race([new Promise<boolean>((r) => setTimeout(() => r(true), delay)), child.exited.then(() => false)]));
      if (killed) child.kill();
      const end = await child.exited;
      await changes;
      const at = `seed ${SEED}, round ${round}: ${command}, ${delay} ms after it started`;
      // where it was: its last progress line (node names, practice ids and counts; no values)
      const lines = child.output().trim().split('\n');
      log.push(`${at}: ${end.signal ?? `exit ${end.code}`}, ${lines.length} line(s) out, last: ${lines[lines.length - 1]!.slice(0, 100)}`);
      if (end.signal === 'SIGKILL') kills++;
      // a run that ended first must have succeeded (a follower never ends by itself)
      else expect(end.code, `${at}\n${child.output().slice(-2000)}`).toBe(0);
    }
    expect(kills, log.join('\n')).toBe(KILLS);

    const last = tsform('run', project.dir, env(crashed.url));
    const lastEnd = await last.exited;
    expect(lastEnd.code, last.output().slice(-3000)).toBe(0);
    const full = tsform('run', freshProject.dir, env(fresh.url));
    expect((await full.exited).code, full.output().slice(-3000)).toBe(0);

    const a = await createPostgresAdapter({ url: crashed.url });
    const b = await createPostgresAdapter({ url: fresh.url });
    try {
      const got = await relationFingerprints(a);
      const want = await relationFingerprints(b);
      // raw and every model of the project
      expect([...want.keys()].filter((k) => k.startsWith('raw.')).sort()).toEqual(['raw.encounters', 'raw.procedures']);
      expect(want.size, [...want.keys()].join(', ')).toBeGreaterThanOrEqual(6);
      expect(fingerprintDifferences(got, want), log.join('\n')).toEqual([]);
      expect(Number((await a.query(`SELECT count(*) AS n FROM tsform_meta.logical_queue`)).rows[0]!.n)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  }, 600_000);
});
