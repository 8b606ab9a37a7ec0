import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelNode } from '../../src/artifacts/manifest.ts';
import { compileWorkspace, openAdapter, resolveTarget } from '../../src/cli/api.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { checkStagedForLeaks } from '../../src/execute/privacy-gates.ts';
import type { PhiClass } from '../../src/project/types.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { compileModel, shown } from '../support/model-probe.ts';
import { addProjectFiles, cli, scalar, withWarehouse } from '../support/research-fixture.ts';

/**
 * A practice's research slice holds its own persons only. A tenant-scoped research model that
 * cross-joined a global research relation compiled, and put every practice's person tokens into
 * each slice (red-team, 2026-12-07: 4 of 5 slices), also as `upper(token)` or `md5(token)`, which
 * no run-time match of a token's text finds. Now such a model must keep each row to one person
 * (compile, person-rows.ts: TSF215), and the gate on each batch's staged rows refuses a row
 * holding the vault token of a person the vault does not list at the row's practice (run time,
 * fail-closed, for whatever the compile check cannot follow). A person-keyed read still builds.
 */

const GLOBAL = {
  file: 'models/research/published/zz_global.sql',
  sql: `{{config scope="global"}}\nselect distinct person_token, encounter_class from {{ref "pseudo_encounters"}}\n`,
  columns: { person_token: 'none', encounter_class: 'none' } satisfies Record<string, PhiClass>,
};
const SLICE_COLUMNS: Record<string, PhiClass> = { practice_id: 'none', person_token: 'none', other: 'none' };
const slice = (sql: string) => compileModel('models/research/zz_slice.sql', sql, SLICE_COLUMNS, [GLOBAL]);

describe('compile: a research slice reading a global research relation keeps each row to one person', () => {
  for (const other of ['g.person_token', 'upper(g.person_token)', 'md5(g.person_token)', "replace(g.person_token, 'pt_', '')", 'g.encounter_class']) {
    it(`refuses a cross join carrying ${other}`, () => {
      const errors = slice(`select p.practice_id, p.person_token, ${other} as other\nfrom {{ref "pseudo_encounters"}} p cross join {{ref "zz_global"}} g\n`);
      expect(shown(errors)).toMatch(
        /^TSF215: zz_slice is a practice's research slice that reads the global model 'zz_global', so each of its rows must be one person's: it joins p and g without equating their person tokens/,
      );
    });
  }

  it('refuses an aggregate over every person of it', () => {
    const errors = slice(`select p.practice_id, p.person_token, (select count(*) from {{ref "zz_global"}} g) as other\nfrom {{ref "pseudo_encounters"}} p\n`);
    expect(shown(errors)).toMatch(/^TSF215: zz_slice is a practice's research slice .*aggregates rows of several persons/);
  });

  it('accepts the person-keyed forms: a join on the token, a sub-select matched to it', () => {
    for (const sql of [
      `select p.practice_id, p.person_token, g.encounter_class as other\nfrom {{ref "pseudo_encounters"}} p join {{ref "zz_global"}} g on g.person_token = p.person_token\n`,
      `select p.practice_id, p.person_token, (select count(*) from {{ref "zz_global"}} g where g.person_token = p.person_token) as other\nfrom {{ref "pseudo_encounters"}} p\n`,
    ]) {
      expect(shown(slice(sql))).toBe('(compiles)');
    }
  });
});

describe('run time: the batch gate on whose tokens a research slice holds', () => {
  let demo: DemoCopy;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    addProjectFiles(demo.dir, {
      'models/research/everyone.sql': `{{config scope="global" materialized="ephemeral"}}\nselect p.person_token, p.zip3 from {{ref "pseudo_persons"}} p\n`,
      'models/research/pseudo_per_person.sql': `select v.practice_id, v.person_token, g.zip3 as zip3_elsewhere from {{ref "pseudo_persons"}} v join {{ref "everyone"}} g on g.person_token = v.person_token\n`,
      'models/research/_probes.yml': `models:
  - name: everyone
    description: probe.
    columns:
      - { name: person_token, phi: none, description: probe. }
      - { name: zip3, phi: quasi, description: probe. }
  - name: pseudo_per_person
    description: probe.
    columns:
      - { name: practice_id, phi: none, description: probe. }
      - { name: person_token, phi: none, description: probe. }
      - { name: zip3_elsewhere, phi: quasi, description: probe. }
`,
    });
    expect((await cli(['run', '--project-dir', demo.dir])).code).toBe(0);
  }, 600_000);
  afterAll(() => demo?.remove());

  it('a per-person read builds, and holds its own persons only', async () => {
    const [rows, foreign] = await withWarehouse(demo.dir, async (q) => [
      Number(await scalar(q, 'SELECT count(*) FROM pseudo.pseudo_per_person')),
      Number(
        await scalar(
          q,
          `SELECT count(*) FROM pseudo.pseudo_per_person r
            WHERE NOT EXISTS (SELECT 1 FROM vault.person_tokens v WHERE v.practice_id = r.practice_id AND v.person_token = r.person_token)`,
        ),
      ),
    ]);
    expect(rows).toBeGreaterThan(0);
    expect(foreign).toBe(0);
  });

  it("refuses staged rows holding another practice's person token, under any column and beside other text", async () => {
    const ws = compileWorkspace(demo.dir, { write: false });
    const node = ws.manifest.models.pseudo_per_person as ModelNode;
    const adapter = await openAdapter(ws.project, resolveTarget(ws.project));
    try {
      const { rows } = await adapter.query(
        `SELECT a.practice_id AS mine, b.person_token AS theirs FROM vault.person_tokens a, vault.person_tokens b
          WHERE a.practice_id <> b.practice_id AND NOT EXISTS (SELECT 1 FROM vault.person_tokens o WHERE o.practice_id = a.practice_id AND o.person_token = b.person_token)
          LIMIT 1`,
      );
      const { mine, theirs } = rows[0] as { mine: string; theirs: string };
      const gate = (select: string) =>
        adapter
          .transaction(async (s) => {
            await s.createTempTableAs('zz_staged', select, [mine, theirs]);
            await checkStagedForLeaks(s, 'zz_staged', node, ws.manifest, ws.project.config.privacy!, [mine]);
          })
          .then(
            () => 'written',
            (e: unknown) => (e instanceof TsformError ? `${e.code}: ${e.message}` : String(e)),
          );
      expect(await gate(`SELECT CAST($1 AS VARCHAR) AS practice_id, CAST($2 AS VARCHAR) AS ref`)).toMatch(
        new RegExp(`^${Codes.privacyGate}: pseudo_per_person not written: person tokens of other practices' persons in ref \\(1 rows\\)`),
      );
      expect(await gate(`SELECT CAST($1 AS VARCHAR) AS practice_id, x.note FROM (VALUES ('n/a'), (CAST($2 AS VARCHAR))) AS x(note)`)).toMatch(/not written: person tokens of other practices' persons in note \(1 rows\)/);
      // The practice's own person passes.
      expect(await gate(`SELECT CAST($1 AS VARCHAR) AS practice_id, t.person_token AS ref FROM vault.person_tokens t WHERE t.practice_id = $1 AND length($2) > 0`)).toBe('written');
    } finally {
      await adapter.close();
    }
  });
});
