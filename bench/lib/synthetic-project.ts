import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A synthetic tenant-aware project shaped like the real one (tsform.yml, tenants.yml, sources,
 * staging → intermediate → marts, incremental/view/ephemeral models, global models over seeds,
 * properties with PHI classes and tests, macros used as helpers), written to a fresh temp dir.
 *
 * Deterministic: the same options always produce the same files (seeded PRNG). Acyclic by
 * construction: a model only refs models generated before it.
 *
 * Only invented, obviously synthetic values: no name, address or identifier looks like PHI.
 */

export interface SyntheticOptions {
  /** Total models (staging + intermediate/mart + global). Default 500. */
  models?: number;
  /** Practices in tenants.yml. Default 5,000. */
  tenants?: number;
  /** Source tables (tenant-scoped). Default 20. */
  sourceTables?: number;
  /** PRNG seed. */
  seed?: number;
  /** Parent of the temp dir; default os.tmpdir(). */
  parentDir?: string;
}

export interface SyntheticProject {
  dir: string;
  modelNames: string[];
  tenantIds: string[];
  counts: {
    staging: number;
    intermediate: number;
    marts: number;
    global: number;
    incremental: number;
    views: number;
    ephemeral: number;
    withProperties: number;
    tests: number;
    largeTenants: number;
  };
  files: number;
  bytes: number;
  cleanup(): void;
}

/** mulberry32: small, fast, good enough for fixtures. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tenantId(i: number): string {
  return `p${String(i).padStart(5, '0')}`;
}

const TIME_ZONES = [
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Phoenix',
  'America/Los_Angeles',
  'America/Anchorage',
  'Pacific/Honolulu',
  'America/Detroit',
];

const READY_BY = ['05:00', '05:30', '06:00', '06:30', '07:00', '07:30'];

const SOURCE_TABLES = [
  'patients', 'encounters', 'conditions', 'medications', 'procedures',
  'claims', 'observations', 'immunizations', 'allergies', 'careplans',
  'devices', 'imaging_studies', 'supplies', 'payer_transitions', 'appointments',
  'referrals', 'lab_orders', 'lab_results', 'care_teams', 'invoices',
  'documents', 'vitals', 'screenings', 'tasks',
];

const DOMAINS = ['finance', 'clinical', 'quality', 'operations', 'population', 'pharmacy', 'scheduling', 'revenue'];
const MART_PREFIXES = ['fct', 'rpt', 'dim', 'agg'];
const STATUSES = ['active', 'completed', 'cancelled'];

const SEEDS: { name: string; header: string[]; types?: Record<string, string>; rows: (i: number) => (string | number | boolean)[]; count: number }[] = [
  {
    name: 'encounter_classes',
    header: ['encounter_class', 'description', 'is_inpatient'],
    types: { is_inpatient: 'BOOLEAN' },
    rows: (i) => [`class_${i}`, `Encounter class ${i}`, i % 3 === 0],
    count: 12,
  },
  {
    name: 'code_systems',
    header: ['code_prefix', 'system', 'description'],
    rows: (i) => [String.fromCharCode(65 + i), `system_${i % 4}`, `Code family ${String.fromCharCode(65 + i)}`],
    count: 26,
  },
  {
    name: 'zip3_regions',
    header: ['zip3', 'region', 'state'],
    rows: (i) => [String(100 + i), `region_${i % 9}`, `S${i % 50}`],
    count: 200,
  },
  {
    name: 'payer_types',
    header: ['payer_type', 'description', 'is_public'],
    types: { is_public: 'BOOLEAN' },
    rows: (i) => [`payer_${i}`, `Payer type ${i}`, i % 2 === 0],
    count: 8,
  },
];

/** Columns every tenant-scoped synthetic model exposes (so joins and tests line up). */
const STD_COLUMNS = ['practice_id', 'row_id', 'patient_id', 'code', 'status', 'amount', 'event_at', 'updated_at'] as const;

interface Model {
  name: string;
  folder: string;
  kind: 'staging' | 'intermediate' | 'mart' | 'global';
  materialized: 'table' | 'view' | 'incremental' | 'ephemeral';
  refs: string[];
  sql: string;
}

