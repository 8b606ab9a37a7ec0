import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import type { RunResults } from '../../../src/artifacts/run-results.ts';
import { runWorkspace, type RunRequest } from '../../../src/cli/api.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, startSmallOltp, withWarehouse, type SmallOltp } from '../support/capture-project.ts';
import { logicalProject } from './support/logical-fixture.ts';

/**
 * `tsform run` with sources in mode logical: the stream is queued once per run, each practice's
 * extract node applies its own queue, and deletes and moves reach incremental models (issue 14,
 * reproductions 1, 3, 4 in logical mode), on both warehouse engines.
 */
// `postgres partitioned`: raw and model tables partitioned by practice (partition_by_practice).
describe.each(['duckdb', 'postgres', 'postgres partitioned'] as const)('tsform run with mode: logical into %s', (variant) => {
  const target = variant === 'duckdb' ? 'duckdb' : 'postgres';
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures'], { logical: {} });
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 4`)).rows.map((r) => String(r.practice_id));
    project = logicalProject(tenants, `logical_run_${variant.replace(' ', '_')}`);
    if (variant === 'postgres partitioned') {
      const yml = join(project.dir, 'tsform.yml');
      writeFileSync(yml, readFileSync(yml, 'utf8').replace('    url_env: TSFORM_PG_URL\n', `    url_env: TSFORM_PG_URL\n    partition_by_practice:\n      list: [${tenants[0]}]\n      hash_partitions: 2\n`));
    }
    process.env.TSFORM_PG_URL = oltp.server.url;
  });
  afterAll(async () => {
    delete process.env.TSFORM_PG_URL;
    project?.remove();
    await oltp?.stop();
  });

  const run = (extra: Partial<RunRequest> = {}): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', target, openOltp: openOltpAt(oltp.server.url), ...extra });
  const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.status} ${x.code ?? ''} ${x.message ?? ''}`);
  const look = <T>(fn: (wh: Adapter) => Promise<T>): Promise<T> => (target === 'duckdb' ? withWarehouse(project.dir, fn) : fn(oltp.admin));

  async function differs(wh: Adapter): Promise<string[]> {
    const out = [...(await rawDiffers(oltp.admin, wh, 'encounters', tenants)), ...(await rawDiffers(oltp.admin, wh, 'procedures', tenants))];
    const live = await oltp.admin.query(`SELECT practice_id, encounter_id FROM oltp.encounters WHERE deleted_at IS NULL AND practice_id = ANY($1::text[])`, [tenants]);
    const want = new Set(live.rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
    const have = new Set((await wh.query(`SELECT practice_id, encounter_id FROM marts.inc_encounters`)).rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
    const extra = [...have].filter((k) => !want.has(k)).length;
    const missing = [...want].filter((k) => !have.has(k)).length;
    if (extra + missing > 0) out.push(`inc_encounters: ${extra} extra, ${missing} missing`);
    return out;
  }

  it('first run copies from the slot snapshot; hard deletes, soft deletes and a move then reach raw and the incremental model', async () => {
    const first = await run();
    expect(notOk(first)).toEqual([]);
    expect(await look(differs)).toEqual([]);
    if (variant === 'postgres partitioned') {
      const parents = await oltp.admin.query(
        `SELECT n.nspname || '.' || c.relname AS rel FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT c.relispartition ORDER BY 1`,
      );
      expect(parents.rows.map((r) => r.rel)).toEqual(expect.arrayContaining(['raw.encounters', 'raw.procedures', 'marts.inc_encounters']));
    }
    const [a, b] = tenants as [string, string];
    const ids = (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 3`, [a])).rows.map((r) => String(r.encounter_id));
    await oltp.admin.transaction(async (s) => {
      await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
      await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2`, [a, ids[0]!]);
    });
    await oltp.admin.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2`, [a, ids[1]!]);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = $3`, [a, b, ids[2]!]);
    const second = await run();
    expect(notOk(second)).toEqual([]);
    expect(await look(differs)).toEqual([]);
    const notes = [...new Set(second.results.filter((r) => r.model === 'inc_encounters').flatMap((r) => r.notes ?? []))];
    expect(notes.filter((n) => n.includes('rebuilt in full'))).toEqual([expect.stringContaining('1 practice(s) rebuilt in full')]);
    // a run with nothing new applies nothing and rebuilds nothing
    const third = await run();
    expect(notOk(third)).toEqual([]);
    expect(third.results.filter((r) => r.node.startsWith('source:')).flatMap((r) => r.notes ?? []).every((n) => n.startsWith('0 change(s)'))).toBe(true);
    expect(third.results.filter((r) => r.model === 'inc_encounters').flatMap((r) => r.notes ?? []).filter((n) => n.includes('rebuilt'))).toEqual([]);
  }, 180_000);
});
