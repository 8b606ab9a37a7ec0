import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { Codes } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { addProjectFiles, cli, resultsOf, scalar, withWarehouse } from '../support/research-fixture.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A practice's research slice holds its own persons only. A tenant-scoped research model that
 * cross-joins a global research relation compiles (a per-person read of one is a designed
 * feature, and the batch check does not tell the two apart), and put every practice's person
 * tokens into each slice (red-team, 2026-12-07: 4 of 5 slices). The gate on the batch's staged
 * rows refuses a row holding the token of a person the vault does not list at the row's
 * practice, in whatever column and beside whatever else; a per-person read still builds.
 */

const EVERYONE = `{{config scope="global" materialized="ephemeral"}}
select p.person_token, p.zip3 from {{ref "pseudo_persons"}} p
`;
/** A model's yml entry; columns named in `quasi` are quasi-identifiers (a ZIP3's lineage). */
const described = (name: string, columns: string[], quasi: string[] = []) =>
  `  - name: ${name}\n    description: red-team probe.\n    columns:\n${columns.map((c) => `      - { name: ${c}, phi: ${quasi.includes(c) ? 'quasi' : 'none'}, description: probe. }`).join('\n')}\n`;

const FILES: Record<string, string> = {
  'models/research/everyone.sql': EVERYONE,
  // Every practice's persons in each slice, the token under another name.
  'models/research/pseudo_cross.sql': `select v.practice_id, g.person_token as ref, g.zip3 from {{ref "pseudo_persons"}} v cross join {{ref "everyone"}} g\n`,
  // The same tokens in a column that also holds text that is no token.
  'models/research/pseudo_mixed.sql': `select v.practice_id, case when g.zip3 < '5' then g.person_token else 'n/a' end as note from {{ref "pseudo_persons"}} v cross join {{ref "everyone"}} g\n`,
  // A person's records elsewhere, by their token: stays allowed.
  'models/research/pseudo_per_person.sql': `select v.practice_id, v.person_token, g.zip3 as zip3_elsewhere from {{ref "pseudo_persons"}} v join {{ref "everyone"}} g on g.person_token = v.person_token\n`,
  'models/research/_probes.yml': `models:\n${described('everyone', ['person_token', 'zip3'], ['zip3'])}${described('pseudo_cross', ['practice_id', 'ref', 'zip3'], ['zip3'])}${described('pseudo_mixed', ['practice_id', 'note'], ['note'])}${described('pseudo_per_person', ['practice_id', 'person_token', 'zip3_elsewhere'], ['zip3_elsewhere'])}`,
};

describe("a practice's research slice holds its own persons only", () => {
  let demo: DemoCopy;
  let run: RunResults;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    addProjectFiles(demo.dir, FILES);
    const r = await cli(['run', '--project-dir', demo.dir]);
    expect(r.code).not.toBe(0);
    run = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8')) as RunResults;
  }, 600_000);
  afterAll(() => demo?.remove());

  it('refuses a slice holding other practices’ person tokens, under another name or beside other text, and writes nothing of it', async () => {
    for (const [model, column] of [
      ['pseudo_cross', 'ref'],
      ['pseudo_mixed', 'note'],
    ] as const) {
      const results = resultsOf(run, model);
      expect(results.length).toBeGreaterThan(0);
      for (const r of results) {
        expect({ model, status: r.status, code: r.code }).toEqual({ model, status: 'error', code: Codes.privacyGate });
        expect(r.message).toMatch(new RegExp(`${model} not written: person tokens of other practices' persons in ${column} \\(\\d+ rows\\)`));
      }
      const rows = await withWarehouse(demo.dir, async (q) => {
        const exists = Number(await scalar(q, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pseudo' AND table_name = '${model}'`));
        return exists === 0 ? 0 : Number(await scalar(q, `SELECT count(*) FROM pseudo.${model}`));
      });
      expect({ model, rows }).toEqual({ model, rows: 0 });
    }
  });

  it('builds a per-person read of the same global relation, and every other research model', async () => {
    for (const model of ['pseudo_per_person', 'pseudo_persons', 'pseudo_encounters', 'pseudo_conditions']) {
      expect(resultsOf(run, model).map((r) => `${model}: ${r.status}`)).toEqual(resultsOf(run, model).map(() => `${model}: success`));
    }
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
});