export function generateSyntheticProject(opts: SyntheticOptions = {}): SyntheticProject {
  const totalModels = opts.models ?? 500;
  const tenantCount = opts.tenants ?? 5000;
  const sourceCount = Math.min(opts.sourceTables ?? 20, SOURCE_TABLES.length);
  const rand = prng(opts.seed ?? 20240607);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'tsform-bench-'));
  let files = 0;
  let bytes = 0;
  const write = (rel: string, text: string) => {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    files++;
    bytes += Buffer.byteLength(text);
  };

  try {
    // ---- tsform.yml: same structure as the real project's.
    write(
      'tsform.yml',
      `# Synthetic benchmark project (bench/lib/synthetic-project.ts): shaped like the real one.
name: bench_analytics
tenant_column: practice_id

schemas:
  raw: raw
  seeds: ref
  staging: staging
  marts: marts
  research: research
  vault: vault
  meta: tsform_meta

target: duckdb
targets:
  duckdb:
    type: duckdb
    path: target/tsform.duckdb
    threads: 2
  postgres:
    type: postgres
    url_env: TSFORM_PG_URL
    threads: 4

vars:
  panel_months: 12

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
`,
    );

    // ---- tenants.yml
    const tenantIds: string[] = [];
    let largeTenants = 0;
    const tl: string[] = ['# Synthetic practices (bench fixture).', 'tenants:'];
    for (let i = 1; i <= tenantCount; i++) {
      const id = tenantId(i);
      tenantIds.push(id);
      const large = rand() < 0.01;
      if (large) largeTenants++;
      const zone = pick(TIME_ZONES);
      const region = zone.split('/')[1]!.toLowerCase();
      tl.push(
        `  - id: ${id}`,
        `    name: Synthetic Practice ${String(i).padStart(5, '0')} ${pick(['Family Medicine', 'Pediatrics', 'Internal Medicine', 'Urgent Care', 'Cardiology'])}`,
        `    timezone: ${zone}`,
        `    sla:`,
        `      ready_by: "${pick(READY_BY)}"`,
        `    tags: [${large ? 'large' : 'small'}, ${region}]`,
        `    pool: steady`,
      );
    }
    write('tenants.yml', `${tl.join('\n')}\n`);

    // ---- seeds
    const seedLines: string[] = ['seeds:'];
    for (const s of SEEDS) {
      const rows = [s.header.join(',')];
      for (let i = 0; i < s.count; i++) rows.push(s.rows(i).map(String).join(','));
      write(`seeds/${s.name}.csv`, `${rows.join('\n')}\n`);
      if (s.types) {
        seedLines.push(`  - name: ${s.name}`, '    column_types:');
        for (const [c, t] of Object.entries(s.types)) seedLines.push(`      ${c}: ${t}`);
      }
    }
    write('models/seeds.yml', `${seedLines.join('\n')}\n`);

    // ---- sources
    const tables = SOURCE_TABLES.slice(0, sourceCount);
    const src: string[] = [
      '# The shared OLTP as tsform sees it: every table carries practice_id (synthetic).',
      'sources:',
      '  - name: ehr',
      '    schema: raw',
      '    scope: tenant',
      '    loader:',
      '      csv: data/ehr/{table}.csv.gz',
      '    tables:',
    ];
    let tests = 0;
    for (const t of tables) {
      src.push(
        `      - name: ${t}`,
        '        columns:',
        '          - { name: practice_id, phi: none, tests: [not_null] }',
        `          - { name: ${t}_id, phi: none, tests: [not_null] }`,
        '          - { name: patient_id, phi: direct }',
        '          - { name: code, phi: none }',
        '          - { name: description, phi: none }',
        '          - { name: status, phi: none }',
        '          - { name: amount, phi: none, data_type: "DECIMAL(18,2)" }',
        '          - { name: event_at, phi: quasi, data_type: "TIMESTAMPTZ" }',
        '          - { name: zip, phi: quasi }',
        '          - { name: updated_at, phi: none, data_type: "TIMESTAMPTZ" }',
      );
      tests += 2;
    }
    write('models/sources.yml', `${src.join('\n')}\n`);

    // ---- macros (used as helpers)
    write('macros/cents.hbs', '{{!-- params: column --}}\ncast(round({{column}} * 100) as bigint)\n');
    write('macros/local_date.hbs', '{{!-- params: column, zone --}}\ncast({{column}} at time zone {{zone}} as date)\n');

    // ---- models
    const models: Model[] = [];
    const globalCount = Math.max(1, Math.round(totalModels * 0.04));
    const stagingCount = Math.min(Math.round(totalModels * 0.2), totalModels - globalCount);
    const downstreamCount = totalModels - globalCount - stagingCount;
    const intermediateCount = Math.round(downstreamCount * 0.55);

    const incrementalGuard = (alias: string) =>
      `{{#if is_incremental}}\n  and ${alias}updated_at > (select coalesce(max(updated_at), timestamptz '-infinity') from {{this}})\n{{/if}}`;

    // Staging: five variants per source table, round-robin over tables.
    for (let i = 0; i < stagingCount; i++) {
      const t = tables[i % tables.length]!;
      const variant = Math.floor(i / tables.length) % 5;
      const round = Math.floor(i / (tables.length * 5));
      const suffix = ['', '_incr', '_recent', '_coded', '_by_patient'][variant]! + (round > 0 ? `_${round}` : '');
      const name = `stg_${t}${suffix}`;
      const folder = `models/staging/${t}`;
      let sql: string;
      let materialized: Model['materialized'] = 'table';
      const refs: string[] = [];
      const cols = `  practice_id,\n  ${t}_id as row_id,\n  patient_id,\n  code,\n  status,\n  amount,\n  event_at,\n  updated_at`;
      switch (variant) {
        case 0:
          sql = `-- ${name}: ${t} per practice, typed.\nselect\n${cols},\n  {{cents "amount"}} as amount_cents\nfrom {{source "ehr" "${t}"}}\nwhere status <> 'entered-in-error'\n`;
          break;
        case 1:
          materialized = 'incremental';
          sql = `{{config materialized="incremental" unique_key="row_id"}}\n-- ${name}: incremental per practice; {{this}} is this practice's slice only.\nselect\n${cols}\nfrom {{source "ehr" "${t}"}}\nwhere status is not null\n${incrementalGuard('')}\n`;
          break;
        case 2:
          materialized = 'view';
          sql = `{{config materialized="view"}}\n-- ${name}: the last panel_months of ${t}.\nselect\n${cols}\nfrom {{source "ehr" "${t}"}}\nwhere event_at >= current_date - interval '1 month' * {{var "panel_months"}}\n`;
          break;
        case 3:
          refs.push('code_systems');
          sql = `-- ${name}: ${t} with their code system.\nselect\n  s.practice_id,\n  s.${t}_id as row_id,\n  s.patient_id,\n  s.code,\n  s.status,\n  s.amount,\n  s.event_at,\n  s.updated_at,\n  cs.system as code_system\nfrom {{source "ehr" "${t}"}} s\nleft join {{ref "code_systems"}} cs on cs.code_prefix = left(s.code, 1)\n`;
          break;
        default:
          sql = `-- ${name}: one row per patient.\nselect\n  practice_id,\n  patient_id as row_id,\n  patient_id,\n  max(code) as code,\n  max(status) as status,\n  sum(amount) as amount,\n  max(event_at) as event_at,\n  max(updated_at) as updated_at\nfrom {{source "ehr" "${t}"}}\ngroup by practice_id, patient_id\n`;
      }
      models.push({ name, folder, kind: 'staging', materialized, refs, sql });
    }

    // Intermediate and marts: each refs 1-4 earlier tenant-scoped models.
    const pool: string[] = models.map((m) => m.name);
    const domainSeq = new Map<string, number>();
    for (let j = 0; j < downstreamCount; j++) {
      const domain = pick(DOMAINS);
      const seq = (domainSeq.get(domain) ?? 0) + 1;
      domainSeq.set(domain, seq);
      const isInt = j < intermediateCount;
      const name = isInt ? `int_${domain}_${String(seq).padStart(3, '0')}` : `${pick(MART_PREFIXES)}_${domain}_${String(seq).padStart(3, '0')}`;
      const folder = `models/marts/${domain}${isInt ? '/intermediate' : ''}`;

      const r = rand();
      const materialized: Model['materialized'] =
        isInt && r < 0.03 ? 'ephemeral' : r < 0.18 ? 'incremental' : r < 0.28 ? 'view' : 'table';

      const k = 1 + Math.floor(rand() * 4);
      const refs: string[] = [];
      for (let tries = 0; refs.length < k && tries < 50; tries++) {
        // Half the time from the most recent models (deep chains), else anywhere earlier.
        const candidate = rand() < 0.5 ? pool[pool.length - 1 - Math.floor(rand() * Math.min(60, pool.length))]! : pick(pool);
        if (!refs.includes(candidate)) refs.push(candidate);
      }
      const joinTenants = rand() < 0.25;
      const useCents = rand() < 0.3;
      const ownWith = refs.length > 1;

      const lines: string[] = [];
      if (materialized !== 'table') {
        lines.push(materialized === 'incremental' ? `{{config materialized="incremental" unique_key="row_id"}}` : `{{config materialized="${materialized}"}}`);
      }
      lines.push(`-- ${name}: synthetic ${domain} ${isInt ? 'intermediate' : 'mart'} over ${refs.length} input(s).`);
      if (ownWith) {
        lines.push('with inputs as (', '  select practice_id, patient_id, sum(amount) as amount, max(updated_at) as updated_at', '  from (');
        refs.slice(1).forEach((ref, i) => {
          if (i > 0) lines.push('    union all');
          lines.push(`    select practice_id, patient_id, amount, updated_at from {{ref "${ref}"}}`);
        });
        lines.push('  ) u', '  group by practice_id, patient_id', ')');
      }
      lines.push(
        'select',
        '  a.practice_id,',
        '  a.row_id,',
        '  a.patient_id,',
        '  a.code,',
        '  a.status,',
        ownWith ? '  a.amount + coalesce(i.amount, 0) as amount,' : '  a.amount,',
        '  a.event_at,',
      );
      if (useCents) lines.push(`  {{cents "a.amount"}} as amount_cents,`);
      if (joinTenants) lines.push(`  {{local_date "a.event_at" "t.timezone"}} as event_local_date,`);
      lines.push(ownWith ? '  greatest(a.updated_at, coalesce(i.updated_at, a.updated_at)) as updated_at' : '  a.updated_at');
      lines.push(`from {{ref "${refs[0]}"}} a`);
      if (ownWith) lines.push('left join inputs i on i.practice_id = a.practice_id and i.patient_id = a.patient_id');
      if (joinTenants) lines.push('join {{ref "tenants"}} t on t.practice_id = a.practice_id');
      lines.push('where a.row_id is not null');
      if (materialized === 'incremental') lines.push(incrementalGuard('a.'));
      models.push({ name, folder, kind: isInt ? 'intermediate' : 'mart', materialized, refs, sql: `${lines.join('\n')}\n` });
      pool.push(name);
    }

    // Global models: read only shared relations (seeds, the tenants relation, earlier globals).
    const globals: string[] = [];
    const seedNames = SEEDS.map((s) => s.name);
    const seedKey: Record<string, [string, string]> = {
      encounter_classes: ['encounter_class', 'description'],
      code_systems: ['code_prefix', 'system'],
      zip3_regions: ['zip3', 'region'],
      payer_types: ['payer_type', 'description'],
    };
    for (let g = 0; g < globalCount; g++) {
      const name = `glb_reference_${String(g + 1).padStart(2, '0')}`;
      const refs: string[] = [];
      let body: string;
      if (g % 5 === 0) {
        refs.push('tenants');
        body = `select timezone as key, timezone as label, count(*) as value\nfrom {{ref "tenants"}}\ngroup by timezone`;
      } else if (globals.length > 0 && rand() < 0.5) {
        const a = pick(globals);
        const seed = pick(seedNames);
        const [key, label] = seedKey[seed]!;
        refs.push(a, seed);
        body = `select g.key, coalesce(s.${label}, g.label) as label, g.value + 1 as value\nfrom {{ref "${a}"}} g\nleft join {{ref "${seed}"}} s on cast(s.${key} as varchar) = g.key`;
      } else {
        const seed = pick(seedNames);
        const [key, label] = seedKey[seed]!;
        refs.push(seed);
        body = `select cast(${key} as varchar) as key, ${label} as label, 1 as value\nfrom {{ref "${seed}"}}`;
      }
      const sql = `{{config scope="global" materialized="table" schema="marts" tags="reference"}}\n-- ${name}: reference data shared by every practice.\n${body}\n`;
      models.push({ name, folder: 'models/global', kind: 'global', materialized: 'table', refs, sql });
      globals.push(name);
    }

    for (const m of models) write(`${m.folder}/${m.name}.sql`, m.sql);

    // ---- properties: ~40% of models, with PHI classes and tests; one yml per folder.
    const byName = new Map(models.map((m) => [m.name, m]));
    const propsByFolder = new Map<string, string[]>();
    let withProperties = 0;
    models.forEach((m, i) => {
      if (i % 5 >= 2) return;
      withProperties++;
      const out = propsByFolder.get(m.folder) ?? [];
      propsByFolder.set(m.folder, out);
      out.push(`  - name: ${m.name}`, `    description: Synthetic ${m.kind} model ${m.name} (bench fixture).`, '    columns:');
      const testable = m.materialized !== 'ephemeral';
      if (m.kind === 'global') {
        out.push(
          `      - { name: key, phi: none${testable ? ', tests: [not_null]' : ''} }`,
          '      - { name: label, phi: none }',
          '      - { name: value, phi: none }',
        );
        if (testable) tests++;
        return;
      }
      const parent = m.refs.map((r) => byName.get(r)).find((p) => p && p.kind !== 'global' && p.materialized !== 'ephemeral');
      for (const col of STD_COLUMNS) {
        const phi = col === 'patient_id' ? 'direct' : col === 'event_at' ? 'quasi' : 'none';
        let t: string[] = [];
        if (testable) {
          if (col === 'practice_id') t = ['not_null'];
          else if (col === 'row_id') t = ['not_null', 'unique'];
          else if (col === 'patient_id' && parent) t = [`relationships: { to: ${parent.name}, field: patient_id }`];
          else if (col === 'status' && i % 3 === 0) t = [`accepted_values: { values: [${STATUSES.join(', ')}] }`];
        }
        tests += t.length;
        if (t.length === 0) out.push(`      - { name: ${col}, phi: ${phi} }`);
        else if (t.every((x) => !x.includes(':'))) out.push(`      - { name: ${col}, phi: ${phi}, tests: [${t.join(', ')}] }`);
        else out.push(`      - name: ${col}`, `        phi: ${phi}`, '        tests:', ...t.map((x) => `          - ${x}`));
      }
    });
    for (const [folder, lines] of propsByFolder) {
      const base = folder.split('/').pop()!;
      write(`${folder}/_${base}.yml`, `models:\n${lines.join('\n')}\n`);
    }

    const count = (f: (m: Model) => boolean) => models.filter(f).length;
    return {
      dir,
      modelNames: models.map((m) => m.name),
      tenantIds,
      counts: {
        staging: count((m) => m.kind === 'staging'),
        intermediate: count((m) => m.kind === 'intermediate'),
        marts: count((m) => m.kind === 'mart'),
        global: count((m) => m.kind === 'global'),
        incremental: count((m) => m.materialized === 'incremental'),
        views: count((m) => m.materialized === 'view'),
        ephemeral: count((m) => m.materialized === 'ephemeral'),
        withProperties,
        tests,
        largeTenants,
      },
      files,
      bytes,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
