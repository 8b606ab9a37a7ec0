import pg from 'pg';
import { Codes, TsformError } from '../../errors.ts';
import { safeDbMessage } from '../safe-message.ts';
import { catalogChecks } from './catalog-checks.ts';
import { mapLimit } from './map-limit.ts';
import { readCatalog } from './verify-catalog.ts';
import { probeRole } from './verify-probes.ts';
import { sessionOptions, withSessionOptions } from './session-options.ts';
import type { ProbedRole, VerifyInput, VerifyReport } from './verify-types.ts';

export { formatVerifyReport } from './format-verify-report.ts';
export type { VerifyCheck, VerifyInput, VerifyReport } from './verify-types.ts';

/**
 * `tsform policies verify`: connects as a superuser, impersonates practice roles with
 * `SET SESSION AUTHORIZATION`, and probes every protected relation the way a practice's own
 * login would (DESIGN §5). Every probe runs in a transaction that is rolled back, so no write
 * attempt persists. Reports carry counts, relation names and role names only, never a row value.
 *
 * Checks, read once from the catalog: `exists`, `owner`, `rls` (enabled and forced), `policy`
 * (tsform_practice_isolation keyed on current_user through the membership table),
 * `other_policies` (no extra permissive policy), `security_invoker` (views), `tenant_index`;
 * per role: `attributes` (no SUPERUSER, BYPASSRLS, CREATEROLE, membership in the owner,
 * research_reader or vault_steward), `functions` (no executable SECURITY DEFINER function),
 * `schema_usage` (vault, research). Probed as each role: `own_rows` or `no_access`,
 * `other_rows`, `copy_out`, `spoof_setting`, `set_role`, `write_other`, `membership`, and
 * `no_access` to research and vault relations (research_reader: to raw, staging, marts, vault).
 */

const POOL_SIZE = 4;

export async function verifyPolicies(given: VerifyInput): Promise<VerifyReport> {
  const started = performance.now();
  const input = { ...given, settingsToSpoof: [...new Set(given.settingsToSpoof)] };
  // A superuser's session: a function planted in public must not be what its catalog reads call.
  const pool = new pg.Pool({ ...withSessionOptions(input.url, sessionOptions([])), max: POOL_SIZE, application_name: 'tsform policies verify' });
  pool.on('error', () => undefined);
  try {
    await requireSuperuser(pool);
    const probed = probedRoles(input);
    const catalog = await readCatalog(pool, input, probed, POOL_SIZE);
    const checks = catalogChecks(input, catalog, probed);
    const present = probed.filter((r) => catalog.roles.get(r.role)?.present);
    const perRole = await mapLimit(present, POOL_SIZE, (role) => probeRole(pool, input, catalog, role, probed));
    checks.push(...perRole.flat());
    const kinds = (k: ProbedRole['kind']) => present.filter((r) => r.kind === k).length;
    return {
      checks,
      failures: checks.filter((c) => !c.passed).length,
      relations: input.relations.length,
      roles: present.length,
      probed: { practice: kinds('practice'), group: kinds('group'), research: kinds('research') },
      elapsedMs: Math.round(performance.now() - started),
    };
  } finally {
    await pool.end();
  }
}

async function requireSuperuser(pool: pg.Pool): Promise<void> {
  let rows: { rolsuper: boolean }[];
  try {
    ({ rows } = await pool.query('SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user'));
  } catch (err) {
    throw new TsformError(Codes.connection, `policies verify cannot connect to PostgreSQL: ${safeDbMessage(err)}`);
  }
  if (rows[0]?.rolsuper !== true) {
    throw new TsformError(Codes.connection, 'policies verify needs a superuser connection ($TSFORM_PG_ADMIN_URL): only a superuser can impersonate practice roles');
  }
}

function probedRoles(input: VerifyInput): ProbedRole[] {
  const seen = new Set<string>();
  const out: ProbedRole[] = [];
  const add = (r: { role: string; practices: string[] }, kind: ProbedRole['kind']) => {
    if (seen.has(r.role)) return;
    seen.add(r.role);
    out.push({ role: r.role, practices: [...r.practices], kind });
  };
  for (const r of input.practiceRoles) add(r, 'practice');
  for (const r of input.groupRoles) add(r, 'group');
  add({ role: input.researchReader, practices: [] }, 'research');
  return out;
}
