import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import type { FolderDefaults, Materialization, ProjectConfig, Schemas, Scope, TargetConfig, ApprovedGeneralizer } from './types.ts';
import { readLinkageConfig } from './linkage-config.ts';
import { suggest } from './suggest.ts';
import { isRecord, YamlReader, type YamlFile } from './yaml-file.ts';
import { checkKeys, CONFIG_SCHEMA } from './yml-schema.ts';

export const CONFIG_FILE = 'tsform.yml';

const DEFAULT_SCHEMAS: Schemas = {
  raw: 'raw',
  seeds: 'ref',
  staging: 'staging',
  marts: 'marts',
  research: 'research',
  vault: 'vault',
  meta: 'tsform_meta',
};

export const SCOPES: readonly Scope[] = ['tenant', 'global', 'shared'];
export const MATERIALIZATIONS: readonly Materialization[] = ['view', 'table', 'incremental', 'ephemeral'];

/**
 * The schemas that hold research rows: the published research schema and the schema of every
 * pseudonymized folder (tsform.yml models:). Tokens and research rows live nowhere else.
 */
export function researchSchemaNames(config: Pick<ProjectConfig, 'schemas' | 'folders'>): Set<string> {
  return new Set([config.schemas.research, ...config.folders.filter((f) => f.pseudonymized && f.schema).map((f) => f.schema!)]);
}

export function defaultConfig(name = 'project'): ProjectConfig {
  return {
    name,
    tenantColumn: 'practice_id',
    schemas: { ...DEFAULT_SCHEMAS },
    defaultTarget: 'duckdb',
    targets: {
      duckdb: { name: 'duckdb', type: 'duckdb', path: 'target/tsform.duckdb', researchPath: 'target/research.duckdb', vaultPath: 'target/vault.duckdb', threads: 2, settings: {} },
    },
    vars: {},
    folders: [],
    pools: { steady: { slots: 2 }, backfill: { slots: 1 } },
    batchSize: 50,
    retries: 3,
  };
}

