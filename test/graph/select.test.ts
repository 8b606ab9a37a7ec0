import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { buildDag, downstreamOf } from '../../src/graph/dag.ts';
import { parseSelector, selectNodes, selectTenants } from '../../src/graph/select.ts';
import type { Tenant } from '../../src/project/types.ts';
import { compileDir, REPO_ROOT } from '../fixtures/project-fixture.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

const { project, manifest } = compileDir(REPO_ROOT);
const dag = buildDag(manifest).dag!;
const select = (sel: string[], exclude?: string[]) => [...selectNodes(dag, sel, exclude)].sort();

/** Runs fn and returns the TsformError it throws (fails the test if it throws anything else). */
function thrown(fn: () => unknown): TsformError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsformError);
    return e as TsformError;
  }
  throw new Error('expected a TsformError, nothing was thrown');
}

describe('selectors on the demo project', () => {
  it('no selector selects every node', () => {
    expect(selectNodes(dag, undefined, undefined)).toEqual(new Set(dag.order));
    expect(selectNodes(dag, [], [])).toEqual(new Set(dag.order));
  });

  it('name+ adds everything downstream: the marts that read stg_encounters, not stg_claims', () => {
    const picked = select(['stg_encounters+']);
    expect(picked).toEqual(
      expect.arrayContaining([
        'int_encounters_local',
        'practice_chronic_panel',
        'practice_daily_activity',
        'practice_patient_roster',
        'provider_panel',
        'stg_encounters',
      ]),
    );
    for (const other of ['stg_claims', 'practice_claims_outstanding', 'source:ehr.encounters', 'tenants']) expect(picked).not.toContain(other);
    // Exactly stg_encounters and what lies downstream of it.
    const below = downstreamOf(dag.graph, ['stg_encounters']);
    expect(picked).toEqual(['stg_encounters', ...below].sort());
  });

  it('+name adds everything upstream, through the ephemeral, to sources and the tenants relation', () => {
    expect(select(['+practice_daily_activity'])).toEqual([
      'int_encounters_local',
      'practice_daily_activity',
      'source:ehr.encounters',
      'stg_encounters',
      'tenants',
    ]);
  });

  it('comma is intersection: tag:marts,path:… is just that model', () => {
    expect(select(['tag:marts,path:models/marts/provider_panel.sql'])).toEqual(['provider_panel']);
  });

  it('space is union, whether in one argument or several', () => {
    expect(select(['stg_claims stg_providers'])).toEqual(['stg_claims', 'stg_providers']);
    expect(select(['stg_claims', 'stg_providers'])).toEqual(['stg_claims', 'stg_providers']);
    const union = select(['stg_claims+ provider_panel']);
    expect(union).toEqual([...new Set([...select(['stg_claims+']), 'provider_panel'])].sort());
    expect(union).toEqual(expect.arrayContaining(['practice_claims_outstanding', 'provider_panel', 'stg_claims']));
  });

  it('--exclude removes nodes from the selection', () => {
    expect(select(['tag:staging'], ['stg_patients', 'stg_claims+'])).toEqual([
      'stg_conditions',
      'stg_encounters',
      'stg_medications',
      'stg_procedures',
      'stg_providers',
    ]);
    const rest = select([], ['tag:staging', 'tag:marts', 'kind:source']);
    expect(rest).toEqual(expect.arrayContaining(['encounter_classes', 'tenants']));
    for (const id of rest) {
      const node = dag.graph.getNodeAttributes(id).node;
      expect(node.kind, id).not.toBe('source');
      expect(node.tags.filter((t) => t === 'staging' || t === 'marts'), id).toEqual([]);
    }
  });

  it('path: takes a folder, source: a source table, kind: a node kind, and * globs', () => {
    const staging = select(['path:models/staging']);
    expect(staging).toContain('stg_encounters');
    for (const id of staging) expect(dag.graph.getNodeAttributes(id).node.path.startsWith('models/staging/'), id).toBe(true);
    expect(select(['source:ehr.claims+'])).toEqual(expect.arrayContaining(['practice_claims_outstanding', 'source:ehr.claims', 'stg_claims']));
    expect(select(['source:ehr.claims'])).toEqual(['source:ehr.claims']);
    expect(select(['kind:seed'])).toContain('encounter_classes');
    const practiceMarts = select(['practice_*,tag:marts']);
    expect(practiceMarts).toEqual(
      expect.arrayContaining(['practice_chronic_panel', 'practice_claims_outstanding', 'practice_daily_activity', 'practice_patient_roster']),
    );
    for (const id of practiceMarts) expect(id.startsWith('practice_'), id).toBe(true);
  });

  it('an unknown selector method is TSF301 and names the method list', () => {
    const e = thrown(() => selectNodes(dag, ['colour:red'], undefined));
    expect(e.code).toBe(Codes.badSelector);
    expect(e.message).toContain('"colour:red"');
    expect(e.message).toContain('tag');
    expect(thrown(() => parseSelector('tag:')).code).toBe(Codes.badSelector);
    expect(thrown(() => parseSelector('+')).code).toBe(Codes.badSelector);
  });

  it('a selector that matches nothing is TSF301 (a typo must not select nothing silently)', () => {
    expect(thrown(() => selectNodes(dag, ['stg_encouters'], undefined)).code).toBe(Codes.badSelector);
  });

  // Red-team, 2026-12-07 (an analyst's first hour): each of these selected nothing, or said so in words the user did not type.
  it('an empty --select or --exclude (an unset variable in CI) is TSF301, not a green run of nothing', () => {
    for (const given of [[''], ['  '], ['', ' ']]) {
      const e = thrown(() => selectNodes(dag, given, undefined));
      expect(e.code).toBe(Codes.badSelector);
      expect(e.message).toMatch(/^--select .* names nothing/);
    }
    expect(thrown(() => selectNodes(dag, undefined, [''])).message).toMatch(/^--exclude .* names nothing/);
  });

  it('a comma with a space after it names the comma, not an empty selector', () => {
    const e = thrown(() => selectNodes(dag, ['stg_encounters, stg_patients'], undefined));
    expect(e.code).toBe(Codes.badSelector);
    expect(e.message).toContain('"stg_encounters, stg_patients"');
    expect(e.message).toContain('intersection');
    expect(thrown(() => parseSelector(',stg_patients')).message).toContain('comma');
  });

  it('an intersection whose parts match but not together is TSF301 naming it; with state: it may be empty', () => {
    const e = thrown(() => selectNodes(dag, ['stg_encounters,tag:marts'], undefined));
    expect(e.code).toBe(Codes.badSelector);
    expect(e.message).toMatch(/selector "stg_encounters,tag:marts" matches nothing: its parts match nodes/);
    expect(selectNodes(dag, ['state:modified,tag:marts'], undefined, { modified: new Set(['stg_encounters']) }).size).toBe(0);
  });

  it('resource_type:test says that tests run with their node, in the words typed', () => {
    const e = thrown(() => selectNodes(dag, ['resource_type:test'], undefined));
    expect(e.message).toContain("selector 'resource_type:test' matches nothing: tests are not selected on their own");
  });

  it('an --exclude that leaves nothing is TSF301 naming both options (unless by state:)', () => {
    expect(thrown(() => selectNodes(dag, undefined, ['*'])).message).toMatch(/^--exclude "\*" leaves nothing of the project to run/);
    expect(thrown(() => selectNodes(dag, ['stg_encounters'], ['stg_encounters'])).message).toMatch(/^--exclude "stg_encounters" leaves nothing of --select "stg_encounters" to run/);
    expect(selectNodes(dag, ['state:modified'], ['stg_encounters'], { modified: new Set(['stg_encounters']) }).size).toBe(0);
  });

  it('path: with Windows separators means the same folder', () => {
    expect(selectNodes(dag, ['path:models\\marts'], undefined)).toEqual(selectNodes(dag, ['path:models/marts'], undefined));
  });
});

