import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runWorkspace } from '../../src/cli/api.ts';
import { purgeCommand } from '../../src/cli/purge.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { addBridge, bridgePersons } from '../support/bridge-person.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { failuresOf, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * `tsform purge` of an offboarded practice also empties the vault's linkage of it: its records
 * and match keys (keyed hashes of its patients' identities) go, and the persons they linked are
 * resolved again without them. The oracle is a vault built from scratch without the practice:
 * the same records, grouped into the same persons (token values may differ: a person keeps its
 * earlier token where it can). Counts and practice ids only in assertions.
 */

function removePractice(dir: string, id: string): void {
  const file = join(dir, 'tenants.yml');
  const doc = parse(readFileSync(file, 'utf8')) as { tenants: { id: string }[] };
  doc.tenants = doc.tenants.filter((t) => t.id !== id);
  writeFileSync(file, stringify(doc));
}

/** Records grouped by person token, as a canonical string: which records are one person, not what the token is. */
async function persons(q: Query): Promise<string> {
  const rows = await q(`SELECT list_sort(list(practice_id || '/' || patient_id)) AS g FROM vault.person_tokens GROUP BY person_token`);
  return rows.map((r) => JSON.stringify(r.g)).sort().join('\n');
}

const vaultCounts = (dir: string, practice: string) =>
  withWarehouse(dir, async (q) => {
    const out: Record<string, number> = {};
    for (const [name, where] of [
      ['linkage_records', 'tenant'],
      ['linkage_keys', 'tenant'],
      ['person_tokens', 'practice_id'],
    ] as const) {
      out[name] = Number((await q(`SELECT count(*) AS n FROM vault.${name} WHERE ${where} = '${practice}'`))[0]!.n);
    }
    return out;
  });

describe('tsform purge and the vault linkage', () => {
  let purged: DemoCopy;
  let fresh: DemoCopy;
  let gone: string;
  let linked: string[];

  beforeAll(async () => {
    purged = copyDemoProject({ tenants: sampleTenants(4) });
    const [a, x, b] = [...purged.tenantIds].sort();
    gone = x!;
    linked = [a!, b!];
    addBridge(purged.dir, { a: a!, x: gone, b: b! }, true);
    expect(failuresOf(await runWorkspace({ projectDir: purged.dir, command: 'build' }))).toEqual([]);
    expect(await withWarehouse(purged.dir, bridgePersons)).toBe(1); // one person across the three practices
    removePractice(purged.dir, gone);
    fresh = copyDemoProject({ tenants: (ids) => sampleTenants(4)(ids).filter((t) => t !== gone) });
    addBridge(fresh.dir, { a: a!, x: gone, b: b! }, false);
    expect(failuresOf(await runWorkspace({ projectDir: fresh.dir, command: 'build' }))).toEqual([]);
    expect(await withWarehouse(fresh.dir, bridgePersons)).toBe(2); // without X, two persons
  }, 300_000);

  afterAll(() => {
    purged?.remove();
    fresh?.remove();
  });

  it('a dry run counts its linkage records and keys and deletes nothing', async () => {
    const before = await vaultCounts(purged.dir, gone);
    expect(before.linkage_records).toBeGreaterThan(0);
    expect(before.linkage_keys).toBeGreaterThan(0);
    const { counts } = await purgeCommand(purged.dir, undefined, [gone], false);
    expect(counts).toEqual(expect.arrayContaining([{ relation: 'vault.linkage_records', rows: before.linkage_records }, { relation: 'vault.linkage_keys', rows: before.linkage_keys }]));
    expect(await vaultCounts(purged.dir, gone)).toEqual(before);
  });

  it('without the vault key, purge stops before deleting anything', async () => {
    const before = await vaultCounts(purged.dir, gone);
    const err = await purgeCommand(purged.dir, undefined, [gone], true, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.vaultKey);
    expect(await vaultCounts(purged.dir, gone)).toEqual(before);
  });

  it('removes its records and keys, and leaves the vault grouped as one built without it', async () => {
    const { notes } = await purgeCommand(purged.dir, undefined, [gone], true);
    // Its pseudonymized rows went; the published aggregates built from them still count it, and purge says which.
    expect(notes[0]).toBe(`2 global research relation(s) built before this purge count ${gone} until they are built again: tsform run --select research_condition_prevalence research_diabetes_cohort (or the nightly run)`);
    // A's and B's research slices may carry the link made through X: they go until they are built again.
    expect(notes[1]).toMatch(/^2 practice\(s\) held persons linked through a practice withheld from research or gone from tenants\.yml: [1-9]\d* row\(s\) of their research slices removed until they are built again$/);
    const slices = (q: Query) => q(`SELECT practice_id, count(*) AS n FROM pseudo.pseudo_persons WHERE practice_id IN ('${linked.join("','")}') GROUP BY 1`);
    expect(await withWarehouse(purged.dir, slices)).toEqual([]);
    // And the files were rewritten without the deleted rows (test/ingest/purge-bytes.test.ts).
    expect(notes.slice(2)).toEqual([expect.stringMatching(/^rewrote tsform\.duckdb /)]);
    expect(await vaultCounts(purged.dir, gone)).toEqual({ linkage_records: 0, linkage_keys: 0, person_tokens: 0 });
    const [after, expected] = [await withWarehouse(purged.dir, persons), await withWarehouse(fresh.dir, persons)];
    expect(after === expected, 'the persons of the purged vault against a vault built without the practice').toBe(true);
    const total = (q: Query) => q('SELECT (SELECT count(*) FROM vault.linkage_records) AS r, (SELECT count(*) FROM vault.linkage_keys) AS k');
    expect(await withWarehouse(purged.dir, total)).toEqual(await withWarehouse(fresh.dir, total));
  });
});
