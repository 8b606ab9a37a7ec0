/**
 * The files of a new tenant-aware project (`tsform init`), as plain text by path. Everything the
 * project needs to compile and run at once is here: three example practices in three time zones,
 * a landing CSV with `practice_id` on every row, a staging model, a practice mart with its yml
 * (PHI classes, tests), a seed, a singular test and the row-level security policies.
 *
 * The landing data is synthetic and obviously so: daily visit counts per practice and visit type.
 * No names, identifiers or dates of birth: nothing in a fresh project looks like PHI.
 */

/** The example practices; `ci-sample` is what the CI workflow builds pull requests for. */
export const INIT_PRACTICES = [
  { id: 'demo_north_clinic', name: 'Demo North Clinic', timezone: 'America/New_York', readyBy: '06:00', tags: ['small', 'ci-sample'] },
  { id: 'demo_west_clinic', name: 'Demo West Clinic', timezone: 'America/Los_Angeles', readyBy: '06:30', tags: ['small', 'ci-sample'] },
  { id: 'demo_alpine_clinic', name: 'Demo Alpine Clinic', timezone: 'Europe/Zurich', readyBy: '07:00', tags: ['small'] },
] as const;

const VISIT_TYPES = [
  { type: 'office', description: 'In-person office visit', telehealth: false },
  { type: 'telehealth', description: 'Video or phone visit', telehealth: true },
  { type: 'walk_in', description: 'Same-day walk-in visit', telehealth: false },
] as const;

/** First landing day of the sample data and how many days it covers. */
const FIRST_DAY = Date.UTC(2024, 0, 1);
const DAYS = 21;

/** `My Project-2` → `my_project_2`: a simple identifier for `name:` in tsform.yml. */
export function projectNameFrom(dirName: string): string {
  const name = dirName
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (name === '') return 'analytics';
  return /^[a-z_]/.test(name) ? name.slice(0, 63) : `p_${name}`.slice(0, 63);
}

/** Deterministic, obviously synthetic daily visit counts (no randomness: every init is the same). */
export function sampleVisitsCsv(): string {
  const lines = ['practice_id,clinic_day,visit_type,visits,updated_at'];
  INIT_PRACTICES.forEach((p, pi) => {
    for (let d = 0; d < DAYS; d++) {
      const day = new Date(FIRST_DAY + d * 86_400_000).toISOString().slice(0, 10);
      VISIT_TYPES.forEach((v, vi) => {
        const visits = ((pi + 1) * 7 + d * 3 + vi * 5) % 23;
        lines.push(`${p.id},${day},${v.type},${visits},${day} 23:00:00+00`);
      });
    }
  });
  return `${lines.join('\n')}\n`;
}

function tsformYml(name: string): string {
  return `# tsform project: one relation per model, computed per practice (tenant) unless said otherwise.
name: ${name}
# Every tenant-scoped relation carries this column; practice ids are bound as query parameters.
tenant_column: practice_id

schemas:
  raw: raw
  seeds: ref
  staging: staging
  marts: marts
  research: research
  vault: vault
  meta: tsform_meta

# DuckDB by default (a file under target/); PostgreSQL reads its URL from an environment variable.
target: duckdb
targets:
  duckdb:
    type: duckdb
    path: target/tsform.duckdb
    threads: 2
  postgres:
    type: postgres
    url_env: TSFORM_PG_URL   # never a password in this file
    threads: 4

# Folder defaults: the longest matching folder wins, {{config}} in a model wins over both.
models:
  staging:
    schema: staging
    scope: tenant
    materialized: table
    tags: [staging]
  marts:
    schema: marts
    scope: tenant
    materialized: table
    tags: [marts]

pools:
  steady: { slots: 2 }
  backfill: { slots: 1 }

batch:
  size: 50
`;
}

function tenantsYml(): string {
  const entries = INIT_PRACTICES.map(
    (p) => `  - id: ${p.id}
    name: ${p.name}
    timezone: ${p.timezone}
    sla:
      ready_by: "${p.readyBy}"   # local time by which yesterday's data must be ready
    tags: [${p.tags.join(', ')}]
    pool: steady`,
  );
  return `# The practices (tenants). Adding a practice is a row here, never a recompile.
# id: ^[a-z0-9][a-z0-9_]{0,62}$; timezone: IANA; tags select practices (--tenant tag:ci-sample).
tenants:
${entries.join('\n')}
`;
}

