import { protect } from '../execute/strategies/relation-write.ts';
import type { MaterializationStrategy } from '../execute/strategy.ts';
import type { RunCapture } from './run-capture.ts';

/**
 * Captured sources (sources.yml `capture:`) as a materialization: each practice's extract from
 * its own watermark into raw. Registered by the run that owns the OLTP connections; the raw
 * table gets its row-level security in the transaction that creates it.
 */
export function captureStrategy(capture: RunCapture): MaterializationStrategy<'capture'> {
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