describe('selectTenants', () => {
  const tenants = project.tenants;

  it('no --tenant means every practice', () => {
    expect(selectTenants(tenants, undefined)).toHaveLength(221);
    expect(selectTenants(tenants, [])).toHaveLength(221);
  });

  it('tag:ci-sample selects the five CI practices', () => {
    const picked = selectTenants(tenants, ['tag:ci-sample']);
    expect(picked).toHaveLength(5);
    for (const t of picked) expect(t.tags).toContain('ci-sample');
  });

  it('takes ids, comma lists and tags together, without duplicates, in tenants.yml order', () => {
    const [a, b] = [tenants[3]!.id, tenants[0]!.id];
    const picked = selectTenants(tenants, [`${a},${b}`, a, 'tag:large']);
    const large = tenants.filter((t) => t.tags.includes('large')).map((t) => t.id);
    expect(picked.map((t) => t.id)).toEqual(tenants.map((t) => t.id).filter((id) => id === a || id === b || large.includes(id)));
  });

  it('a hostile id on the command line is TSF303 and is shown escaped', () => {
    const e = thrown(() => selectTenants(tenants, ["x'; drop table y;--"]));
    expect(e.code).toBe(Codes.badTenantArgument);
    expect(e.message).toContain(JSON.stringify("x'; drop table y;--"));
    const nl = thrown(() => selectTenants(tenants, ['a\nb\u001b[2J']));
    expect(nl.code).toBe(Codes.badTenantArgument);
    expect(nl.message).not.toMatch(/[\n\u001b]/);
  });

  it('an unknown tag or id is TSF302', () => {
    expect(thrown(() => selectTenants(tenants, ['tag:nope'])).code).toBe(Codes.unknownTenant);
    expect(thrown(() => selectTenants(tenants, ['p_0000000000'])).code).toBe(Codes.unknownTenant);
  });

  it('checks the pattern before any lookup, even for a tenant list of one', () => {
    const one: Tenant[] = [{ id: 'acme', name: 'Acme', timezone: 'UTC', readyBy: '07:00', tags: [], pool: 'steady', research: true, file: 'tenants.yml', line: 2 }];
    expect(thrown(() => selectTenants(one, ['ACME'])).code).toBe(Codes.badTenantArgument);
  });
});

