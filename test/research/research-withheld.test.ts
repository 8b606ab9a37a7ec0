import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { compileLoadedProject, runWorkspace } from '../../src/cli/api.ts';
import { manifestFingerprint } from '../../src/cli/distributed-jobs.ts';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, failuresOf, fingerprintRows, scalar, PSEUDO_MODELS, resultsOf, VAULT_NODE, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * A practice withheld from population health (`research: false` in tenants.yml): none of its
 * patients has a token or a linkage record in the vault, none of its rows is in a pseudonymized
 * relation (published research reads nothing else of a practice's: scope checks, tested on their
 * own), and its own reporting is untouched. A
 * practice that leaves after a run has its research data removed by the next one; one that comes
 * back gets the same tokens again. Counts and practice ids only in assertions.
 */

const RELATIONS: Record<string, { relation: string; column: string }> = {
  ...Object.fromEntries(PSEUDO_MODELS.map((m) => [m, { relation: `pseudo.${m}`, column: 'practice_id' }])),
  tokens: { relation: 'vault.person_tokens', column: 'practice_id' },
  linkage_records: { relation: 'vault.linkage_records', column: 'tenant' },
  linkage_keys: { relation: 'vault.linkage_keys', column: 'tenant' },
  marts: { relation: 'marts.practice_daily_activity', column: 'practice_id' },
};

/**
 * pseudo_conditions as an incremental model (the demo's are tables): a practice's slice, once it
 * has rows, takes nothing more, so a practice that comes back must be built in full again.
 */
// Every column is the key, over distinct rows: a diagnosis recorded twice in a month is one row
// twice, and an incremental unique_key must be a key of the rows (TSF423).
const INCREMENTAL_CONDITIONS = `{{config materialized="incremental" unique_key="person_token,condition_code,condition_description,onset_month,is_active" batch_incremental=true}}
${readFileSync(join(REPO_ROOT, 'models/research/pseudo_conditions.sql'), 'utf8').replace(/^select$/m, 'select distinct')}
{{#if is_incremental}}
where not exists (select 1 from {{this}} t where t.practice_id = c.practice_id and t.person_token = v.person_token)
{{/if}}
`;

/**
 * A global incremental model over a pseudonymized one, merged on the practice token: merging
 * alone would keep the withheld practice's row for good, so its withdrawal rebuilds it in full.
 */
const GLOBAL_INCREMENTAL = `{{config scope="global" materialized="incremental" unique_key="practice_token"}}
select e.practice_token, count(*) as encounters from {{ref "pseudo_encounters"}} e group by 1
`;
const GLOBAL_EQUALS_ITS_SQL = `SELECT count(*) AS n FROM (
  (SELECT * FROM pseudo.encounters_per_practice EXCEPT SELECT practice_token, count(*) FROM pseudo.pseudo_encounters GROUP BY 1)
  UNION ALL (SELECT practice_token, count(*) FROM pseudo.pseudo_encounters GROUP BY 1 EXCEPT SELECT * FROM pseudo.encounters_per_practice)) AS d`;

type Counts = Record<string, Record<string, number>>;

async function countsByPractice(q: Query): Promise<Counts> {
  const out: Counts = {};
  for (const [name, { relation, column }] of Object.entries(RELATIONS)) {
    const rows = await q(`SELECT ${column} AS p, count(*) AS n FROM ${relation} GROUP BY 1`);
    out[name] = Object.fromEntries(rows.map((r) => [String(r.p), Number(r.n)]));
  }
  return out;
}

function setResearch(dir: string, id: string, research: boolean | undefined): void {
  const file = join(dir, 'tenants.yml');
  const doc = parse(readFileSync(file, 'utf8')) as { tenants: Record<string, unknown>[] };
  const t = doc.tenants.find((x) => x.id === id)!;
  if (research === undefined) delete t.research;
  else t.research = research;
  writeFileSync(file, stringify(doc));
}