export function readConfig(y: YamlFile | undefined, diagnostics: Diagnostic[]): ProjectConfig {
  const config = defaultConfig();
  if (!y) return config;
  const r = new YamlReader(y, diagnostics);
  const root = y.value;
  if (!isRecord(root)) {
    diagnostics.push(diagnostic(Codes.yamlShape, 'tsform.yml must be a mapping', { file: y.file, line: 1 }));
    return config;
  }
  checkKeys(r, root, CONFIG_SCHEMA, 'tsform.yml');
  config.name = r.string(root, 'name', { required: true }) ?? config.name;
  const tenantColumn = r.string(root, 'tenant_column');
  if (tenantColumn !== undefined) {
    if (SIMPLE_NAME.test(tenantColumn)) config.tenantColumn = tenantColumn;
    else r.fail(root, 'tenant_column', `tenant_column '${tenantColumn}' is not a simple identifier`, Codes.invalidIdentifier);
  }

  const schemas = r.record(root, 'schemas') ?? {};
  for (const key of Object.keys(schemas)) {
    // An unknown role is reported by checkKeys (CONFIG_SCHEMA).
    if (!(key in DEFAULT_SCHEMAS)) continue;
    const v = r.string(schemas, key);
    if (v === undefined) continue;
    if (!SIMPLE_NAME.test(v)) r.fail(schemas, key, `schema name '${v}' is not a simple identifier`, Codes.invalidIdentifier);
    else config.schemas[key as keyof Schemas] = v;
  }
  // Who reads a schema is granted per schema: the vault, the metadata and the published research
  // schema shared with any other would be read by that one's readers (schemas.vault: marts
  // would put the token map where practice roles read).
  for (const own of ['vault', 'meta', 'research'] as const) {
    const other = (Object.keys(config.schemas) as (keyof Schemas)[]).find((k) => k !== own && config.schemas[k].toLowerCase() === config.schemas[own].toLowerCase());
    if (other) r.fail(schemas, own, `schemas.${own} and schemas.${other} are both '${config.schemas[own]}': the vault, metadata and research schemas each need a schema of their own`, Codes.invalidConfig);
  }

  const targets = r.record(root, 'targets');
  if (targets) {
    config.targets = {};
    for (const [name, raw] of Object.entries(targets)) {
      const t = readTarget(r, targets, name, raw);
      if (t) config.targets[name] = t;
    }
  }
  config.defaultTarget = r.string(root, 'target') ?? Object.keys(config.targets)[0] ?? 'duckdb';
  if (!config.targets[config.defaultTarget]) {
    r.fail(root, 'target', `default target '${config.defaultTarget}' is not declared under targets`, Codes.unknownTarget);
  }

  const vars = r.record(root, 'vars');
  if (vars) config.vars = vars;

  const models = r.record(root, 'models') ?? {};
  config.folders = readFolders(r, models, '');

  const pools = r.record(root, 'pools');
  if (pools) {
    config.pools = {};
    for (const [name, raw] of Object.entries(pools)) {
      if (!isRecord(raw)) {
        r.fail(pools, name, `pool '${name}' must be a mapping with 'slots'`);
        continue;
      }
      config.pools[name] = { slots: r.positiveInt(raw, 'slots', 1) };
    }
  }
  const run = r.record(root, 'run');
  if (run) {
    if (run.node_timeout_seconds !== undefined) config.nodeTimeoutMs = r.positiveInt(run, 'node_timeout_seconds', 3600) * 1000;
    if (run.retries !== undefined) {
      const v = run.retries;
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) config.retries = v;
      else r.fail(run, 'retries', "'retries' must be a non-negative integer");
    }
  }
  const privacy = r.record(root, 'privacy');
  if (privacy) {
    // Unknown keys here are TSF117 from yml-schema.ts, with did-you-mean.
    const identity = r.record(privacy, 'identity') ?? {};
    const col = (key: string, fallback: string) => {
      const v = r.string(identity, key) ?? fallback;
      if (!SIMPLE_NAME.test(v)) r.fail(identity, key, `identity column '${v}' is not a simple identifier`, Codes.invalidIdentifier);
      return v;
    };
    config.privacy = {
      k: r.positiveInt(privacy, 'k', 11),
      identityModel: r.string(privacy, 'identity_model') ?? 'stg_patients',
      identity: {
        patientId: col('patient_id', 'patient_id'),
        firstName: col('first_name', 'first_name'),
        lastName: col('last_name', 'last_name'),
        birthDate: col('birth_date', 'birth_date'),
        sex: col('sex', 'sex'),
        ssn: identity.ssn === null ? undefined : col('ssn', 'ssn'),
        linkage: readLinkageConfig(r, identity),
      },
      keyEnv: r.string(privacy, 'key_env') ?? 'TSFORM_VAULT_KEY',
      generalizers: readGeneralizers(r, privacy),
      notIdentifiers: r.stringList(privacy, 'not_identifiers'),
      notIdentifiersLine: y.lineOfKey(privacy, 'not_identifiers'),
    };
    // Suppression macros read k as a var, so a model and the gate can never disagree on it.
    config.vars = { ...config.vars, privacy_k: config.privacy.k };
  }
  if (root.alerts !== undefined) config.alerts = { raw: root.alerts, line: y.lineOfKey(root, 'alerts') };
  const batch = r.record(root, 'batch');
  if (batch) config.batchSize = r.positiveInt(batch, 'size', config.batchSize);
  checkSearchPathsAgainst(config, diagnostics, y.file, [...Object.values(config.schemas), ...researchSchemaNames(config)], "one of the project's schemas");
  return config;
}

/**
 * `search_path: [extensions]` of a PostgreSQL target. Every session tsform opens searches
 * pg_catalog, then these, for the functions and operators a model names without a schema: a
 * function created in a schema on that path, by anyone who may create there, can be a better
 * match than pg_catalog's (CVE-2018-1058) and then runs as the owner, who reads every practice.
 */
function readSearchPath(r: YamlReader, target: Record<string, unknown>, name: string): string[] {
  const list = r.stringList(target, 'search_path');
  const seen = new Set<string>();
  const out: string[] = [];
  for (const schema of list) {
    const lower = schema.toLowerCase();
    if (!SIMPLE_NAME.test(schema)) r.fail(target, 'search_path', `target '${name}': search_path schema ${JSON.stringify(schema)} is not a simple identifier`, Codes.invalidIdentifier);
    else if (lower.startsWith('pg_') || lower === 'information_schema') {
      r.fail(target, 'search_path', `target '${name}': search_path may not name '${schema}' (pg_catalog is searched first already; pg_temp and the catalog views hold nothing a model may call)`, Codes.invalidConfig);
    } else if (seen.has(lower)) r.fail(target, 'search_path', `target '${name}': search_path names '${schema}' twice`, Codes.invalidConfig);
    else out.push(schema);
    seen.add(lower);
  }
  return out;
}

/**
 * A schema tsform writes (or the membership and vault functions live in) on a search path would
 * let a model reach its functions by their bare name, past the rule that a model calls no
 * function named with a schema other than pg_catalog (model-sql.ts).
 */