describe('tsform ls (CLI) with a hostile --tenant', () => {
  // ls writes target/manifest.json: a copy, so that no test leaves a target/ in the checkout
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject();
  });
  afterAll(() => demo?.remove());
  afterEach(() => vi.restoreAllMocks());

  it('returns exit code 2 and prints a coded error, not a stack trace', async () => {
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    const out: string[] = [];
    const code = await runCli(['node', 'tsform', 'ls', '--project-dir', demo.dir, '--tenant', "a';--"], (l) => out.push(l));
    expect(code).toBe(2);
    expect(out).toEqual([]);
    const text = stderr.join('');
    expect(text).toContain(Codes.badTenantArgument);
    expect(text).not.toMatch(/\n\s+at /);
  });

  it('returns 2 for an unknown selector method too', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await runCli(['node', 'tsform', 'ls', '--project-dir', demo.dir, '--select', 'colour:red'], () => undefined)).toBe(2);
  });

  it('lists the fan-out for a valid tenant tag', async () => {
    const out: string[] = [];
    expect(await runCli(['node', 'tsform', 'ls', '--project-dir', demo.dir, '--tenant', 'tag:ci-sample', '--select', 'stg_claims'], (l) => out.push(l))).toBe(0);
    expect(out[0]).toBe('stg_claims\tmodel\ttenant\ttable\t5 practices');
  });
});

