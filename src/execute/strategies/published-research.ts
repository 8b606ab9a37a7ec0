import type { MaterializationStrategy } from '../strategy.ts';
import { describePublication, gatePublication } from '../privacy-gates.ts';
import { writeWholeIncremental } from './model-sql.ts';
import { writeWhole, type StagedCheck } from './relation-write.ts';

/**
 * A table or incremental model in the research schema, built once from every practice: small
 * cells suppressed, k-anonymity and the leak scan checked on the staged rows. A failure
 * publishes nothing (the transaction rolls back).
 */
export const publishedResearchStrategy: MaterializationStrategy<'published_research'> = {
  kind: 'published_research',
  buildWhole(ctx, node) {
    const incremental = node.materialized === 'incremental';
    const privacy = ctx.privacy;
    const gate: StagedCheck | undefined = privacy && (async (s, stageTable) => [`published with ${describePublication(await gatePublication(s, stageTable, node, ctx.manifest, privacy))}`]);
    if (incremental) return writeWholeIncremental(ctx, node, gate);
    return writeWhole(ctx, node, async () => ({ select: node.compiled_sql }), { reshape: true, mergeWhenSameShape: false }, gate);
  },
};