export function checkSearchPathsAgainst(config: ProjectConfig, diagnostics: Diagnostic[], file: string, schemas: readonly string[], what: string): void {
  for (const target of Object.values(config.targets)) {
    if (target.type !== 'postgres') continue;
    for (const schema of target.searchPath) {
      if (!schemas.some((s) => s.toLowerCase() === schema.toLowerCase())) continue;
      const message = `target '${target.name}': search_path may not name '${schema}', ${what}; it holds only the schemas of trusted functions (extensions)`;
      diagnostics.push(diagnostic(Codes.invalidConfig, message, { file, line: target.searchPathLine ?? 1 }));
    }
  }
}


/** `privacy.generalizers: { zip3: <sha256>, shift_date: { sha256: …, shift: shift_days }, month_of: { sha256: …, requires_shifted: true } }` */
function readGeneralizers(r: YamlReader, privacy: Record<string, unknown>): Record<string, ApprovedGeneralizer> {
  const raw = r.record(privacy, 'generalizers');
  const out: Record<string, ApprovedGeneralizer> = {};
  if (!raw) return out;
  const SHA = /^[0-9a-f]{64}$/;
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'string') {
      if (SHA.test(value)) out[name] = { sha256: value };
      else r.fail(raw, name, `privacy.generalizers.${name}: expected the sha256 (64 hex digits) of the approved macro`);
      continue;
    }
    if (!isRecord(value)) {
      r.fail(raw, name, `privacy.generalizers.${name}: expected a sha256 or a mapping with sha256`);
      continue;
    }
    const sha256 = r.string(value, 'sha256', { required: true });
    if (sha256 === undefined || !SHA.test(sha256)) {
      r.fail(value, 'sha256', `privacy.generalizers.${name}.sha256: expected 64 hex digits`);
      continue;
    }
    for (const key of Object.keys(value)) if (!['sha256', 'shift', 'requires_shifted'].includes(key)) r.fail(value, key, `privacy.generalizers.${name}: unknown key '${key}' (sha256, shift, requires_shifted)`);
    const shift = r.string(value, 'shift');
    out[name] = { sha256, ...(shift ? { shift } : {}), ...(value.requires_shifted === true ? { requiresShifted: true } : {}) };
  }
  return out;
}

function readTarget(r: YamlReader, parent: Record<string, unknown>, name: string, raw: unknown): TargetConfig | undefined {
  if (!isRecord(raw)) {
    r.fail(parent, name, `target '${name}' must be a mapping`);
    return undefined;
  }
  const type = r.string(raw, 'type', { required: true });
  const threads = r.positiveInt(raw, 'threads', type === 'postgres' ? 4 : 2);
  if (type === 'duckdb') {
    if ('partition_by_practice' in raw) {
      r.fail(raw, 'partition_by_practice', `target '${name}': partition_by_practice is a PostgreSQL option; DuckDB tables are not partitioned`);
    }
    if ('search_path' in raw) r.fail(raw, 'search_path', `target '${name}': search_path is a PostgreSQL option (the schemas of trusted functions)`, Codes.invalidConfig);
    return {
      name,
      type,
      path: r.string(raw, 'path') ?? 'target/tsform.duckdb',
      researchPath: r.string(raw, 'research_path') ?? 'target/research.duckdb',
      vaultPath: r.string(raw, 'vault_path') ?? 'target/vault.duckdb',
      threads,
      settings: readDuckDBSettings(r, raw, name),
    };
  }
  if (type === 'postgres') {
    if ('password' in raw || 'url' in raw) {
      r.fail(raw, 'password' in raw ? 'password' : 'url', `target '${name}': credentials never go in tsform.yml; name an environment variable with url_env`);
    }
    if ('settings' in raw) r.fail(raw, 'settings', `target '${name}': settings are DuckDB's (${DUCKDB_SETTINGS.join(', ')}); set PostgreSQL's on the server or the role`);
    const partitionByPractice = readPartitioning(r, raw);
    const searchPath = readSearchPath(r, raw, name);
    const searchPathLine = r.y.lineOfKey(raw, 'search_path');
    return {
      name,
      type,
      urlEnv: r.string(raw, 'url_env') ?? 'TSFORM_PG_URL',
      threads,
      searchPath,
      ...(searchPathLine !== undefined && 'search_path' in raw ? { searchPathLine } : {}),
      ...(partitionByPractice ? { partitionByPractice } : {}),
    };
  }

  if (type !== undefined) r.fail(raw, 'type', `target '${name}' has unknown type '${type}' (duckdb or postgres)`, Codes.unknownTarget);
  return undefined;
}

/**
 * DuckDB settings a project may choose (dbt-duckdb's `settings:`): resources only. Anything that
 * moves files or loads code (temp_directory, extensions, external access) would undo the
 * adapter's lock-down of PHI files, so it is not on the list.
 */
