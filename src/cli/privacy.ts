import { userInfo } from 'node:os';
import type { Adapter } from '../adapters/adapter.ts';
import { vaultNode, type Manifest } from '../artifacts/manifest.ts';
import { systemClock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import { checkPublished, gatePublication, scanForLeaks } from '../execute/privacy-gates.ts';
import { reidentify } from '../execute/reidentify.ts';
import { builtBeforeWithdrawal } from '../execute/research-builds.ts';
import { offboardedRowsLeft, withheldRowsLeft } from '../execute/research-withheld.ts';
import { departedPractices } from '../execute/departed-linkage.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { initVault } from '../execute/vault.ts';
import { retokenizeLinkage } from '../execute/vault-linkage.ts';
import { compileWorkspace, openAdapter, resolveTarget, type Workspace } from './api.ts';
import { unbuiltWarehouse } from './target.ts';

function requirePrivacy(ws: Workspace) {
  const privacy = ws.project.config.privacy;
  if (!privacy) throw new TsformError(Codes.missingFile, 'tsform.yml has no privacy: block (vault and research layer)', { file: 'tsform.yml' });
  return privacy;
}

/**
 * `tsform vault retokenize`: forgets the vault's match keys and the linkage settings they were
 * made under, so that changed `privacy.identity` settings are accepted; person tokens stay, and
 * the next build of every practice re-keys and re-resolves against them.
 */
export async function vaultRetokenizeCommand(projectDir: string, targetName: string | undefined, out: (l: string) => void): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  requirePrivacy(ws);
  const target = resolveTarget(ws.project, targetName);
  const unbuilt = unbuiltWarehouse(ws.project, target);
  if (unbuilt) {
    out(`target '${target.name}' has no warehouse yet (${unbuilt}): the vault holds no match keys; nothing changed`);
    return 0;
  }
  const adapter = await openAdapter(ws.project, target, { threads: 1 });
  try {
    const { records } = await retokenizeLinkage(adapter, ws.project.config.schemas.vault);
    out(`vault match keys of ${records} record(s) forgotten; person tokens kept. Build every practice to re-key them under the current privacy.identity settings.`);
    return 0;
  } finally {
    await adapter.close();
  }
}

export async function vaultInitCommand(projectDir: string, targetName: string | undefined, out: (l: string) => void): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  const privacy = requirePrivacy(ws);
  const adapter = await openAdapter(ws.project, resolveTarget(ws.project, targetName), { threads: 1 });
  try {
    const r = await initVault({ adapter, vaultSchema: ws.project.config.schemas.vault, privacy, env: process.env, clock: systemClock });
    out(
      r.created
        ? `vault key ${r.fingerprint} created (${r.source === 'env' ? `from $${privacy.keyEnv}; the vault keeps only its fingerprint` : 'kept in the vault only'})`
        : `vault already has key ${r.fingerprint}; nothing changed`,
    );
    return 0;
  } finally {
    await adapter.close();
  }
}

export async function reidentifyCommand(
  projectDir: string,
  targetName: string | undefined,
  token: string,
  reason: string,
  out: (l: string) => void,
): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  requirePrivacy(ws);
  const target = resolveTarget(ws.project, targetName);
  const unbuilt = unbuiltWarehouse(ws.project, target);
  if (unbuilt) throw new TsformError(Codes.reidentify, `target '${target.name}' has no warehouse yet (${unbuilt}): its vault holds no token to re-identify`);
  const adapter = await openAdapter(ws.project, target, { threads: 1 });
  try {
    const r = await reidentify(adapter, {
      vaultSchema: ws.project.config.schemas.vault,
      tenantColumn: ws.project.config.tenantColumn,
      token,
      reason,
      actor: auditedActor(process.env.TSFORM_ACTOR),
      clock: systemClock,
    }).catch((err: unknown) => {
      if (err instanceof TsformError) throw err;
      throw new TsformError(Codes.reidentify, `re-identification refused: ${adapter.describeError(err)}`);
    });
    if (r.records.length === 0) {
      out(`no person has token ${token}; the attempt was audited as ${r.auditedAs}${r.ticket ? ` (ticket ${r.ticket})` : ''}`);
      return 1;
    }
    for (const rec of r.records) out(`${rec.practice}\t${rec.patient}`);
    out(`${r.records.length} record(s); audited as ${r.auditedAs}${r.ticket ? ` (ticket ${r.ticket})` : ''}`);
    return 0;
  } finally {
    await adapter.close();
  }
}