const notesOf = (run: RunResults, model: string, tenant: string) => resultsOf(run, model).filter((r) => r.tenant === tenant).flatMap((r) => r.notes ?? []);

describe('research: false in tenants.yml, through runs of the demo', () => {
  let demo: DemoCopy;
  let before: Counts;
  let withheld: string;
  let tokensBefore: string;

  beforeAll(async () => {
    demo = copyDemoProject({
      tenants: sampleTenants(4),
      files: { 'models/research/pseudo_conditions.sql': INCREMENTAL_CONDITIONS, 'models/research/encounters_per_practice.sql': GLOBAL_INCREMENTAL },
    });
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    before = await withWarehouse(demo.dir, countsByPractice);
    // A practice with rows in every relation the opt-out empties, one of the large ones when it can.
    withheld = demo.tenantIds
      .filter((t) => Object.keys(RELATIONS).every((r) => (before[r]![t] ?? 0) > 0))
      .sort((a, b) => (before.pseudo_encounters![b] ?? 0) - (before.pseudo_encounters![a] ?? 0))[0]!;
    expect(withheld).toBeDefined();
    tokensBefore = await withWarehouse(demo.dir, (q) => fingerprintRows(q, 'vault.person_tokens'));
  }, 300_000);

  afterAll(() => demo?.remove());

  it('a practice that leaves: the next run removes its tokens, linkage records and pseudonymized rows, and only those', async () => {
    setResearch(demo.dir, withheld, false);
    // Until a run of it, `tsform privacy check` fails and says where its rows remain (counts only).
    const early = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(early.code).toBe(1);
    const line = early.lines.find((l) => l.startsWith('withheld from research'));
    expect(line).toMatch(/^withheld from research: 1 practice\(s\) \(tenants.yml research: false\): FAILED rows of theirs remain in .*pseudo\.pseudo_encounters \(\d+ rows\).*vault\.person_tokens \(\d+ rows\)/);
    expect(line).toContain(`tsform run --tenant ${withheld}`);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(run)).toEqual([]);
    const after = await withWarehouse(demo.dir, countsByPractice);
    for (const r of ['tokens', 'linkage_records', 'linkage_keys', ...PSEUDO_MODELS]) expect(after[r]![withheld] ?? 0, r).toBe(0);
    // Its own reporting is the same; every other practice's research rows are the same.
    expect(after.marts![withheld]).toBe(before.marts![withheld]);
    for (const m of PSEUDO_MODELS) {
      const others = (c: Counts) => Object.fromEntries(Object.entries(c[m]!).filter(([t]) => t !== withheld));
      expect(others(after), m).toEqual(others(before));
      const result = resultsOf(run, m).find((r) => r.tenant === withheld)!;
      expect([result.status, result.rows]).toEqual(['success', 0]);
      expect(notesOf(run, m, withheld).join('\n')).toMatch(/1 practice\(s\) withheld from research \(tenants.yml research: false\): \d+ row\(s\) written by an earlier run removed/);
    }
    expect(notesOf(run, VAULT_NODE, withheld).join('\n')).toMatch(/withheld from research .*no token or linkage record kept/);
    // The incremental slice's version is forgotten with its rows: coming back, it is built in full, as a new practice's.
    expect(Number(await withWarehouse(demo.dir, (q) => scalar(q, GLOBAL_EQUALS_ITS_SQL)))).toBe(0);
    expect(resultsOf(run, 'encounters_per_practice')[0]!.notes?.join('\n')).toMatch(/rebuilt in full: .*rows of a practice withheld from research were removed upstream/);
    const checked = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(checked.lines.find((l) => l.startsWith('withheld from research'))).toBe('withheld from research: 1 practice(s) (tenants.yml research: false): nothing of theirs in the vault, any pseudonymized relation or any global relation built from them');
    const versions = (q: Query) => q(`SELECT tenant FROM tsform_meta.relation_versions WHERE relation = 'pseudo.pseudo_conditions' ORDER BY 1`);
    expect((await withWarehouse(demo.dir, versions)).map((r) => r.tenant)).toEqual([...demo.tenantIds].filter((t) => t !== withheld).sort());
  }, 300_000);

  it('while it stays out, a run writes nothing for it and says so', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build', tenants: [withheld] });
    expect(failuresOf(run)).toEqual([]);
    for (const m of PSEUDO_MODELS) expect(notesOf(run, m, withheld).join('\n')).toMatch(/withheld from research .*: nothing written for them/);
    const after = await withWarehouse(demo.dir, countsByPractice);
    for (const r of ['tokens', 'linkage_records', 'linkage_keys', ...PSEUDO_MODELS]) expect(after[r]![withheld] ?? 0, r).toBe(0);
  }, 300_000);

  it('a practice that comes back gets its rows and the same tokens again', async () => {
    setResearch(demo.dir, withheld, undefined);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(run)).toEqual([]);
    const after = await withWarehouse(demo.dir, countsByPractice);
    expect(after).toEqual(before);
    expect(await withWarehouse(demo.dir, (q) => fingerprintRows(q, 'vault.person_tokens'))).toBe(tokensBefore);
  }, 300_000);
});

