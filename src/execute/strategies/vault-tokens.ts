import { Codes, TsformError } from '../../errors.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { buildVaultTokens } from '../vault.ts';
import { rebuildSlicesInFull, researchSplit, withheldNote } from '../research-withheld.ts';
import { departedPractices, practicesLinkedThrough, withdrawLinkedSlices } from '../departed-linkage.ts';
import { linkageNotes } from '../vault-linkage.ts';

// One resolution at a time per vault in this process: each reads every practice's records, and
// two at once would each miss the other's new records (DuckDB has no table lock to wait on).
const running = new Map<string, Promise<unknown>>();

// Projects (compiled manifests) whose departed practices a vault build of this process has
// forgotten: tenants.yml is fixed for a manifest, so later batches need not scan the vault again
// for them (two scans of the vault per batch, at 100 batches a fleet).
const forgotten = new WeakSet<object>();

function oneAtATime<T>(vault: string, work: () => Promise<T>): Promise<T> {
  const before = running.get(vault) ?? Promise.resolve();
  const next = before.catch(() => undefined).then(work);
  running.set(vault, next);
  return next.finally(() => {
    if (running.get(vault) === next) running.delete(vault);
  });
}

/** The vault's token map: per practice, match keys for every patient of the identity model, resolved with all practices' records into person tokens. */
export const vaultTokensStrategy: MaterializationStrategy<'vault_tokens'> = {
  kind: 'vault_tokens',
  async buildSlice(ctx, node, tenants) {
    const identity = ctx.manifest.models[node.identity_model];
    if (!ctx.vaultKey || !ctx.privacy || !identity) {
      throw new TsformError(Codes.vaultKey, `${node.name}: the vault needs privacy: in tsform.yml and its identity model '${node.identity_model}'`);
    }
    const key = await ctx.vaultKey();
    const privacy = ctx.privacy;
    const { withheld } = researchSplit(ctx.manifest, tenants);
    const { rows, linkage, linkedNote } = await oneAtATime(`${node.schema}.${node.identifier}`, async () => {
      const found = forgotten.has(ctx.manifest) ? [] : await departedPractices(ctx.adapter, ctx.manifest, node, ctx.tenantColumn);
      const departed = [...new Set([...withheld, ...found])];
      // Before the vault forgets them (departed-linkage.ts): a crash in between removes the same slices again.
      const linked = await practicesLinkedThrough(ctx.adapter, node, ctx.tenantColumn, departed);
      const linkedNote = await withdrawLinkedSlices(ctx, linked);
      const built = await ctx.adapter.transaction(
        async (s) => {
          // Several processes (or machines) may run practices of one PostgreSQL warehouse.
          if (ctx.adapter.kind === 'postgres') await s.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tsform.linkage', node.schema]);
          return buildVaultTokens(s, node, identity, tenants, ctx.tenantColumn, privacy, key, departed);
        },
        { timeoutMs: ctx.nodeTimeoutMs },
      );
      forgotten.add(ctx.manifest);
      // After the commit (on DuckDB the meta schema is another file): a crash in between leaves a slice merged into once more.
      await rebuildSlicesInFull(ctx, built.linkage.retokenizedPractices);
      return { ...built, linkedNote };
    });
    const notes = [...linkageNotes(linkage), ...(linkedNote ? [linkedNote] : [])];
    return { rows, notes: withheld.length > 0 ? [...notes, withheldNote(withheld.length, 'no token or linkage record kept for them')] : notes };
  },
};
