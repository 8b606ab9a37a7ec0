import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { purgeCommand } from '../../src/cli/purge.ts';
import { Codes } from '../../src/errors.ts';
import { asSuperuser, startRlsWarehouse, withEnv, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * PostgreSQL partitioned by practice, red-team 2026-12-07:
 * - a model renamed leaves its partitioned table; a new model named like one of its partitions
 *   (compile checks only the current models' partitions) wrote into it, failing every practice,
 *   and with `--full-refresh` dropped it with 1,102 of its 1,120 rows. Now refused, nothing written.
 * - `tsform purge` took no practice lock: a run of the practice under way wrote every purged row
 *   back after purge said it was done. Now purge waits for the practice's run lock.
 * - A run compiled before the purge that took its locks only after it (it waited for another
 *   practice) built the purged practice again. Now a run reads tenants.yml again once it holds
 *   its locks, and compiles again when the file changed.
 * Counts and ids only.
 */

describe('PostgreSQL partitioned by practice: a renamed model\'s partitions, and purge beside a run', () => {
  let w: RlsWarehouse;
  let ids: string[];
  /** tenants.yml with every practice, as the second case found it. */
  let listed = '';
  const count = (sql: string, values: unknown[] = []) => asSuperuser(w.superUrl, async (c) => Number((await c.query(sql, values)).rows[0]!.n));
  const run = (select: string[], fullRefresh = false) =>
    withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => runWorkspace({ projectDir: w.demo.dir, command: 'run', target: 'postgres', select, fullRefresh }));

  beforeAll(async () => {
    w = await startRlsWarehouse({
      tenants: 2,
      tsformYml: (yml, tenants) => {
        ids = [...tenants].sort();
        return yml.replace('    url_env: TSFORM_PG_URL   # never a password in this file\n', `    url_env: TSFORM_PG_URL\n    partition_by_practice:\n      list: [${ids[0]}]\n      hash_partitions: 2\n`);
      },
    });
  }, 900_000);
  afterAll(async () => {
    await w?.stop();
  });
  const tenantsFile = () => join(w.demo.dir, 'tenants.yml');
  const withoutPractice = (text: string, gone: string) => {
    const doc = parse(text) as { tenants: { id: string }[] };
    return stringify({ ...doc, tenants: doc.tenants.filter((t) => t.id !== gone) });
  };

  it('a model named like a partition of a renamed model\'s table is refused, with or without --full-refresh, and that table keeps its rows', async () => {
    const d = w.demo.dir;
    const rows = await count('SELECT count(*) AS n FROM marts.practice_daily_activity');
    expect(rows).toBeGreaterThan(0);
    renameSync(join(d, 'models/marts/practice_daily_activity.sql'), join(d, 'models/marts/pda_renamed.sql'));
    const yml = join(d, 'models/marts/_marts.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace('- name: practice_daily_activity\n', '- name: pda_renamed\n'));
    writeFileSync(join(d, 'models/marts/practice_daily_activity__rest.sql'), `select practice_id, activity_date, encounters from {{ref "pda_renamed"}}\n`);
    for (const fullRefresh of [false, true]) {
      const r = await run(['pda_renamed', 'practice_daily_activity__rest'], fullRefresh);
      const refused = r.results.filter((u) => u.model === 'practice_daily_activity__rest');
      expect(refused.map((u) => `${u.status} ${u.code}`), `fullRefresh ${fullRefresh}`).toEqual(ids.map(() => `error ${Codes.schemaChanged}`));
      expect(refused[0]!.message).toMatch(/marts\.practice_daily_activity__rest is a partition of marts\.practice_daily_activity .*nothing was written/);
      expect(await count('SELECT count(*) AS n FROM marts.practice_daily_activity')).toBe(rows);
    }
  }, 600_000);

  it('purge waits for the run lock of the practice, so a run under way cannot write its rows back', async () => {
    const gone = ids[1]!;
    const before = await count('SELECT count(*) AS n FROM staging.stg_patients WHERE practice_id = $1', [gone]);
    expect(before).toBeGreaterThan(0);
    listed = readFileSync(tenantsFile(), 'utf8');
    writeFileSync(tenantsFile(), withoutPractice(listed, gone));
    // A run of the practice holds its lock (practice-locks.ts) on a session of its own.
    await asSuperuser(w.superUrl, async (runLock) => {
      await runLock.query("SELECT pg_advisory_lock(hashtext('tsform.tenant'), hashtext($1))", [gone]);
      const purge = withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => purgeCommand(w.demo.dir, 'postgres', [gone], true));
      let settled: unknown = false;
      purge.then(() => (settled = 'done'), (e: unknown) => (settled = String(e)));
      await new Promise((r) => setTimeout(r, 2_000));
      expect(settled).toBe(false);
      expect(await count('SELECT count(*) AS n FROM staging.stg_patients WHERE practice_id = $1', [gone])).toBe(before);
      await runLock.query("SELECT pg_advisory_unlock(hashtext('tsform.tenant'), hashtext($1))", [gone]);
      await purge;
    });
    expect(await count('SELECT count(*) AS n FROM staging.stg_patients WHERE practice_id = $1', [gone])).toBe(0);
  }, 600_000);

  it('a run that compiled before a purge and took its locks after it does not build the purged practice again', async () => {
    const [waitedFor, gone] = [ids[0]!, ids[1]!];
    writeFileSync(tenantsFile(), listed);
    await run([]);
    const staged = () => count('SELECT count(*) AS n FROM staging.stg_patients WHERE practice_id = $1', [gone]);
    expect(await staged()).toBeGreaterThan(0);
    let result: Awaited<ReturnType<typeof run>> | undefined;
    await asSuperuser(w.superUrl, async (other) => {
      // Another run holds the first practice: this run has compiled (with `gone` listed) and waits.
      await other.query("SELECT pg_advisory_lock(hashtext('tsform.tenant'), hashtext($1))", [waitedFor]);
      const waiting = run([]).then((r) => (result = r));
      await new Promise((r) => setTimeout(r, 3_000));
      expect(result).toBeUndefined();
      writeFileSync(tenantsFile(), withoutPractice(listed, gone));
      const purged = await withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => purgeCommand(w.demo.dir, 'postgres', [gone], true));
      expect(purged.counts.some((c) => c.rows > 0)).toBe(true);
      expect(await staged()).toBe(0);
      await other.query("SELECT pg_advisory_unlock(hashtext('tsform.tenant'), hashtext($1))", [waitedFor]);
      await waiting;
    });
    expect(await staged()).toBe(0);
    expect(await count('SELECT count(*) AS n FROM marts.practice_daily_activity WHERE practice_id = $1', [gone])).toBe(0);
    expect(result!.results.filter((u) => u.tenant === gone)).toEqual([]);
    expect(result!.results.filter((u) => u.tenant === waitedFor && u.status === 'success').length).toBeGreaterThan(0);
    expect(result!.notices?.join('\n')).toMatch(/tenants\.yml, tsform\.yml or the policies changed while this run waited/);
  }, 600_000);
});
