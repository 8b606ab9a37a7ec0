/** The verifier's data, apart from its code so that every part imports it without a cycle. */

export interface VerifyInput {
  /** Superuser URL: only a superuser may `SET SESSION AUTHORIZATION` to another role. */
  url: string;
  tenantColumn: string;
  relations: { name: string; schema: string; identifier: string; kind: 'table' | 'view' }[];
  /** Practice login roles to probe (a sample, capped by the caller). */
  practiceRoles: { role: string; practices: string[] }[];
  groupRoles: { role: string; practices: string[] }[];
  /** The NOLOGIN group of one-practice roles, and that of multi-practice roles: each has its own policy. */
  practicesRole: string;
  groupsRole: string;
  owner: string;
  researchReader: string;
  vaultSteward: string;
  researchSchemas: string[];
  /** Schemas research_reader must not read (protected ones and the vault). */
  restrictedSchemas: string[];
  vaultSchema: string;
  securitySchema: string;
  /** Session settings a practice could set to pose as another practice. */
  settingsToSpoof: string[];
}

export interface VerifyCheck {
  /** `schema.identifier`, or `(roles)`, `(session)`, `(database)`, `schema.*`. */
  relation: string;
  check: string;
  /** The probed role; `(catalog)` for checks read once as the superuser. */
  role: string;
  passed: boolean;
  /** Counts and names only. */
  detail: string;
}

export interface VerifyReport {
  checks: VerifyCheck[];
  failures: number;
  relations: number;
  /** Roles probed by impersonation. */
  roles: number;
  /** How many of them are practice roles, group roles, research_reader. */
  probed?: { practice: number; group: number; research: number };
  elapsedMs?: number;
}

/** A role to impersonate. research_reader has no practices: it is probed only for what it must not reach. */
export interface ProbedRole {
  role: string;
  practices: string[];
  kind: 'practice' | 'group' | 'research';
}
