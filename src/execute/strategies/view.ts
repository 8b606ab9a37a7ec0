import { quoteRelation } from '../../sql/quote.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { protect } from './relation-write.ts';

/** `materialized: view`: one view over every practice, replaced each run; its filter comes from RLS and its readers. */
export const viewStrategy: MaterializationStrategy<'view'> = {
  kind: 'view',
  async buildWhole(ctx, node) {
    const rel = quoteRelation(node.schema, node.identifier);
    const existing = await ctx.adapter.describe(node.schema, node.identifier);
    return ctx.adapter.transaction(async (s) => {
      if (existing?.kind === 'table') await s.query(`DROP TABLE ${rel}`);
      else if (existing) await s.query(`DROP VIEW ${rel}`);
      await s.query(`CREATE VIEW ${rel} AS\n${node.compiled_sql}`);
      await protect(ctx, s, node);
      return { rows: new Map(), notes: [] };
    }, { timeoutMs: ctx.nodeTimeoutMs });
  },
};