const SOURCES_YML = `# Landing data. Every row carries practice_id; a practice's load keeps only its own rows.
sources:
  - name: clinic
    schema: raw
    scope: tenant
    description: Synthetic daily visit counts, one CSV per table under data/.
    loader:
      csv: data/{table}.csv
    tables:
      - name: daily_visits
        description: Visits per practice, day and visit type (synthetic counts, no patient data).
        columns:
          - { name: practice_id, phi: none, tests: [not_null] }
          - { name: clinic_day, phi: none, data_type: DATE, tests: [not_null] }
          - { name: visit_type, phi: none }
          - { name: visits, phi: none, data_type: INTEGER }
          - { name: updated_at, phi: none, data_type: TIMESTAMPTZ }
`;

const SEEDS_YML = `seeds:
  - name: visit_types
    column_types:
      is_telehealth: BOOLEAN
`;

function visitTypesCsv(): string {
  return `visit_type,description,is_telehealth\n${VISIT_TYPES.map((v) => `${v.type},${v.description},${v.telehealth}`).join('\n')}\n`;
}

const STG_VISITS_SQL = `-- Staging: the landed daily visit counts, typed (types come from models/sources.yml) and
-- restricted to the practice being built, like every tenant-scoped input.
select
  practice_id,
  clinic_day,
  lower(visit_type) as visit_type,
  visits,
  updated_at
from {{source "clinic" "daily_visits"}}
`;

const STAGING_YML = `models:
  - name: stg_visits
    description: Daily visit counts per practice and visit type, typed.
    columns:
      - { name: practice_id, phi: none, tests: [not_null] }
      - { name: clinic_day, phi: none, tests: [not_null] }
      - name: visit_type
        phi: none
        tests:
          - relationships: { to: visit_types, field: visit_type }
      - { name: visits, phi: none, tests: [not_null] }
      - { name: updated_at, phi: none }
`;

const MART_SQL = `-- Practice mart: visits per practice, week (Monday start) and visit type, with the practice's
-- name from the tenants relation that tsform materializes from tenants.yml.
select
  v.practice_id,
  t.name as practice_name,
  cast(date_trunc('week', v.clinic_day) as date) as week_start,
  v.visit_type,
  ty.is_telehealth,
  sum(v.visits) as visits,
  count(*) as clinic_days
from {{ref "stg_visits"}} v
join {{ref "tenants"}} t on t.practice_id = v.practice_id
left join {{ref "visit_types"}} ty on ty.visit_type = v.visit_type
group by v.practice_id, t.name, cast(date_trunc('week', v.clinic_day) as date), v.visit_type, ty.is_telehealth
`;

const MARTS_YML = `models:
  - name: practice_weekly_visits
    description: >
      Visits per practice, week and visit type: the first tile of a practice's dashboard.
      Row-level security in PostgreSQL lets each practice read only its own rows.
    columns:
      - { name: practice_id, phi: none, description: The practice (tenant) id., tests: [not_null] }
      - { name: practice_name, phi: none, description: From tenants.yml. }
      - { name: week_start, phi: none, description: Monday of the week., tests: [not_null] }
      - name: visit_type
        phi: none
        tests:
          - accepted_values: { values: [office, telehealth, walk_in] }
      - { name: is_telehealth, phi: none }
      - { name: visits, phi: none, description: Sum of daily visits., tests: [not_null] }
      - { name: clinic_days, phi: none, description: Days with a landed count. }
`;

const SINGULAR_TEST_SQL = `-- A negative visit count is a broken extract. Returns failing rows (with practice_id, so
-- failures are counted per practice).
select practice_id, clinic_day, visit_type
from {{ref "stg_visits"}}
where visits < 0
`;

