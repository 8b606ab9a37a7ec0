import type { Session } from '../../adapters/adapter.ts';
import type { ManifestNode } from '../../artifacts/manifest.ts';
import type { BuildOutcome, CapturedSourceNode, MaterializationStrategy } from '../strategy.ts';
import { protect } from './relation-write.ts';

/**
 * What a run's capture does for the runner (ingest/run-capture.ts `RunCapture` is one): extract
 * one practice of one captured source into raw. Declared here, not imported, so that execute/
 * never depends on ingest/ (DESIGN §7); the CLI hands the run's capture to `captureStrategy`.
 */
export interface NodeCapture {
  captureNode(
    node: CapturedSourceNode,
    tenant: string,
    /** Row-level security of this node's raw table, in the transaction that creates it. */
    protect: (s: Session) => Promise<void>,
    /** The same for any other captured source (log-based capture creates every raw table at once). */
    protectOf: (other: ManifestNode) => (s: Session) => Promise<void>,
  ): Promise<BuildOutcome>;
}

/**
 * Captured sources (sources.yml `capture:`) as a materialization: each practice's extract from
 * its own watermark into raw. Registered by the run that owns the OLTP connections.
 */
export function captureStrategy(capture: NodeCapture): MaterializationStrategy<'capture'> {
  return {
    kind: 'capture',
    buildSlice(ctx, node, tenants) {
      // The plan gives captured sources one practice per step (plan.ts: singleTenant).
      if (tenants.length !== 1) throw new Error(`${node.name}: a captured source is built one practice at a time, got ${tenants.length}`);
      return capture.captureNode(
        node,
        tenants[0]!,
        (s) => protect(ctx, s, node),
        (other) => (s) => protect(ctx, s, other),
      );
    },
  };
}
