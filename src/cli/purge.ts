import { basename } from 'node:path';
import type { Adapter } from '../adapters/adapter.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { manifestNodes, vaultNode, type Manifest } from '../artifacts/manifest.ts';
import { systemClock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import { isGlobalResearchRelation } from '../execute/research-builds.ts';
import { holdsResearchSlices, rebuildSlicesInFull } from '../execute/research-withheld.ts';
import { resolveVaultKey } from '../execute/vault.ts';
import { resolveLinkage } from '../execute/vault-linkage.ts';
import { modelsEverBuilt } from '../execute/state-store.ts';
import { practicesLinkedThrough, withdrawLinkedSlices } from '../execute/departed-linkage.ts';
import { purgeTenant, type PurgeCount } from '../ingest/purge-tenant.ts';
import { TENANT_ID_PATTERN, type TargetConfig } from '../project/types.ts';
import { MEMBERS_TABLE, practiceRole } from '../security/render-rls.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { compileWorkspace, openAdapter, resolveTarget } from './api.ts';
import { inProject, unbuiltWarehouse } from './target.ts';
import { lockPractices } from './practice-locks.ts';
import { tenantRelations } from './capture-wiring.ts';
import type { Env } from './env.ts';
import type { Workspace } from './workspace.ts';
import { VAULT_LINKAGE_KEYS, VAULT_LINKAGE_RECORDS } from '../warehouse/vault-tables.ts';

/**
 * Offboarding: a practice removed from tenants.yml keeps its rows until this deletes them from
 * every tenant-scoped relation tsform writes, plus its watermarks and run state. A practice still
 * in tenants.yml is refused (the next run would capture it again).
 */
export async function purgeCommand(projectDir: string, target: string | undefined, tenantArgs: string[], yes: boolean, env: Env = process.env): Promise<PurgeOutcome> {
  const ids = tenantArgs.flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  if (ids.length !== 1) throw new TsformError(Codes.badTenantArgument, 'purge takes exactly one --tenant <id>');
  const tenant = ids[0]!;
  if (!TENANT_ID_PATTERN.test(tenant)) throw new TsformError(Codes.badTenantArgument, `--tenant ${JSON.stringify(tenant)} is not a valid practice id`);
  const ws = compileWorkspace(projectDir, { write: false });
  if (ws.project.tenants.some((t) => t.id === tenant)) {
    throw new TsformError(Codes.badTenantArgument, `practice ${tenant} is still in tenants.yml: remove it there first, or the next run captures it again`, { file: 'tenants.yml' });
  }
  const resolved = resolveTarget(ws.project, target);
  // No warehouse file: no rows of any practice to purge, and opening one would create it.
  if (unbuiltWarehouse(ws.project, resolved)) return { counts: [], notes: [] };
  const adapter = await openAdapter(ws.project, resolved);
  let outcome: PurgeOutcome;
  // The practice's run lock (PostgreSQL; DuckDB's file lock already keeps one process): a run
  // that started before the practice left tenants.yml writes every row back after the purge
  // otherwise (red-team, 2026-12-07: 684 staging rows, the vault tokens and the research slices).
  const locks = yes ? await lockPractices(adapter, [tenant]) : undefined;
  try {
    const { schemas } = ws.project.config;
    // First, so that a missing vault key or a linkage setting refused stops the purge with nothing deleted.
    const linkage = await purgeLinkage(adapter, ws, tenant, !yes, env);
    const built = tenantRelations(manifestNodes(ws.manifest));
    const behind = await leftBehind(adapter, ws, built);
    const counts = await purgeTenant(adapter, {
      tenant,
      relations: [...built, ...behind],
      tenantColumn: ws.project.config.tenantColumn,
      metaSchema: schemas.meta,
      separateSchemas: [schemas.research, schemas.vault],
      dryRun: !yes,
    });
    counts.push(...linkage.counts);
    if (adapter.capabilities.rowLevelSecurity && ws.project.policies) counts.push(...(await dropPracticeRole(adapter, practiceRole(ws.project.policies, tenant), ws.project.policies.securitySchema, !yes)));
    outcome = { counts, notes: [...(await stillCounted(adapter, ws.manifest, tenant, counts)), ...(linkage.note ? [linkage.note] : []), ...behindNote(behind, counts)] };
  } finally {
    await locks?.release();
    await adapter.close();
  }
  // Also when nothing was left to delete: a purge whose rewrite failed is completed by running it again.
  if (!yes) return outcome;
  const bytes = await deletedBytes(ws, resolved, tenant, outcome.counts);
  return { ...outcome, notes: [...outcome.notes, ...bytes.notes], ...(bytes.failed ? { incomplete: true } : {}) };
}

/**
 * A deleted row's bytes stay in the database's files until they are rewritten: DuckDB's files
 * are rewritten here (a copy of the live rows replaces each one); on PostgreSQL, where rewriting
 * a shared table locks every practice out of it, the note names the command for a quiet hour.
 */
async function deletedBytes(ws: Workspace, target: TargetConfig, tenant: string, counts: readonly PurgeCount[]): Promise<{ notes: string[]; failed?: true }> {
  const touched = counts.filter((c) => c.rows > 0).map((c) => c.relation);
  if (target.type !== 'duckdb') {
    if (touched.length === 0) return { notes: [] };
    return { notes: [`PostgreSQL keeps the deleted rows' bytes in its files until VACUUM reuses the space; to rewrite the tables now (each locked while it is rewritten): VACUUM (FULL) ${touched.join(', ')}`] };
  }
  return rewriteFiles(ws, target, `tsform purge --tenant ${tenant} --yes`);
}

/**
 * `tsform compact`: DuckDB's files rewritten with their live rows only, e.g. after a practice was
 * withheld from research (its vault and research rows are deleted by the run, their bytes stay).
 */
export async function compactCommand(projectDir: string, target: string | undefined): Promise<{ notes: string[]; failed?: true }> {
  const ws = compileWorkspace(projectDir, { write: false });
  const resolved = resolveTarget(ws.project, target);
  if (resolved.type !== 'duckdb') {
    throw new TsformError(Codes.unsupported, `compact rewrites DuckDB files; on PostgreSQL rewrite a table with VACUUM (FULL) in a quiet hour (it locks the table for every practice)`);
  }
  if (unbuiltWarehouse(ws.project, resolved)) return { notes: [] };
  return rewriteFiles(ws, resolved, 'tsform compact');
}

async function rewriteFiles(ws: Workspace, target: TargetConfig & { type: 'duckdb' }, again: string): Promise<{ notes: string[]; failed?: true }> {
  const at = (p: string) => inProject(ws.project, p);
  const { schemas } = ws.project.config;
  const { rewriteDatabaseFiles } = await import('../adapters/duckdb/rewrite-files.ts');
  try {
    const rewritten = await rewriteDatabaseFiles(at(target.path), { [schemas.research]: at(target.researchPath), [schemas.vault]: at(target.vaultPath) });
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    return { notes: [`rewrote ${rewritten.map((r) => `${basename(r.file)} (${mb(r.bytesBefore)} -> ${mb(r.bytesAfter)})`).join(', ')} with their live rows only, so that the deleted rows' bytes leave the files (copies and backups made before this still hold them)`] };
  } catch (err) {
    // Whatever was deleted stays deleted; only its bytes remain, and the files as they were.
    return { notes: [`FAILED to rewrite the database files, which still hold the deleted rows' bytes (${safeDbMessage(err)}); run \`${again}\` again when no other process has them open`], failed: true };
  }
}

export interface PurgeOutcome {
  counts: PurgeCount[];
  /** What the purge cannot reach: stored global research relations that still count the practice. */
  notes: string[];
  /** The rows are deleted but the files still hold their bytes (their rewrite failed): exit non-zero. */
  incomplete?: true;
}

/**
 * A global research relation (an aggregate over every practice's pseudonymized slices) cannot be
 * told apart by practice: one built before the purge counts the practice until it is built again.
 */
async function stillCounted(adapter: Adapter, manifest: Manifest, tenant: string, counts: readonly PurgeCount[]): Promise<string[]> {
  const slices = new Set(Object.values(manifest.models).filter(holdsResearchSlices).map((n) => `${n.schema}.${n.identifier}`));
  if (!counts.some((c) => c.rows > 0 && slices.has(c.relation))) return [];
  const global: string[] = [];
  for (const n of Object.values(manifest.models)) if (isGlobalResearchRelation(manifest, n) && (await adapter.describe(n.schema, n.identifier))) global.push(n.name);
  if (global.length === 0) return [];
  return [`${global.length} global research relation(s) built before this purge count ${tenant} until they are built again: tsform run --select ${global.join(' ')} (or the nightly run)`];
}

/**
 * Tables tsform built that no node of the current project names: a renamed, deleted, moved or
 * ephemeral-now model's old table keeps every practice's rows (red-team, 2026-12-07: purge
 * deleted from the renamed model's table and left the old one holding the practice's patients,
 * then said the files were rewritten). A table is tsform's when it is in a schema tsform builds
 * into, has the tenant column and bears the name of a model the run history
 * (`tsform_meta.node_runs`) records a build of: another team's table in `raw` or `marts` is not
 * touched (a later pass: purge deleted from every table with the column).
 */
async function leftBehind(adapter: Adapter, ws: Workspace, written: readonly { schema: string; identifier: string }[]): Promise<{ schema: string; identifier: string }[]> {
  if (!adapter.tablesWithColumn) return [];
  const nodes = Object.values(manifestNodes(ws.manifest));
  // An ephemeral model has no relation: a table of its name is what it built before.
  const named = new Set(nodes.filter((n) => n.kind !== 'model' || n.materialized !== 'ephemeral').map((n) => `${n.schema}.${n.identifier}`));
  const schemas = new Set([...written.map((r) => r.schema), ...nodes.filter((n) => n.kind !== 'source').map((n) => n.schema)]);
  schemas.delete(ws.project.config.schemas.meta);
  const tables = await adapter.tablesWithColumn([...schemas], ws.project.config.tenantColumn);
  const built = await modelsEverBuilt(adapter, ws.project.config.schemas.meta);
  return tables.filter((t) => !named.has(`${t.schema}.${t.name}`) && built.has(t.name)).map((t) => ({ schema: t.schema, identifier: t.name }));
}

function behindNote(behind: readonly { schema: string; identifier: string }[], counts: readonly PurgeCount[]): string[] {
  const names = new Set(behind.map((b) => `${b.schema}.${b.identifier}`));
  const held = counts.filter((c) => names.has(c.relation) && c.rows > 0);
  if (held.length === 0) return [];
  return [`${held.length} table(s) no model of this project builds (a renamed, deleted or moved model's, left in place) held its rows: ${held.map((c) => c.relation).join(', ')}; drop them if nothing reads them`];
}

/**
 * The vault's linkage records and match keys of the practice (keyed hashes of its patients'
 * identities) are not a model's slice, so they go here: linkage forgets them the way it forgets a
 * deleted patient, and the persons they linked with other practices' records are resolved again
 * without them (a token that changes is made with the vault key, so purge needs it, as a run does).
 */
async function purgeLinkage(adapter: Adapter, ws: Workspace, tenant: string, dryRun: boolean, env: Env): Promise<{ counts: PurgeCount[]; note?: string }> {
  const privacy = ws.project.config.privacy;
  const vault = vaultNode(ws.manifest);
  if (!privacy || !vault || !(await adapter.describe(vault.schema, VAULT_LINKAGE_RECORDS.name))) return { counts: [] };
  const counts: PurgeCount[] = [];
  for (const t of [VAULT_LINKAGE_RECORDS, VAULT_LINKAGE_KEYS]) {
    const { rows } = await adapter.query(`SELECT count(*) AS n FROM ${quoteRelation(vault.schema, t.name)} WHERE tenant = $1`, [tenant]);
    counts.push({ relation: `${vault.schema}.${t.name}`, rows: Number(rows[0]?.n ?? 0) });
  }
  if (dryRun || counts.every((c) => c.rows === 0)) return { counts };
  const key = await resolveVaultKey({ adapter, vaultSchema: ws.project.config.schemas.vault, privacy, env, clock: systemClock });
  // The slices that may carry a link made through this practice go before the link does (departed-linkage.ts).
  const { tenantColumn } = ws.project.config;
  const linked = await practicesLinkedThrough(adapter, vault, tenantColumn, [tenant]);
  const withdraw = { adapter, manifest: ws.manifest, metaSchema: ws.project.config.schemas.meta, tenantColumn };
  const note = await withdrawLinkedSlices(withdraw, linked);
  await adapter.transaction(async (s) => {
    if (adapter.kind === 'postgres') await s.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tsform.linkage', vault.schema]);
    return resolveLinkage(s, { vaultSchema: vault.schema, tokenTable: vault.identifier, tenantColumn, tenants: [tenant], identities: [], key, config: privacy.identity.linkage });
  }).then((linkage) => rebuildSlicesInFull(withdraw, linkage.retokenizedPractices));
  return note ? { counts, note } : { counts };
}

/**
 * PostgreSQL: the practice's login role and its membership rows go too, so that nobody can log
 * in as a practice that is gone (its role would see no rows, but a dormant login is a finding).
 */
async function dropPracticeRole(adapter: Adapter, role: string, securitySchema: string, dryRun: boolean): Promise<PurgeCount[]> {
  const exists = await adapter.query('SELECT 1 AS present FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rows.length === 0) return [];
  const members = quoteRelation(securitySchema, MEMBERS_TABLE);
  if (dryRun) {
    const n = await adapter.query(`SELECT count(*) AS n FROM ${members} WHERE role_name = $1`, [role]);
    return [{ relation: `${securitySchema}.${MEMBERS_TABLE}`, rows: Number(n.rows[0]?.n ?? 0) }, { relation: `role ${role}`, rows: 1 }];
  }
  return adapter.transaction(async (s) => {
    const deleted = await s.query(`DELETE FROM ${members} WHERE role_name = $1`, [role]);
    await s.query(`DROP ROLE ${quoteIdent(role)}`);
    return [{ relation: `${securitySchema}.${MEMBERS_TABLE}`, rows: deleted.rowsChanged }, { relation: `role ${role}`, rows: 1 }];
  });
}