describe('research: false at compile time', () => {
  const demo = () => loadProject(REPO_ROOT);
  const withheldFirst = () => {
    const p = demo();
    p.tenants[0]!.research = false;
    return p;
  };

  it('is recorded in the manifest, so a worker whose tenants.yml differs has another fingerprint and is refused', () => {
    const all = compileLoadedProject(demo(), { write: false }).manifest;
    const one = compileLoadedProject(withheldFirst(), { write: false }).manifest;
    expect(all.research_withheld).toEqual([]);
    expect(one.research_withheld).toEqual([demo().tenants[0]!.id]);
    expect(manifestFingerprint(one)).not.toBe(manifestFingerprint(all));
  });

  it('refuses a pseudonymized tenant-scoped view or ephemeral model while a practice is withheld (it has no slices to leave it out of)', () => {
    for (const materialized of ['view', 'ephemeral']) {
      const p = withheldFirst();
      const m = p.models.find((x) => x.name === 'pseudo_conditions')!;
      m.sql = `{{config materialized="${materialized}"}}\n${m.sql}`;
      const errors = compileErrors(p);
      expect(errors.map((e) => e.code)).toContain(Codes.invalidConfig);
      const e = errors.find((x) => x.code === Codes.invalidConfig)!;
      expect(e.file).toBe(m.file);
      expect(e.message).toMatch(new RegExp(`pseudo_conditions: .* withholds practices from research \\(${p.tenants[0]!.id} at tenants.yml:\\d+ has research: false\\): a ${materialized}`));
      // With every practice taking part, the same model compiles.
      const q = demo();
      q.models.find((x) => x.name === 'pseudo_conditions')!.sql = m.sql;
      expect(compileErrors(q).filter((x) => x.code === Codes.invalidConfig)).toEqual([]);
    }
  });

  it('refuses a pseudonymized tenant-scoped model that reads a global model while a practice is withheld (its slices would keep what that read)', () => {
    const GLOBAL = `{{config scope="global"}}\nselect c.person_token, c.condition_code from {{ref "pseudo_conditions"}} c\n`;
    const reading = (p: ReturnType<typeof demo>) => {
      const m = p.models.find((x) => x.name === 'pseudo_conditions')!;
      p.models.push({ ...m, name: 'conditions_everywhere', file: 'models/research/conditions_everywhere.sql', sql: GLOBAL });
      const e = p.models.find((x) => x.name === 'pseudo_encounters')!;
      e.sql = e.sql.replace(/\nfrom /, '\n, (select count(*) from {{ref "conditions_everywhere"}} g where g.person_token = v.person_token) as conditions\nfrom ');
      return { p, e };
    };
    const taking = reading(demo());
    expect(compileErrors(taking.p)).toEqual([]);
    const { p, e } = reading(withheldFirst());
    const found = compileErrors(p).filter((x) => x.code === Codes.invalidConfig);
    expect(found.map((x) => ({ file: x.file, line: x.line }))).toEqual([{ file: e.file, line: e.sql.split('\n').findIndex((l) => l.includes('conditions_everywhere')) + 1 }]);
    expect(found[0]!.message).toMatch(new RegExp(`pseudo_encounters: .* reads the global model 'conditions_everywhere' while tenants.yml withholds practices from research \\(${p.tenants[0]!.id} at tenants.yml:\\d+`));
    // The same read through a tenant-scoped view in between.
    const through = withheldFirst();
    const m = through.models.find((x) => x.name === 'pseudo_conditions')!;
    through.models.push({ ...m, name: 'conditions_everywhere', file: 'models/research/conditions_everywhere.sql', sql: GLOBAL });
    through.models.push({ ...m, name: 'conditions_view', file: 'models/marts/conditions_view.sql', sql: `{{config materialized="view"}}\nselect t.practice_id, g.person_token from {{ref "conditions_everywhere"}} g cross join {{ref "tenants"}} t\n` });
    const e2 = through.models.find((x) => x.name === 'pseudo_encounters')!;
    e2.sql = e2.sql.replace(/\nfrom /, '\n, (select count(*) from {{ref "conditions_view"}} g where g.person_token = v.person_token) as conditions\nfrom ');
    const viaView = compileErrors(through).filter((x) => x.code === Codes.invalidConfig && x.file === e2.file);
    expect(viaView.map((x) => x.message.match(/reads the global model '\w+'( through '\w+')?/)?.[0])).toEqual([`reads the global model 'conditions_everywhere' through 'conditions_view'`]);
  });

  it('tsform ls counts the withheld practices on the research nodes only', async () => {
    const copy = copyDemoProject({ tenants: (ids) => ids.slice(0, 3) });
    try {
      setResearch(copy.dir, copy.tenantIds[0]!, false);
      const json = await cli(['ls', '--project-dir', copy.dir, '--output', 'json']);
      expect(json.code).toBe(0);
      const nodes = json.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { name: string; withheld_from_research?: number });
      const marked = nodes.filter((n) => n.withheld_from_research !== undefined).map((n) => [n.name, n.withheld_from_research] as const);
      expect(new Map(marked)).toEqual(new Map([...PSEUDO_MODELS, VAULT_NODE].map((m) => [m, 1])));
      const text = await cli(['ls', '--project-dir', copy.dir, '--select', 'pseudo_persons']);
      expect(text.lines.join('\n')).toContain('3 practices (1 withheld from research: nothing written for them)');
    } finally {
      copy.remove();
    }
  });

  it('a research value that is not a YAML boolean is an error at its line, not read as true', () => {
    const copy = copyDemoProject({ tenants: (ids) => ids.slice(0, 3) });
    try {
      const file = join(copy.dir, 'tenants.yml');
      const text = readFileSync(file, 'utf8').replace(/(  pool: \w+\n)/, '$1    research: "no"\n');
      writeFileSync(file, text);
      const line = text.split('\n').findIndex((l) => l.includes('research: "no"')) + 1;
      const d = loadProject(copy.dir).diagnostics.find((x) => /'research' must be true or false/.test(x.message));
      expect(d && { code: d.code, file: d.file, line: d.line }).toEqual({ code: Codes.yamlShape, file: 'tenants.yml', line });
      // and it stops the compile, so nothing is built from a value read either way
      expect(compileErrors(loadProject(copy.dir)).map((e) => e.message)).toContain(d!.message);
    } finally {
      copy.remove();
    }
  });
});
