import { StrategyRegistry } from '../strategy.ts';
import { csvSourceStrategy } from './csv-source.ts';
import { ephemeralStrategy, externalSourceStrategy } from './ephemeral.ts';
import { incrementalStrategy } from './incremental.ts';
import { publishedResearchStrategy } from './published-research.ts';
import { seedStrategy } from './seed.ts';
import { tableStrategy } from './table.ts';
import { tenantsStrategy } from './tenants-relation.ts';
import { vaultTokensStrategy } from './vault-tokens.ts';
import { viewStrategy } from './view.ts';

/** Every strategy execute/ owns. Capture (ingest/) registers its own on top. */
export function defaultStrategies(): StrategyRegistry {
  return new StrategyRegistry()
    .register(viewStrategy)
    .register(tableStrategy)
    .register(incrementalStrategy)
    .register(ephemeralStrategy)
    .register(publishedResearchStrategy)
    .register(seedStrategy)
    .register(tenantsStrategy)
    .register(vaultTokensStrategy)
    .register(csvSourceStrategy)
    .register(externalSourceStrategy);
}
