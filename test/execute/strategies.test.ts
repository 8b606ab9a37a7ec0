import { describe, expect, it } from 'vitest';
import type { ManifestNode, ModelNode } from '../../src/artifacts/manifest.ts';
import { compileWorkspace, planWorkspace } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { defaultStrategies } from '../../src/execute/strategies/index.ts';
import { StrategyRegistry, strategyKindOf, type BuildContext, type MaterializationStrategy, type StrategyKind } from '../../src/execute/strategy.ts';
import { captureStrategy } from '../../src/execute/strategies/capture.ts';
import type { RunCapture } from '../../src/ingest/run-capture.ts';
import { manifestNodes } from '../../src/artifacts/manifest.ts';
import { modelVersion } from '../../src/warehouse/relation-versions.ts';
import { fixtureDir, REPO_ROOT } from '../fixtures/project-fixture.ts';

/** The runner only asks the registry; these tests need no database. */
const ctx = { researchSchema: 'research' } as unknown as BuildContext;
const noCapture = {} as RunCapture;

describe('materialization strategies', () => {
  it.each([
    ['the demo project', REPO_ROOT],
    ['the capture project', fixtureDir('capture-project')],
  ])('every step of %s has a registered strategy with the build its plan step needs', (_name, dir) => {
    const ws = compileWorkspace(dir, { write: false });
    const registry = defaultStrategies().register(captureStrategy(noCapture));
    const nodes = manifestNodes(ws.manifest);
    const plan = planWorkspace(ws, { command: 'build' });
    const kinds = new Set<StrategyKind>();
    for (const step of plan.steps.filter((s) => s.build)) {
      const { kind } = strategyKindOf(nodes[step.id]!, ws.project.config.schemas.research);
      kinds.add(kind);
      const strategy = registry.get(kind);
      expect(strategy, `${step.id}: ${kind}`).toBeDefined();
      expect(typeof (step.fanOut ? strategy!.buildSlice : strategy!.buildWhole), `${step.id}: ${kind}`).toBe('function');
    }
    expect(kinds.size).toBeGreaterThan(1);
  });

  it('places each node kind (and each materialization of a model) with one strategy', () => {
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const research = ws.project.config.schemas.research;
    const byKind = (n: ManifestNode) => strategyKindOf(n, research).kind;
    const nodes = Object.values(manifestNodes(ws.manifest));
    expect(new Set(nodes.filter((n) => n.kind === 'seed').map(byKind))).toEqual(new Set(['seed']));
    expect(byKind(ws.manifest.builtins.tenants!)).toBe('tenants');
    expect(new Set(nodes.filter((n) => n.kind === 'vault').map(byKind))).toEqual(new Set(['vault_tokens']));
    expect(new Set(nodes.filter((n) => n.kind === 'source').map(byKind))).toEqual(new Set(['csv_source']));
    const models = Object.values(ws.manifest.models);
    for (const m of models) {
      const expected = m.schema === research && m.scope !== 'tenant' && (m.materialized === 'table' || m.materialized === 'incremental') ? 'published_research' : m.materialized;
      expect(byKind(m), m.name).toBe(expected);
    }
    expect(models.some((m) => byKind(m) === 'published_research')).toBe(true);
  });

  it('dispatches by kind to whatever strategy is registered: the runner knows none of them', async () => {
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const calls: string[] = [];
    const recording = (kind: 'table' | 'view'): MaterializationStrategy<typeof kind> => ({
      kind,
      buildSlice: async (_c, node, tenants) => (calls.push(`${kind} slice ${node.name} ${tenants.join(',')}`), { rows: new Map(tenants.map((t) => [t, 1])), notes: [] }),
      buildWhole: async (_c, node) => (calls.push(`${kind} whole ${node.name}`), { rows: new Map([[null, 1]]), notes: [] }),
    });
    const registry = new StrategyRegistry().register(recording('table')).register(recording('view'));
    const table = Object.values(ws.manifest.models).find((m) => m.materialized === 'table' && m.scope === 'tenant')!;
    const view = Object.values(ws.manifest.models).find((m) => m.materialized === 'view')!;
    const run = { ...ctx, manifest: ws.manifest };
    await registry.build(run, table, ['p_1', 'p_2']);
    await registry.build(run, view, null);
    expect(calls).toEqual([`table slice ${table.name} p_1,p_2`, `view whole ${view.name}`]);
  });

  it('a kind without a strategy, or a build the strategy does not do, fails with TSF408 naming the node', async () => {
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const registry = defaultStrategies();
    const source = Object.values(ws.manifest.sources)[0]!;
    const captured = { ...source, capture: { kind: 'csv_landing' as const, path: 'landing', layout: 'practice_column' as const, key: ['id'], deleted_at: 'deleted_at' } };
    await expect(registry.build(ctx, captured, ['p_1'])).rejects.toMatchObject({ code: Codes.unsupported, message: expect.stringContaining(`${source.name} is built by the 'capture' strategy`) });
    // A CSV source is loaded per batch of practices, never once for all.
    await expect(registry.build(ctx, source, null)).rejects.toMatchObject({ code: Codes.unsupported, message: expect.stringContaining('builds per practice') });
    const view = Object.values(ws.manifest.models).find((m) => m.materialized === 'view')!;
    await expect(registry.build({ ...ctx, manifest: ws.manifest }, view, ['p_1'])).rejects.toMatchObject({ code: Codes.unsupported, message: expect.stringContaining('builds once per run') });
  });

  it('an incremental model whose manifest lacks its is_incremental rendering is refused, never built from an empty text', async () => {
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const inc = Object.values(ws.manifest.models).find((m) => m.materialized === 'incremental' && m.scope === 'tenant')!;
    const { compiled_incremental_sql: _dropped, ...broken } = inc;
    const seen: string[] = [];
    const adapter = {
      describe: async () => ({ kind: 'table', columns: [] }),
      // deletion epochs: none recorded; the slice's version is the model's: the practice merges
      query: async (sql: string) =>
        sql.includes('relation_versions') ? { rows: [{ tenant: 'p_1', version: modelVersion(ws.manifest, broken as ModelNode) }], columns: ['tenant', 'version'] } : { rows: [], columns: [] },
      transaction: async (fn: (s: unknown) => Promise<unknown>) =>
        fn({ query: async (sql: string) => (seen.push(sql), { rows: [{ present: 1 }], columns: ['present'] }) }),
    };
    const c = { ...ctx, adapter, manifest: ws.manifest, metaSchema: 'tsform_meta', tenantColumn: 'practice_id', fullRefresh: false } as unknown as BuildContext;
    await expect(defaultStrategies().build(c, broken, ['p_1'])).rejects.toMatchObject({ code: Codes.unsupported, message: expect.stringContaining('no is_incremental rendering') });
    expect(seen.filter((q) => !q.startsWith('SELECT 1 AS present'))).toEqual([]);
  });
});