/**
 * Who a DuckDB re-identification is audited as: the operating-system user running tsform, which
 * only the machine can vouch for. `$TSFORM_ACTOR` is anyone's to set, so a name given there that
 * differs is recorded only as a claim next to the user, never instead of it.
 */
export function auditedActor(claimed: string | undefined): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the uid is still the machine's word.
    user = `uid ${process.getuid?.() ?? 'unknown'}`;
  }
  const claim = claimed?.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 64);
  return claim && claim !== user ? `${user} (claims ${JSON.stringify(claim)})` : user;
}

/** Temp table of `privacy check`: the model's rows as they would be published now. */
const CHECK_STAGE = '__tsf_check_stage';

/**
 * `tsform privacy check`: the gates on demand. Lineage runs at compile (a failure is exit 2 with
 * the column's lineage). For every published research relation: its published rows are checked
 * again (every count at least k, or every class at least k persons), and its model is staged
 * again and put through the publication gate to count the cells that suppression withholds.
 * The leak scan compares every pseudonymized relation with the raw identifiers. Only sizes and
 * counts are printed, never a value.
 */
export async function privacyCheckCommand(projectDir: string, targetName: string | undefined, out: (l: string) => void): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  const privacy = requirePrivacy(ws);
  out(`lineage: ${Object.values(ws.manifest.models).filter((m) => m.pseudonymized).length} pseudonymized models expose no direct or ungeneralized quasi column`);
  const target = resolveTarget(ws.project, targetName);
  const unbuilt = unbuiltWarehouse(ws.project, target);
  if (unbuilt) {
    out(`k-anonymity and leak scan: target '${target.name}' has no warehouse yet (${unbuilt}): nothing published or pseudonymized to check`);
    return 0;
  }
  const adapter = await openAdapter(ws.project, target, { threads: 1 });
  let failures = 0;
  try {
    const research = Object.values(ws.manifest.models).filter((m) => m.schema === ws.project.config.schemas.research && m.materialized !== 'ephemeral');
    for (const node of research) {
      if (!(await adapter.describe(node.schema, node.identifier))) {
        out(`k-anonymity: ${node.name} not published yet`);
        continue;
      }
      try {
        const line = await adapter.transaction(async (s) => {
          const published = await checkPublished(s, quoteRelation(node.schema, node.identifier), node, ws.manifest, privacy.k);
          await s.createTempTableAs(CHECK_STAGE, node.compiled_sql, []);
          const now = await gatePublication(s, CHECK_STAGE, node, ws.manifest, privacy);
          await s.query(`DROP TABLE IF EXISTS ${quoteIdent(CHECK_STAGE)}`);
          const smallest = published.smallest === null ? 'none published' : String(published.smallest);
          const suppressed = now.suppressed.primary + now.suppressed.complementary;
          return `k-anonymity: ${node.name} ok (k=${privacy.k}, smallest ${node.k_count ? 'cell' : 'class'} ${smallest}, ${suppressed} suppressed cells: ${now.suppressed.primary} below k, ${now.suppressed.complementary} complementary; ${published.rows} rows published)`;
        });
        out(line);
      } catch (err) {
        if (!(err instanceof TsformError)) throw err;
        failures++;
        out(`k-anonymity: FAILED ${err.message}`);
      }
    }
    failures += await reportWithheld(adapter, ws.manifest, ws.project.config, out);
    failures += await reportOffboarded(adapter, ws.manifest, ws.project.config.tenantColumn, out);
    const leaks = await scanForLeaks(adapter, ws.manifest, privacy);
    failures += leaks.length;
    out(leaks.length === 0 ? 'leak scan: no raw identifier in any pseudonymized relation' : `leak scan: FAILED ${leaks.map((l) => `${l.relation}.${l.column} (${l.rows} rows)`).join(', ')}`);
  } finally {
    await adapter.close();
  }
  return failures > 0 ? 1 : 0;
}