describe('selector help (issue 15, item 9)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a typo gets "did you mean" with the nearest names, per method', () => {
    expect(thrown(() => select(['stg_encounter'])).message).toContain("(did you mean 'stg_encounters'");
    expect(thrown(() => select(['tag:marst'])).message).toContain("did you mean 'marts'?");
    expect(thrown(() => select(['source:eh'])).message).toContain("did you mean 'ehr'?");
    expect(thrown(() => select(['source:ehr.encounter'])).message).toContain("'ehr.encounters'");
  });

  it('source:<name> selects every table of the source, like dbt (source:<name>.* too)', () => {
    const all = select(['source:ehr']);
    expect(all.length).toBeGreaterThan(1);
    expect(all.every((id) => id.startsWith('source:ehr.'))).toBe(true);
    expect(all).toEqual(select(['source:ehr.*']));
    expect(select(['source:ehr.encounters'])).toEqual(['source:ehr.encounters']);
  });

  it('--select <ephemeral> is an error that says it is inlined and names its readers to select instead', async () => {
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    const out: string[] = [];
    expect(manifest.models.int_encounters_local?.materialized).toBe('ephemeral');
    expect(await runCli(['node', 'tsform', 'ls', '--project-dir', REPO_ROOT, '--select', 'int_encounters_local'], (l) => out.push(l))).toBe(2);
    expect(out).toEqual([]);
    expect(stderr.join('')).toContain("'int_encounters_local' is ephemeral: inlined as a CTE into the models that read it, so there is nothing to build; select the readers ('practice_daily_activity'), e.g. --select int_encounters_local+");
    // With a reader it builds the reader.
    out.length = 0;
    expect(await runCli(['node', 'tsform', 'ls', '--project-dir', REPO_ROOT, '--select', 'int_encounters_local+', '--tenant', 'tag:ci-sample'], (l) => out.push(l))).toBe(0);
    expect(out.some((l) => l.startsWith('practice_daily_activity\t'))).toBe(true);
  });

  it('state:modified that only changed an ephemeral model plans nothing, without an error (slim CI)', async () => {
    const { compileWorkspace } = await import('../../src/cli/compile-stage.ts');
    const { planWorkspace } = await import('../../src/cli/slim-ci.ts');
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const plan = planWorkspace(ws, { command: 'build', select: ['state:modified'], tenants: ['tag:ci-sample'] }, new Set(['int_encounters_local']));
    expect(plan.steps).toEqual([]);
  });
});

