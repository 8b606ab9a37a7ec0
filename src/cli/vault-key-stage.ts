import type { Adapter } from '../adapters/adapter.ts';
import type { Clock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import { initVault, storedVaultFingerprint } from '../execute/vault.ts';
import type { Plan } from '../plan/plan.ts';
import type { Env } from './env.ts';
import type { Workspace } from './workspace.ts';

/**
 * The run's vault key, settled before any node runs (issue 15): without it every practice's
 * vault node would fail alike, and the research layer would then miss its inputs.
 *
 * - The plan builds no vault node, the vault has a key, or `$<key_env>` supplies one: nothing
 *   to do here (the vault node checks the key and records an environment key's fingerprint).
 * - DuckDB, the embedded default: the first run creates the key in the vault file, as
 *   `tsform vault init` would, and says so with its fingerprint (never the key). One command
 *   runs the main job on a laptop.
 * - Any other target: a key is a steward's deliberate act, so the run stops with one TSF413
 *   naming `tsform vault init`, before any node.
 *
 * Returns the run's notices.
 */
export async function settleVaultKey(ws: Workspace, plan: Plan, adapter: Adapter, run: { env: Env; clock: Clock; target: string }): Promise<string[]> {
  const privacy = ws.project.config.privacy;
  if (!privacy || !plan.steps.some((s) => s.build && s.kind === 'vault')) return [];
  if (run.env[privacy.keyEnv]) return [];
  const vaultSchema = ws.project.config.schemas.vault;
  if ((await storedVaultFingerprint(adapter, vaultSchema)) !== undefined) return [];
  if (adapter.kind !== 'duckdb') {
    throw new TsformError(
      Codes.vaultKey,
      `the vault has no key: a vault steward runs \`tsform vault init --target ${run.target}\` first (or sets $${privacy.keyEnv}); no node was run`,
    );
  }
  const created = await initVault({ adapter, vaultSchema, privacy, env: run.env, clock: run.clock });
  if (!created.created) return [];
  return [`vault key ${created.fingerprint} created on this first run (kept in the vault file only; \`tsform vault init\` prints its fingerprint again)`];
}