const POLICIES_YML = `# Who may read what in the PostgreSQL warehouse. DuckDB has no roles: tsform renders this DDL
# there but does not apply it (\`npx tsform policies render\`).
roles:
  owner: tsform_owner            # runs tsform and owns every relation
  practices: tsform_practices    # NOLOGIN group of the one-practice roles
  practice_groups: tsform_practice_groups  # NOLOGIN group of the multi-practice group roles
  research_reader: research_reader
  vault_steward: vault_steward

practice_roles:
  name: "practice_{tenant}"      # one login role per practice in tenants.yml
  groups: []                     # e.g. - { role: north_group, practices: [demo_north_clinic] }

security_schema: tsform_security

protect:
  schemas: [raw, staging, marts]  # every tenant-scoped relation here gets row-level security

grants:
  practice_roles: [marts]
  research_reader: [research]
`;

/**
 * The new project's package.json: tsform is a dependency of the project (not a global tool), so
 * `npm install` puts it in node_modules/.bin and `npx tsform` runs that copy. `tsformDependency`
 * is an npm spec: `file:<checkout>` or a git URL while tsform is unpublished.
 */
function packageJson(name: string, tsformDependency: string): string {
  const pkg = {
    name: name.toLowerCase().replace(/^[._]+/, '') || 'analytics',
    private: true,
    description: 'A tsform project: SQL models computed per practice',
    scripts: { compile: 'tsform compile', build: 'tsform build', docs: 'tsform docs generate' },
    dependencies: { tsform: tsformDependency },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

function readme(name: string): string {
  return `# ${name}

A tsform project: SQL models computed per practice (tenant), with practice ids bound as query
parameters, never spliced into SQL. tsform is a dependency in \`package.json\`: run
\`npm install\` once, then \`npx tsform …\` runs that copy.

\`\`\`sh
npm install                   # tsform and its dependencies (see package.json)
npx tsform compile            # target/manifest.json and target/compiled/*.sql; no database touched
npx tsform build              # seed + run + test for every practice (DuckDB: target/tsform.duckdb)
npx tsform build --tenant tag:ci-sample
npx tsform docs generate      # target/docs/index.html: models, columns, PHI classes, lineage
\`\`\`

| file | what |
| --- | --- |
| \`tsform.yml\` | project settings: tenant column, schemas, targets, folder defaults |
| \`tenants.yml\` | the practices: id, name, IANA time zone, SLA, tags, pool |
| \`data/daily_visits.csv\` | synthetic landing data (visit counts), \`practice_id\` on every row |
| \`models/sources.yml\` | the \`clinic\` source and its CSV loader; column types and PHI classes |
| \`models/staging/stg_visits.sql\` | staging model (tenant scope) |
| \`models/marts/practice_weekly_visits.sql\` + \`_marts.yml\` | a practice mart with columns, PHI classes, tests |
| \`seeds/visit_types.csv\` | reference data (shared scope) |
| \`tests/*.sql\` | singular tests: queries that return failing rows |
| \`policies/policies.yml\` | PostgreSQL roles and row-level security |

Every column has a PHI class (\`direct\`, \`quasi\` or \`none\`). The sample data holds counts only;
replace \`data/\` and \`models/sources.yml\` with your own landing tables.
`;
}

/**
 * Every file of a new project by path (relative to its root, `/`-separated); package.json when
 * `tsformDependency` says how the project gets tsform.
 */
export function initProjectFiles(name: string, opts: { tsformDependency?: string } = {}): Record<string, string> {
  return {
    ...(opts.tsformDependency === undefined ? {} : { 'package.json': packageJson(name, opts.tsformDependency) }),
    'tsform.yml': tsformYml(name),
    'tenants.yml': tenantsYml(),
    'data/daily_visits.csv': sampleVisitsCsv(),
    'models/sources.yml': SOURCES_YML,
    'models/seeds.yml': SEEDS_YML,
    'models/staging/stg_visits.sql': STG_VISITS_SQL,
    'models/staging/_staging.yml': STAGING_YML,
    'models/marts/practice_weekly_visits.sql': MART_SQL,
    'models/marts/_marts.yml': MARTS_YML,
    'seeds/visit_types.csv': visitTypesCsv(),
    'tests/assert_visits_not_negative.sql': SINGULAR_TEST_SQL,
    'policies/policies.yml': POLICIES_YML,
    'README.md': readme(name),
    '.gitignore': 'target/\nnode_modules/\n',
  };
}
