import type { Adapter } from '../adapters/adapter.ts';
import type { CsvRunLoads } from './csv-run-loads.ts';
import {
  unknownNode,
  type Manifest,
  type ManifestCapture,
  type ManifestNode,
  type ModelNode,
  type SeedNode,
  type SourceNode,
  type TenantsNode,
  type VaultNode,
} from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PrivacyConfig, Tenant } from '../project/types.ts';
import type { PolicyContext } from './apply-policies.ts';
import { afterGlobalResearchBuild, beforeGlobalResearchBuild, isGlobalResearchRelation } from './research-builds.ts';
import { holdsResearchSlices, removedDetail, researchSplit, withdrawSlices, withheldNote } from './research-withheld.ts';
import { refuseSharedSourcesWithPractices } from './shared-sources.ts';
import type { RowsByTenant } from './slice-replace.ts';

/**
 * How a node becomes a relation (dbt's materializations, SQLMesh's evaluation strategies): one
 * module per kind under strategies/, looked up by `strategyKindOf`. The runner knows none of
 * them; a new materialization is one new module registered in strategies/index.ts (or, like
 * capture, by the layer that owns it).
 */
export type StrategyKind =
  | 'view'
  | 'table'
  | 'incremental'
  | 'ephemeral'
  | 'published_research'
  | 'seed'
  | 'tenants'
  | 'vault_tokens'
  | 'csv_source'
  | 'capture'
  | 'external_source';

export type CsvSourceNode = SourceNode & { csv_path: string };
export type CapturedSourceNode = SourceNode & { capture: ManifestCapture };

/** The node type each strategy builds. */
export interface NodeFor {
  view: ModelNode;
  table: ModelNode;
  incremental: ModelNode;
  ephemeral: ModelNode;
  published_research: ModelNode;
  seed: SeedNode;
  tenants: TenantsNode;
  vault_tokens: VaultNode;
  csv_source: CsvSourceNode;
  capture: CapturedSourceNode;
  external_source: SourceNode;
}

/** A node with the strategy that builds it. */
export type Resolved = { [K in StrategyKind]: { kind: K; node: NodeFor[K] } }[StrategyKind];

/** What every strategy may use; built once per run by execute(). */
export interface BuildContext {
  adapter: Adapter;
  /** Row-level security to put on relations as they are created (PostgreSQL with policies). */
  policy?: PolicyContext;
  manifest: Manifest;
  projectRoot: string;
  metaSchema: string;
  tenantColumn: string;
  tenants: readonly Tenant[];
  fullRefresh: boolean;
  /**
   * A `--full-refresh` over every practice (full-refresh.ts): its id in the pending record, so
   * that the first slice written of each relation creates the table again, keeping the other
   * practices' rows. Set by the runner, or by a distributed refresh's coordinator for its jobs.
   */
  fullRefreshId?: string;
  /** Per-node statement timeout. */
  nodeTimeoutMs?: number;
  /** The vault key, resolved once per run when a vault node runs (privacy: in tsform.yml). */
  vaultKey?: () => Promise<{ key: Buffer; fingerprint: string }>;
  privacy?: PrivacyConfig;
  /** Relations in this schema are published research: k-anonymous or not written at all. */
  researchSchema?: string;
  /** CSV sources parsed once per run (csv-run-loads.ts); without it each batch parses its file. */
  csvLoads?: CsvRunLoads;
}

export interface BuildOutcome {
  rows: RowsByTenant;
  /** Counted problems that are not failures (e.g. source rows of unknown practices). */
  notes: string[];
  /**
   * The build used its time slice and has work left (a capture backlog: what it did is
   * committed). The runner runs the node again after every practice with less service.
   */
  workLeft?: boolean;
  /**
   * Practices outside this build whose slices of the node lost rows in it (a row that moved to a
   * practice built here leaves its old practice's raw then: that practice's own extract never
   * reads it again). Their downstream, if built earlier in the run, is built again at its end.
   */
  changedElsewhere?: readonly string[];
}

export interface MaterializationStrategy<K extends StrategyKind = StrategyKind> {
  readonly kind: K;
  /** A fanned-out step (plan.ts): the slice of these practices, replaced atomically. */
  buildSlice?(ctx: BuildContext, node: NodeFor[K], tenants: readonly string[]): Promise<BuildOutcome>;
  /** A step built once per run: shared and global relations, views. */
  buildWhole?(ctx: BuildContext, node: NodeFor[K]): Promise<BuildOutcome>;
}