/**
 * Practices no longer in tenants.yml whose rows are still in a pseudonymized table (a published
 * build would have counted them), or whose records the vault still links other practices' persons
 * through (departed-linkage.ts: the research slices of those persons may carry the link).
 */
async function reportOffboarded(adapter: Adapter, manifest: Manifest, tenantColumn: string, out: (l: string) => void): Promise<number> {
  const vault = vaultNode(manifest);
  const withheld = new Set(manifest.research_withheld ?? []);
  const inVault = vault ? (await departedPractices(adapter, manifest, vault, tenantColumn)).filter((t) => !withheld.has(t)) : [];
  if (inVault.length > 0) {
    out(
      `no longer in tenants.yml: ${inVault.length} practice(s): FAILED the vault still holds their records, and the persons they linked: ` +
        `the next vault build forgets them (any tsform run of a practice), and the next published build first removes the research slices linked through them`,
    );
  }
  const left = await offboardedRowsLeft(adapter, manifest, tenantColumn);
  if (left.length === 0) return inVault.length > 0 ? 1 : 0;
  const practices = [...new Set(left.flatMap((l) => l.practices))].sort();
  out(
    `no longer in tenants.yml: ${practices.length} practice(s): FAILED rows of theirs remain in ${left.map((l) => `${l.relation} (${l.rows} rows)`).join(', ')}; ` +
      `the next build of the published models removes them from research (or tsform purge --tenant ${practices.slice(0, 3).join(' --tenant ')}${practices.length > 3 ? ' …' : ''}, which removes everything of theirs)`,
  );
  return left.length + (inVault.length > 0 ? 1 : 0);
}

/**
 * Practices withheld from research (tenants.yml research: false) must have nothing left there: no
 * rows in the vault or a pseudonymized relation, and no stored global relation built from those
 * before they were withheld (research-builds.ts). Returns the failures.
 */
async function reportWithheld(adapter: Adapter, manifest: Manifest, config: { tenantColumn: string; schemas: { meta: string } }, out: (l: string) => void): Promise<number> {
  const withheld = manifest.research_withheld ?? [];
  if (withheld.length === 0) return 0;
  const left = await withheldRowsLeft(adapter, manifest, config.tenantColumn);
  const built = await builtBeforeWithdrawal(adapter, manifest, config.schemas.meta);
  const what = `withheld from research: ${withheld.length} practice(s) (tenants.yml research: false)`;
  if (left.length === 0 && built.length === 0) {
    out(`${what}: nothing of theirs in the vault, any pseudonymized relation or any global relation built from them`);
    return 0;
  }
  const problems: string[] = [];
  if (left.length > 0) {
    const shown = withheld.slice(0, 3).join(' --tenant ');
    problems.push(
      `rows of theirs remain in ${left.map((l) => `${l.relation} (${l.rows} rows)`).join(', ')}; a run of those practices removes them (tsform run --tenant ${shown}${withheld.length > 3 ? ' …' : ''}, or the nightly run)`,
    );
  }
  if (built.length > 0) {
    problems.push(
      `${built.map((b) => `${b.relation} was built before ${b.practices.join(', ')} ${b.practices.length > 1 ? 'were' : 'was'} withheld`).join(', ')} and may count them; a run that builds it removes them (tsform run --select ${built.map((b) => b.model).join(' ')}, or the nightly run)`,
    );
  }
  out(`${what}: FAILED ${problems.join('; ')}`);
  return left.length + built.length;
}
