import { describe, expect, it } from 'vitest';
import { Codes, TsformError } from '../../src/errors.ts';
import { buildDag } from '../../src/graph/dag.ts';
import { selectNodes, selectTenants } from '../../src/graph/select.ts';
import { batchTenants, buildPlan, isolateTenants, type Command, type Plan } from '../../src/plan/plan.ts';
import type { Tenant } from '../../src/project/types.ts';
import { compileDir, REPO_ROOT } from '../fixtures/project-fixture.ts';

const { project, manifest } = compileDir(REPO_ROOT);
const dag = buildDag(manifest).dag!;
const all = project.tenants;

function plan(opts: { command?: Command; select?: string[]; tenants?: string[]; fullRefresh?: boolean; batchSize?: number } = {}): Plan {
  return buildPlan(manifest, dag, {
    command: opts.command ?? 'run',
    selected: selectNodes(dag, opts.select, undefined),
    tenants: selectTenants(all, opts.tenants),
    allTenantCount: all.length,
    batchSize: opts.batchSize ?? project.config.batchSize,
    fullRefresh: opts.fullRefresh ?? false,
  });
}

function tenant(id: string, tags: string[] = []): Tenant {
  return { id, name: id, timezone: 'UTC', readyBy: '07:00', tags, pool: 'steady', research: true, file: 'tenants.yml', line: 1 };
}

describe('plan node count', () => {
  const fanned = [
    'practice_chronic_panel',
    'practice_claims_outstanding',
    'practice_daily_activity',
    'provider_panel',
    ...['claims', 'conditions', 'encounters', 'medications', 'patients', 'procedures', 'providers'].flatMap((t) => [`source:ehr.${t}`, `stg_${t}`]),
  ].sort();

  it('run over every practice: (fanned steps × practices) + once steps', () => {
    const p = plan();
    const fannedSteps = p.steps.filter((s) => s.fanOut);
    const onceSteps = p.steps.filter((s) => !s.fanOut);
    expect(fannedSteps.map((s) => s.id)).toEqual(expect.arrayContaining(fanned));
    // The tenant-scoped view is one relation over every practice; the tenants relation is shared.
    expect(onceSteps.map((s) => s.id)).toEqual(expect.arrayContaining(['practice_patient_roster', 'tenants']));
    for (const s of fannedSteps) expect(s.scope === 'tenant' && s.materialized !== 'view', s.id).toBe(true);
    for (const s of onceSteps) expect(s.scope !== 'tenant' || s.materialized === 'view', s.id).toBe(true);
    expect(p.tenants).toHaveLength(221);
    expect(p.nodeCount).toBe(fannedSteps.length * 221 + onceSteps.length);
    expect(p.nodeCount).toBeGreaterThanOrEqual(fanned.length * 221 + 2);
  });

  it('scales with the selected practices only', () => {
    const every = plan();
    const p = plan({ tenants: ['tag:ci-sample'] });
    expect(p.tenants).toHaveLength(5);
    expect(p.steps).toEqual(every.steps);
    const fannedCount = p.steps.filter((s) => s.fanOut).length;
    expect(p.nodeCount).toBe(fannedCount * 5 + (p.steps.length - fannedCount));
  });

  it('ephemeral models are not steps; their readers wait for what they read', () => {
    const p = plan();
    expect(p.steps.map((s) => s.id)).not.toContain('int_encounters_local');
    const pda = p.steps.find((s) => s.id === 'practice_daily_activity')!;
    expect(pda.upstream.sort()).toEqual(['stg_encounters', 'tenants']);
  });

  it('incremental models run one practice per statement unless their high-water mark is correlated (batch_incremental)', () => {
    const p = plan();
    expect(p.steps.filter((s) => s.materialized === 'incremental').map((s) => s.id)).toEqual(['stg_encounters']);
    // stg_encounters correlates its watermark on practice_id and says batch_incremental=true.
    expect(p.steps.filter((s) => s.singleTenant)).toEqual([]);
  });

  it('run: steps come after the steps they read, and upstream names only planned steps', () => {
    const p = plan();
    const pos = new Map(p.steps.map((s, i) => [s.id, i]));
    for (const s of p.steps) {
      for (const u of s.upstream) {
        expect(pos.has(u), `${s.id} waits for unplanned ${u}`).toBe(true);
        expect(pos.get(u)!, `${u} before ${s.id}`).toBeLessThan(pos.get(s.id)!);
      }
    }
    expect(p.steps.find((s) => s.id === 'stg_encounters')!.upstream).toEqual(['source:ehr.encounters']);
  });

  it('build: a relationships test also waits for the model it points at', () => {
    const p = plan({ command: 'build' });
    const stg = p.steps.find((s) => s.id === 'stg_encounters')!;
    expect(stg.tests).toContain('relationships_stg_encounters_patient_id');
    expect(stg.upstream.sort()).toEqual(['encounter_classes', 'source:ehr.encounters', 'stg_patients', 'stg_providers']);
  });

  it('seed builds only seeds and the tenants relation; test builds nothing', () => {
    const seed = plan({ command: 'seed' }).steps;
    expect(seed.map((s) => s.id)).toEqual(expect.arrayContaining(['encounter_classes', 'tenants']));
    for (const s of seed) expect(['seed', 'tenants'], s.id).toContain(s.kind);
    const t = plan({ command: 'test' });
    expect(t.steps.every((s) => !s.build && s.tests.length > 0)).toBe(true);
  });

  it('is plain, JSON-serializable data', () => {
    const p = plan({ tenants: ['tag:ci-sample'] });
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });
});

