import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runWorkspace } from '../../src/cli/api.ts';
import { asSuperuser, startRlsWarehouse, withEnv, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * research: false on PostgreSQL, where tenant-scoped tables carry row-level security and here
 * are partitioned by practice (the withheld practice in a LIST partition of its own): the run as
 * the owner role removes its tokens, linkage records and pseudonymized rows, and nothing else; a
 * published model built alone before that run removes those it reads.
 */

const RELATIONS = ['pseudo.pseudo_persons', 'pseudo.pseudo_encounters', 'pseudo.pseudo_conditions', 'vault.person_tokens', 'marts.practice_daily_activity'];
const LINKAGE = ['vault.linkage_records', 'vault.linkage_keys'];

let wh: RlsWarehouse;
let withheld: string;

const sql = (text: string, values: unknown[] = []) => asSuperuser(wh.superUrl, (c) => c.query(text, values));

async function counts(): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const rel of [...RELATIONS, ...LINKAGE]) {
    const col = LINKAGE.includes(rel) ? 'tenant' : 'practice_id';
    const { rows } = await sql(`SELECT ${col} AS p, count(*)::int AS n FROM ${rel} GROUP BY 1`);
    out[rel] = Object.fromEntries(rows.map((r) => [String(r.p), Number(r.n)]));
  }
  return out;
}

beforeAll(async () => {
  wh = await startRlsWarehouse({
    tenants: 3,
    tsformYml: (yml, ids) => {
      withheld = [...ids].sort()[0]!;
      return yml.replace('    url_env: TSFORM_PG_URL   # never a password in this file\n', `    url_env: TSFORM_PG_URL\n    partition_by_practice:\n      list: [${withheld}]\n      hash_partitions: 2\n`);
    },
  });
}, 600_000);
afterAll(async () => {
  await wh?.stop();
});

describe('research: false on PostgreSQL (RLS, partitioned by practice)', () => {
  it('the next run as the owner removes the practice from the vault and every pseudonymized table, and only it', async () => {
    const before = await counts();
    for (const rel of RELATIONS) expect(before[rel]![withheld] ?? 0, rel).toBeGreaterThan(0);
    const file = join(wh.demo.dir, 'tenants.yml');
    const doc = parse(readFileSync(file, 'utf8')) as { tenants: Record<string, unknown>[] };
    doc.tenants.find((t) => t.id === withheld)!.research = false;
    writeFileSync(file, stringify(doc));

    // A published model built alone first empties the withheld slices it reads (and only those),
    // before that practice's own run (research-builds.ts).
    const published = await withEnv({ TSFORM_PG_URL: wh.ownerUrl }, () =>
      runWorkspace({ projectDir: wh.demo.dir, command: 'run', target: 'postgres', select: ['research_condition_prevalence'] }),
    );
    expect(published.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    const early = await counts();
    for (const rel of ['pseudo.pseudo_persons', 'pseudo.pseudo_conditions']) expect(early[rel]![withheld] ?? 0, rel).toBe(0);
    expect(early['pseudo.pseudo_encounters']![withheld]).toBe(before['pseudo.pseudo_encounters']![withheld]);
    const { rows: recorded } = await sql(`SELECT withheld_json FROM tsform_meta.withheld_at_build WHERE relation = 'research.research_condition_prevalence'`);
    expect(recorded.map((r) => JSON.parse(String(r.withheld_json)) as string[])).toEqual([[withheld]]);

    const run = await withEnv({ TSFORM_PG_URL: wh.ownerUrl }, () => runWorkspace({ projectDir: wh.demo.dir, command: 'build', target: 'postgres' }));
    expect(run.results.filter((r) => r.status === 'error').map((r) => `${r.node} ${r.tenant ?? ''}: ${r.code}`)).toEqual([]);
    const after = await counts();
    for (const rel of [...RELATIONS.filter((r) => !r.startsWith('marts.')), ...LINKAGE]) expect(after[rel]![withheld] ?? 0, rel).toBe(0);
    expect(after['marts.practice_daily_activity']![withheld]).toBe(before['marts.practice_daily_activity']![withheld]);
    for (const rel of RELATIONS.filter((r) => r.startsWith('pseudo.'))) {
      const others = (c: typeof after) => Object.fromEntries(Object.entries(c[rel]!).filter(([t]) => t !== withheld));
      expect(others(after), rel).toEqual(others(before));
    }
  }, 600_000);
});