describe('graph operators and config selectors (issue 15: dbt habits)', () => {
  const parentsOf = (ids: Iterable<string>) => new Set([...ids].flatMap((id) => dag.graph.inNeighbors(id)));
  const childrenOf = (ids: Iterable<string>) => new Set([...ids].flatMap((id) => dag.graph.outNeighbors(id)));
  /** Every node reachable by repeatedly applying `step`, computed here from the graph's neighbours. */
  const closure = (start: string[], step: (ids: Iterable<string>) => Set<string>) => {
    const seen = new Set<string>();
    for (let frontier = step(start); frontier.size > 0; frontier = new Set([...step(frontier)].filter((x) => !seen.has(x)))) for (const x of frontier) seen.add(x);
    return seen;
  };

  it('x+1 is x and its direct children; 1+x is x and its direct parents', () => {
    expect(select(['stg_encounters+1'])).toEqual(['stg_encounters', ...childrenOf(['stg_encounters'])].sort());
    expect(select(['1+practice_daily_activity'])).toEqual(['practice_daily_activity', ...parentsOf(['practice_daily_activity'])].sort());
    // The demo's mart reads an ephemeral that reads stg_encounters: one edge does not reach the staging model, two do.
    expect(select(['1+practice_daily_activity'])).not.toContain('stg_encounters');
    const two = select(['2+practice_daily_activity']);
    expect(two).toEqual(['practice_daily_activity', ...parentsOf(['practice_daily_activity']), ...parentsOf(parentsOf(['practice_daily_activity']))].filter((v, i, a) => a.indexOf(v) === i).sort());
    expect(two).toContain('stg_encounters');
    expect(two.length).toBeLessThan(select(['+practice_daily_activity']).length + 1);
  });

  it('n+x+m combines both depths; 0 means the node alone; a large depth equals +', () => {
    const both = select(['1+stg_encounters+1']);
    expect(both).toEqual(['stg_encounters', ...parentsOf(['stg_encounters']), ...childrenOf(['stg_encounters'])].filter((v, i, a) => a.indexOf(v) === i).sort());
    expect(select(['0+stg_encounters+0'])).toEqual(['stg_encounters']);
    expect(select(['stg_encounters+99'])).toEqual(select(['stg_encounters+']));
    expect(select(['99+practice_daily_activity'])).toEqual(select(['+practice_daily_activity']));
  });

  it('a depth counts the shortest path: in a diamond a→b→c, a→c, a+1 reaches c', async () => {
    const { DirectedGraph } = await import('graphology');
    const g = new DirectedGraph();
    for (const n of ['a', 'b', 'c', 'd']) g.addNode(n);
    g.addDirectedEdge('a', 'b');
    g.addDirectedEdge('b', 'c');
    g.addDirectedEdge('a', 'c');
    g.addDirectedEdge('c', 'd');
    expect([...downstreamOf(g, ['a'], 1)].sort()).toEqual(['b', 'c']);
    expect([...downstreamOf(g, ['a'], 2)].sort()).toEqual(['b', 'c', 'd']);
    expect([...downstreamOf(g, ['a'])].sort()).toEqual(['b', 'c', 'd']);
  });

  it('@x is x, its downstream, and every upstream of those (what rebuilding the downstream reads)', () => {
    const below = closure(['stg_patients'], childrenOf);
    const expected = new Set(['stg_patients', ...below]);
    for (const id of closure([...expected], parentsOf)) expected.add(id);
    const picked = select(['@stg_patients']);
    expect(picked).toEqual([...expected].sort());
    // More than stg_patients+ whenever a descendant reads another branch.
    expect(picked.length).toBeGreaterThanOrEqual(select(['stg_patients+']).length);
    for (const id of select(['stg_patients+'])) expect(picked).toContain(id);
  });

  it('config.materialized:incremental selects the incremental models, config.scope and resource_type too', () => {
    const incremental = Object.values(manifest.models).filter((m) => m.materialized === 'incremental').map((m) => m.name).sort();
    expect(incremental.length).toBeGreaterThan(0);
    expect(select(['config.materialized:incremental'])).toEqual(incremental);
    expect(select(['config.materialized:incremental+1'])).toEqual([...new Set([...incremental, ...childrenOf(incremental)])].sort());
    const global = Object.values(manifest.models).filter((m) => m.scope === 'global').map((m) => m.name);
    expect(select(['config.scope:global,resource_type:model'])).toEqual(global.sort());
    expect(select(['resource_type:seed'])).toEqual(Object.keys(manifest.seeds).sort());
    expect(select(['config.unique_key:encounter_id'])).toContain('stg_encounters');
    expect(select(['config.pseudonymized:true'])).toEqual(
      Object.values({ ...manifest.models, ...manifest.sources, ...manifest.seeds, ...manifest.builtins }).filter((n) => n.pseudonymized).map((n) => n.name).sort(),
    );
  });

  it('mistakes are TSF301 with the grammar or a "did you mean"', () => {
    const typo = thrown(() => selectNodes(dag, ['config.materialised:incremental'], undefined));
    expect(typo.code).toBe(Codes.badSelector);
    expect(typo.message).toContain("did you mean 'materialized'");
    const value = thrown(() => selectNodes(dag, ['config.materialized:incremetal'], undefined));
    expect(value.message).toContain("matches nothing");
    expect(value.message).toContain('incremental');
    expect(thrown(() => parseSelector('@+stg_encounters')).message).toContain("'@' already includes the upstream");
    expect(thrown(() => parseSelector('config.:x')).code).toBe(Codes.badSelector);
    expect(thrown(() => parseSelector('2+')).code).toBe(Codes.badSelector);
    expect(thrown(() => parseSelector('tagz:marts')).message).toContain("did you mean 'tag'");
  });

  it('--exclude takes the same operators', () => {
    expect(select(['stg_encounters+'], ['stg_encounters+1'])).toEqual(select(['stg_encounters+']).filter((x) => !select(['stg_encounters+1']).includes(x)));
  });
});