export const DUCKDB_SETTINGS = [
  'memory_limit',
  'checkpoint_threshold',
  'max_temp_directory_size',
  'preserve_insertion_order',
  // memory_limit bounds DuckDB's buffer manager only; these bound what its allocator keeps after freeing
  'allocator_flush_threshold',
  'allocator_bulk_deallocation_flush_threshold',
  'allocator_background_threads',
];

/** `settings: { memory_limit: 2GB, checkpoint_threshold: 256MB }` of a DuckDB target. */
function readDuckDBSettings(r: YamlReader, target: Record<string, unknown>, name: string): Record<string, string> {
  const raw = r.record(target, 'settings');
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const [key, value] of Object.entries(raw)) {
    if (!DUCKDB_SETTINGS.includes(key)) {
      r.fail(raw, key, `target '${name}': DuckDB setting '${key}' cannot be set here (${DUCKDB_SETTINGS.join(', ')})`);
    } else if (!['string', 'number', 'boolean'].includes(typeof value)) {
      r.fail(raw, key, `target '${name}': settings.${key} must be a value such as '2GB' or true`);
    } else {
      out[key] = String(value);
    }
  }
  return out;
}

/** `partition_by_practice: { list: [p1, p2], hash_partitions: 16 }` of a PostgreSQL target. */
function readPartitioning(r: YamlReader, target: Record<string, unknown>): { list: string[]; hashPartitions: number; line?: number } | undefined {
  const raw = r.record(target, 'partition_by_practice');
  if (!raw) return undefined;
  const list = r.stringList(raw, 'list');
  const seen = new Set<string>();
  for (const id of list) {
    if (seen.has(id)) r.fail(raw, 'list', `partition_by_practice.list names practice '${id}' twice`);
    seen.add(id);
  }
  const hashPartitions = r.positiveInt(raw, 'hash_partitions', 16);
  if (hashPartitions > 1024) r.fail(raw, 'hash_partitions', `partition_by_practice.hash_partitions is ${hashPartitions}; at most 1024`);
  return { list, hashPartitions, line: r.y.lineOfKey(target, 'partition_by_practice') };
}

const FOLDER_KEYS = new Set(['schema', 'scope', 'materialized', 'tags', 'pseudonymized']);

/** `models: { staging: { schema: staging, scope: tenant }, marts: { finance: {...} } }` */
function readFolders(r: YamlReader, obj: Record<string, unknown>, prefix: string, line?: number): FolderDefaults[] {
  const out: FolderDefaults[] = [];
  const own: FolderDefaults = { path: prefix, ...(line === undefined ? {} : { line }) };
  for (const [key, value] of Object.entries(obj)) {
    if (!FOLDER_KEYS.has(key)) {
      if (isRecord(value)) out.push(...readFolders(r, value, prefix ? `${prefix}/${key}` : key, r.y.lineOfKey(obj, key)));
      else r.fail(obj, key, `unknown model setting '${key}'${suggest(key, [...FOLDER_KEYS])} (expected a folder mapping or one of ${[...FOLDER_KEYS].join(', ')})`, Codes.unknownKey);
      continue;
    }
    if (key === 'schema') {
      const s = r.string(obj, key);
      if (s !== undefined && !SIMPLE_NAME.test(s)) r.fail(obj, key, `schema '${s}' is not a simple identifier`, Codes.invalidIdentifier);
      else own.schema = s;
    } else if (key === 'scope') {
      const s = r.string(obj, key);
      if (s !== undefined && !SCOPES.includes(s as Scope)) r.fail(obj, key, `unknown scope '${s}' (${SCOPES.join(', ')})`, Codes.invalidConfig);
      else own.scope = s as Scope;
    } else if (key === 'materialized') {
      const s = r.string(obj, key);
      if (s !== undefined && !MATERIALIZATIONS.includes(s as Materialization)) {
        r.fail(obj, key, `unknown materialization '${s}' (${MATERIALIZATIONS.join(', ')})`, Codes.invalidConfig);
      } else own.materialized = s as Materialization;
    } else if (key === 'tags') own.tags = r.stringList(obj, key);
    else if (key === 'pseudonymized') own.pseudonymized = value === true;
  }
  const lines: NonNullable<FolderDefaults['lines']> = {};
  for (const key of ['schema', 'scope', 'materialized', 'pseudonymized'] as const) {
    const line = key in obj ? r.y.lineOfKey(obj, key) : undefined;
    if (line !== undefined) lines[key] = line;
  }
  if (Object.keys(own).some((k) => k !== 'path' && k !== 'line')) out.push(Object.keys(lines).length > 0 ? { ...own, lines } : own);
  return out;
}
