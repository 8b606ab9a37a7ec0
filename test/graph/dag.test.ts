import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { buildDag, downstreamOf, upstreamOf } from '../../src/graph/dag.ts';
import { compileDir, fixtureDir, MINIMAL_PROJECT, REPO_ROOT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

describe('cycles', () => {
  it('a → b → c → a compiles statically, then buildDag reports TSF207 with the path', () => {
    const { diagnostics, manifest } = compileDir(fixtureDir('cycle'));
    expect(diagnostics).toEqual([]);
    const built = buildDag(manifest);
    expect(built.dag).toBeUndefined();
    expect(built.diagnostics).toHaveLength(1);
    const d = built.diagnostics[0]!;
    expect(d.code).toBe(Codes.cycle);
    // Data flows a → b → c → a (b refs a, c refs b, a refs c); any rotation names the same cycle.
    const rotations = ['a -> b -> c -> a', 'b -> c -> a -> b', 'c -> a -> b -> c'];
    expect(rotations.some((r) => d.message.includes(r)), d.message).toBe(true);
    expect(d.message).not.toContain('outside');
    expect(['models/a.sql', 'models/b.sql', 'models/c.sql']).toContain(d.file);
  });

  it('a model that refs itself is a cycle of one', () => {
    const dir = writeTempProject({ ...MINIMAL_PROJECT, 'models/selfish.sql': 'select * from {{ref "selfish"}}\n' });
    const { diagnostics, manifest } = compileDir(dir);
    expect(diagnostics).toEqual([]);
    const built = buildDag(manifest);
    expect(built.diagnostics.map((d) => [d.code, d.file])).toEqual([[Codes.cycle, 'models/selfish.sql']]);
    expect(built.diagnostics[0]!.message).toContain('selfish -> selfish');
  });

  it('finds a cycle deep in a long chain without recursion limits', () => {
    // Built in memory: buildDag reads only the manifest, and 3,000 files on disk would be slow.
    const { manifest: base } = compileDir(writeTempProject({ ...MINIMAL_PROJECT, 'models/m.sql': 'select 1 as practice_id\n' }));
    const template = base.models.m!;
    const name = (i: number) => `m${String(i).padStart(4, '0')}`;
    const models = Object.fromEntries(
      Array.from({ length: 3000 }, (_, i) => [name(i), { ...template, name: name(i), path: `models/${name(i)}.sql`, depends_on: [name((i + 2999) % 3000)] }]),
    );
    const built = buildDag({ ...base, models });
    expect(built.diagnostics.map((d) => d.code)).toEqual([Codes.cycle]);
    expect(built.diagnostics[0]!.message.split(' -> ')).toHaveLength(3001);
  });
});

describe('the demo DAG', () => {
  const { manifest } = compileDir(REPO_ROOT);
  const { dag, diagnostics } = buildDag(manifest);

  it('has one node per relation and no cycle', () => {
    expect(diagnostics).toEqual([]);
    expect(dag!.graph.order).toBe(Object.keys(manifest.models).length + Object.keys(manifest.seeds).length + Object.keys(manifest.builtins).length + Object.keys(manifest.sources).length);
  });

  it('orders every node after its dependencies', () => {
    const pos = new Map(dag!.order.map((id, i) => [id, i]));
    expect(pos.size).toBe(dag!.graph.order);
    dag!.graph.forEachEdge((_e, _a, from, to) => expect(pos.get(from)!, `${from} before ${to}`).toBeLessThan(pos.get(to)!));
  });

  it('walks upstream and downstream', () => {
    expect([...upstreamOf(dag!.graph, ['practice_daily_activity'])].sort()).toEqual(['int_encounters_local', 'source:ehr.encounters', 'stg_encounters', 'tenants']);
    expect(downstreamOf(dag!.graph, ['stg_claims'])).toContain('practice_claims_outstanding');
    expect(downstreamOf(dag!.graph, ['stg_claims'])).not.toContain('stg_claims');
  });
});
