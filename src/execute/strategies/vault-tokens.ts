import { Codes, TsformError } from '../../errors.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { buildVaultTokens } from '../vault.ts';

/** The vault's token map: per practice, a keyed token and a date shift for every patient of the identity model. */
export const vaultTokensStrategy: MaterializationStrategy<'vault_tokens'> = {
  kind: 'vault_tokens',
  async buildSlice(ctx, node, tenants) {
    const identity = ctx.manifest.models[node.identity_model];
    if (!ctx.vaultKey || !ctx.privacy || !identity) {
      throw new TsformError(Codes.vaultKey, `${node.name}: the vault needs privacy: in tsform.yml and its identity model '${node.identity_model}'`);
    }
    const key = await ctx.vaultKey();
    const privacy = ctx.privacy;
    const rows = await ctx.adapter.transaction((s) => buildVaultTokens(s, node, identity, tenants, ctx.tenantColumn, privacy, key), { timeoutMs: ctx.nodeTimeoutMs });
    return { rows, notes: [] };
  },
};
