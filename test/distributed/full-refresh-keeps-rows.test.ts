import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runDistributed } from '../../src/cli/coordinator.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { startWorker } from '../support/workers.ts';

/**
 * `run --distributed --full-refresh`: the coordinator used to drop the per-practice tables before
 * any job, so a practice whose job then failed had no rows. Now the first job to write a table
 * creates it again with the other practices' rows, and a practice whose rebuild fails keeps
 * exactly its previous rows (compared as counts and digests of keys).
 */

/** Workers refuse a job planned with other compiled SQL (`--vars` included): the file itself changes between runs. */
const probe = (generation: number, failPractice: string) => `select
  e.practice_id,
  e.encounter_id,
  ${generation} as generation,
  cast(case when e.practice_id = '${failPractice}' then e.encounter_id else '1' end as integer) as one
from {{ref "stg_encounters"}} e
`;

let server: ThrowawayPostgres;
let demo: DemoCopy;
let url: string;
beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2), files: { 'models/marts/refresh_probe.sql': probe(1, 'none') } });
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 1'));
  url = (await server.createDatabase()).url;
}, 300_000);
afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

const env = () => ({ ...process.env, TSFORM_PG_URL: url });
const failures = (run: { results: { status: string; node: string; code?: string }[] }) => run.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`);

async function slices(): Promise<Record<string, { n: number; digest: string; generations: string[] }>> {
  const db = await createPostgresAdapter({ url, poolSize: 1 });
  try {
    const { rows } = await db.query(`SELECT practice_id, encounter_id, generation FROM marts.refresh_probe`);
    const keys: Record<string, string[]> = {};
    const gens: Record<string, Set<string>> = {};
    for (const r of rows) {
      (keys[String(r.practice_id)] ??= []).push(String(r.encounter_id));
      (gens[String(r.practice_id)] ??= new Set()).add(String(r.generation));
    }
    return Object.fromEntries(
      Object.entries(keys).map(([t, k]) => [t, { n: k.length, digest: createHash('sha256').update(k.sort().join('\n')).digest('hex').slice(0, 16), generations: [...gens[t]!].sort() }]),
    );
  } finally {
    await db.close();
  }
}

describe('tsform run --distributed --full-refresh keeps rows until rebuilt', () => {
  it('a practice whose job fails keeps exactly its previous rows; the other is rebuilt', async () => {
    const [a, b] = [...demo.tenantIds].sort() as [string, string];
    const select = ['+refresh_probe', '+practice_patient_roster'];
    const w1 = startWorker(demo.dir, 'a', url, ['--exit-when-idle', '10']);
    expect(failures(await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), select }, { pollMs: 100 }))).toEqual([]);
    await w1.exited;
    const before = await slices();
    expect(Object.keys(before).sort()).toEqual([a, b]);

    writeFileSync(join(demo.dir, 'models/marts/refresh_probe.sql'), probe(2, b));
    const w2 = startWorker(demo.dir, 'b', url, ['--exit-when-idle', '10']);
    const refresh = await runDistributed(
      { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), select, fullRefresh: true },
      { pollMs: 100 },
    );
    await w2.exited;
    expect(failures(refresh).filter((f) => f.startsWith('refresh_probe'))).toEqual([`refresh_probe@${b} TSF401`]);
    const after = await slices();
    expect(after[b]).toEqual(before[b]);
    expect(after[a]).toEqual({ ...before[a], generations: ['2'] });
  }, 300_000);
});