describe('batches', () => {
  it('demo: practices tagged large run alone, the rest in batches of at most 50', () => {
    const p = plan();
    const large = new Set(all.filter((t) => t.tags.includes('large')).map((t) => t.id));
    expect(large.size).toBe(10);
    for (const b of p.batches) {
      if (b.some((id) => large.has(id))) expect(b).toHaveLength(1);
      else expect(b.length).toBeLessThanOrEqual(50);
    }
    expect(p.batches.filter((b) => b.length === 1 && large.has(b[0]!))).toHaveLength(10);
    // Every selected practice is in exactly one batch.
    expect(p.batches.flat().sort()).toEqual(all.map((t) => t.id).sort());
  });

  it('demo: batches are sorted by id and small batches are runs of neighbouring ids', () => {
    const p = plan();
    expect(p.tenants).toEqual([...p.tenants].sort());
    const small = all.filter((t) => !t.tags.includes('large')).map((t) => t.id).sort();
    const smallBatches = p.batches.filter((b) => b.length > 1 || !all.find((t) => t.id === b[0])!.tags.includes('large'));
    for (const b of smallBatches) expect(b).toEqual([...b].sort());
    expect(smallBatches.flat()).toEqual(small);
    const sizes = smallBatches.map((b) => b.length);
    expect(sizes.slice(0, -1).every((n) => n === 50)).toBe(true);
    expect(sizes.at(-1)).toBe(small.length - 50 * (sizes.length - 1));
  });

  it('batchTenants: sorts by id, isolates large practices, splits the rest by size', () => {
    const ts = [tenant('e'), tenant('b', ['large']), tenant('a'), tenant('d'), tenant('c'), tenant('f', ['large', 'x'])];
    const batches = batchTenants(ts, 2);
    expect(batches.flat().sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(batches).toContainEqual(['b']);
    expect(batches).toContainEqual(['f']);
    expect(batches.filter((b) => !['b', 'f'].includes(b[0]!))).toEqual([['a', 'c'], ['d', 'e']]);
  });

  it('isolateTenants: the named practices leave their batches, alone in the same pool; the rest keep theirs', () => {
    const p = plan({ batchSize: 3, tenants: all.slice(0, 8).map((t) => t.id) });
    const [a, b] = [p.batches[0]![1]!, p.batches[1]![0]!];
    const q = isolateTenants(p, new Set([a, b]));
    expect(q.batches.flat().sort()).toEqual(p.batches.flat().sort());
    expect(q.batches).toContainEqual([a]);
    expect(q.batches).toContainEqual([b]);
    expect(q.batches).toContainEqual(p.batches[0]!.filter((t) => t !== a));
    expect(q.batches.map((x) => x[0]!)).toEqual([...q.batches.map((x) => x[0]!)].sort());
    q.batches.forEach((batch, i) => expect(q.batchPools[i]).toBe(p.batchPools[p.batches.findIndex((x) => x.includes(batch[0]!))]));
    expect(isolateTenants(p, new Set())).toBe(p);
  });

  it('batchTenants: nothing selected → no batches; batch size 1 → one practice each', () => {
    expect(batchTenants([], 50)).toEqual([]);
    expect(batchTenants([tenant('b'), tenant('a')], 1)).toEqual([['a'], ['b']]);
  });
});

describe('--full-refresh', () => {
  function thrown(fn: () => unknown): TsformError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(TsformError);
      return e as TsformError;
    }
    throw new Error('expected a TsformError');
  }

  it('with a subset of practices rebuilds only their slices (issue 15: it used to be refused, TSF304)', () => {
    const p = plan({ fullRefresh: true, tenants: ['tag:ci-sample'] });
    expect(p.fullRefresh).toBe(true);
    expect(p.fullRefreshScope).toBe('selected');
    expect(p.tenants).toHaveLength(5);
  });

  it('with every practice drops and rebuilds', () => {
    const p = plan({ fullRefresh: true });
    expect(p.fullRefresh).toBe(true);
    expect(p.fullRefreshScope).toBe('all');
    expect(plan({}).fullRefreshScope).toBeUndefined();
  });

  it('with a subset is fine when nothing selected is a per-practice table (a view is rebuilt whole)', () => {
    const p = plan({ fullRefresh: true, tenants: ['tag:ci-sample'], select: ['practice_patient_roster'] });
    expect(p.steps.map((s) => s.id)).toEqual(['practice_patient_roster']);
  });
});
