import type { MaterializationStrategy } from '../strategy.ts';

/**
 * `materialized: ephemeral`: never a relation. The compiler inlines it as a CTE into each model
 * that reads it, and the plan has no step for it, so there is nothing to build.
 */
export const ephemeralStrategy: MaterializationStrategy<'ephemeral'> = { kind: 'ephemeral' };

/** A source without a loader: someone else's table, read where it is (it is a step only for its tests). */
export const externalSourceStrategy: MaterializationStrategy<'external_source'> = { kind: 'external_source' };