/** Which strategy builds a node. Exhaustive: a new node kind does not type-check until it is placed here. */
export function strategyKindOf(node: ManifestNode, researchSchema: string | undefined): Resolved {
  switch (node.kind) {
    case 'model':
      return { kind: modelStrategy(node, researchSchema), node };
    case 'seed':
      return { kind: 'seed', node };
    case 'tenants':
      return { kind: 'tenants', node };
    case 'vault':
      return { kind: 'vault_tokens', node };
    case 'source':
      if (node.capture) return { kind: 'capture', node: { ...node, capture: node.capture } };
      if (node.csv_path !== undefined) return { kind: 'csv_source', node: { ...node, csv_path: node.csv_path } };
      return { kind: 'external_source', node };
    default:
      return unknownNode(node);
  }
}

function modelStrategy(node: ModelNode, researchSchema: string | undefined): 'view' | 'table' | 'incremental' | 'ephemeral' | 'published_research' {
  switch (node.materialized) {
    case 'view':
    case 'ephemeral':
      return node.materialized;
    case 'table':
    case 'incremental':
      // Built once into the research schema: what leaves the practices' slices is gated first.
      return node.schema === researchSchema && node.scope !== 'tenant' ? 'published_research' : node.materialized;
    default: {
      const never: never = node.materialized;
      throw new Error(`unknown materialization ${JSON.stringify(never)}`);
    }
  }
}

/** Strategies by kind. execute() starts from strategies/index.ts; other layers register theirs. */
export class StrategyRegistry {
  private readonly byKind: { [K in StrategyKind]?: MaterializationStrategy<K> } = {};

  register<K extends StrategyKind>(strategy: MaterializationStrategy<K>): this {
    (this.byKind as Record<K, MaterializationStrategy<K>>)[strategy.kind] = strategy;
    return this;
  }

  get<K extends StrategyKind>(kind: K): MaterializationStrategy<K> | undefined {
    return this.byKind[kind] as MaterializationStrategy<K> | undefined;
  }

  /**
   * Builds a node with its strategy: the slice of `tenants`, or the whole relation when `tenants`
   * is null. A research slice is built for the practices that take part in research only, and the
   * others' slices are emptied first (research-withheld.ts): no strategy can write them. A stored
   * global relation built from research slices is built only from slices and relations that hold
   * nothing of a withheld practice (research-builds.ts). Nothing reads a shared source whose
   * relation holds the tenant column (shared-sources.ts).
   */
  async build(ctx: BuildContext, node: ManifestNode, tenants: readonly string[] | null): Promise<BuildOutcome> {
    const resolved = strategyKindOf(node, ctx.researchSchema);
    await refuseSharedSourcesWithPractices(ctx, node);
    if (tenants === null && isGlobalResearchRelation(ctx.manifest, node)) {
      const notes = await beforeGlobalResearchBuild(ctx, node);
      const built = await this.run(resolved, ctx, tenants);
      await afterGlobalResearchBuild(ctx, node);
      return { ...built, notes: [...notes, ...built.notes] };
    }
    if (tenants === null || !holdsResearchSlices(node)) return this.run(resolved, ctx, tenants);
    const { taking, withheld } = researchSplit(ctx.manifest, tenants);
    if (withheld.length === 0) return this.run(resolved, ctx, tenants);
    const removed = await withdrawSlices(ctx, node, withheld);
    const built = taking.length > 0 ? await this.run(resolved, ctx, taking) : { rows: new Map(), notes: [] };
    return { ...built, rows: new Map([...built.rows, ...removed.rows]), notes: [...built.notes, withheldNote(withheld.length, removedDetail(removed.removed))] };
  }

  private run<K extends StrategyKind>(r: { kind: K; node: NodeFor[K] }, ctx: BuildContext, tenants: readonly string[] | null): Promise<BuildOutcome> {
    const strategy = this.get(r.kind);
    if (!strategy) throw new TsformError(Codes.unsupported, `${r.node.name} is built by the '${r.kind}' strategy, which this run was started without`);
    if (tenants === null) {
      if (!strategy.buildWhole) throw new TsformError(Codes.unsupported, `${r.node.name}: the '${r.kind}' strategy builds per practice, not once per run`);
      return strategy.buildWhole(ctx, r.node);
    }
    if (!strategy.buildSlice) throw new TsformError(Codes.unsupported, `${r.node.name}: the '${r.kind}' strategy builds once per run, not per practice`);
    return strategy.buildSlice(ctx, r.node, tenants);
  }
}
