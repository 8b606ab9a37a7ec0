import type { LinkageConfig } from './linkage-config.ts';
import type { Diagnostic } from '../errors.ts';

/** Where a model's rows come from and who may read them (DESIGN §2). */
export type Scope = 'tenant' | 'global' | 'shared';
export type Materialization = 'view' | 'table' | 'incremental' | 'ephemeral';
export type PhiClass = 'direct' | 'quasi' | 'none';

export interface Located {
  /** Path relative to the project root. */
  file: string;
  /** 1-based line, when known. */
  line?: number;
}

export type TargetConfig =
  | {
      name: string;
      type: 'duckdb';
      /** database file, relative to the project root */
      path: string;
      /** The research and vault schemas live in files of their own (DESIGN §5). */
      researchPath: string;
      vaultPath: string;
      threads: number;
      /** `settings:` (load-config.ts DUCKDB_SETTINGS), applied when the database opens. */
      settings: Record<string, string>;
    }
  | {
      name: string;
      type: 'postgres';
      /** environment variable holding the connection URL */
      urlEnv: string;
      threads: number;
      /** `partition_by_practice`: tenant-scoped tables partitioned by practice (README, "Partitioning by practice"). */
      partitionByPractice?: { list: string[]; hashPartitions: number; line?: number };
      /**
       * `search_path:` schemas of trusted functions (extensions), searched after pg_catalog by every
       * session tsform opens; empty: pg_catalog only (postgres-adapter.ts `sessionOptions`).
       */
      searchPath: string[];
      /** tsform.yml line of `search_path:` (diagnostics about a schema on it point there). */
      searchPathLine?: number;
    };

/** Per-folder defaults for models, like dbt's `models:` block. Longest matching prefix wins. */
export interface FolderDefaults {
  /** Folder under models/, e.g. `staging` or `marts/finance`. */
  path: string;
  /** tsform.yml line of the folder's key (absent for settings directly under `models:`). */
  line?: number;
  schema?: string;
  scope?: Scope;
  materialized?: Materialization;
  tags?: string[];
  pseudonymized?: boolean;
  /** tsform.yml line of each setting (diagnostics about what a folder default caused point there). */
  lines?: Partial<Record<'schema' | 'scope' | 'materialized' | 'pseudonymized', number>>;
}

export interface Schemas {
  raw: string;
  seeds: string;
  staging: string;
  marts: string;
  research: string;
  vault: string;
  /** tsform's own state: tenants relation, run history. */
  meta: string;
}

export interface ProjectConfig {
  name: string;
  /** Column that carries the practice id on every tenant-scoped relation. */
  tenantColumn: string;
  schemas: Schemas;
  defaultTarget: string;
  targets: Record<string, TargetConfig>;
  vars: Record<string, unknown>;
  folders: FolderDefaults[];
  pools: Record<string, { slots: number }>;
  /** Small practices' nodes of one model run together in batches of this many (DESIGN §6). */
  batchSize: number;
  /** A node's statements are cancelled after this long (`run.node_timeout_seconds`); none by default. */
  nodeTimeoutMs?: number;
  /** Retries of transient failures per node (`run.retries`, default 3). */
  retries: number;
  /** `privacy:` in tsform.yml: the vault and the research layer (DESIGN §1, §5). */
  privacy?: PrivacyConfig;
  /** The raw `alerts:` list of tsform.yml (read by sla/alert-config) and its line. */
  alerts?: { raw: unknown; line?: number };
}

export interface Tenant extends Located {
  id: string;
  name: string;
  /** IANA time zone, e.g. America/New_York. */
  timezone: string;
  /** Local wall-clock time (HH:MM) by which the prior day must be loaded. */
  readyBy: string;
  tags: string[];
  pool: string;
  /**
   * False when the practice does not take part in population health (`research: false`): none of
   * its patients is tokenized into the vault or written to a pseudonymized relation, and a run
   * removes what an earlier one wrote there.
   */
  research: boolean;
}

export type GenericTestKind = 'not_null' | 'unique' | 'accepted_values' | 'relationships';

export interface GenericTestSpec extends Located {
  kind: GenericTestKind;
  column: string;
  values?: (string | number | boolean)[];
  /** relationships: the referenced model name (or `source.table`) and its column. */
  to?: string;
  field?: string;
}

export interface ColumnSpec extends Located {
  name: string;
  description?: string;
  phi: PhiClass;
  /** False when the yml did not say (phi then defaults to none; --strict rejects that). */
  phiExplicit: boolean;
  dataType?: string;
  tests: GenericTestSpec[];
}

export interface ModelFile extends Located {
  name: string;
  sql: string;
}

export interface ModelProperties extends Located {
  name: string;
  description?: string;
  columns: ColumnSpec[];
}

export interface SourceTable extends Located {
  source: string;
  name: string;
  description?: string;
  scope: 'tenant' | 'shared';
  schema: string;
  /** Table name in the warehouse (defaults to `name`). */
  identifier: string;
  columns: ColumnSpec[];
  /** Demo/landing loader: a CSV (optionally .gz) with a header row, relative to the project root. */
  csvPath?: string;
  /**
   * `key:` — the table's primary key without the tenant column (captured tables need it). On a
   * CSV-loaded table it lets a reload tell a deleted row from an updated one.
   */
  key: string[];
  /** Per-practice capture into raw (opt-in per source): one extract node per (table, practice). */
  capture?: SourceCapture;
}

/**
 * Where a captured source's rows come from. `postgres`: the shared OLTP, read per practice from
 * its own watermark (updated_at + key); `csv_landing`: files dropped in a landing folder.
 */
export type SourceCapture =
  | {
      kind: 'postgres';
      /** Schema and table in the OLTP. */
      schema: string;
      table: string;
      /** Environment variable holding the OLTP URL (never the URL itself in a file). */
      urlEnv: string;
      /** Primary key without the tenant column. */
      key: string[];
      updatedAt: string;
      deletedAt: string;
      /** Statement timeout of each OLTP read. */
      timeoutMs?: number;
      /** Rows per chunk (one warehouse transaction each). */
      chunkRows?: number;
      /** A practice's capture gives its slot back after this long with chunks left (default 10 s). */
      sliceMs?: number;
      /** Rows younger than this wait for the next capture (CaptureSpec.settleSeconds). */
      settleSeconds?: number;
      /** `watermark` (default): updated_at + key per practice; `logical`: PostgreSQL's logical replication stream. */
      mode: 'watermark' | 'logical';
    }
  | {
      kind: 'csv_landing';
      /** Folder relative to the project root (`{table}` replaced). */
      path: string;
      /** `folder_per_practice`: `<path>/<practice id>/*.csv[.gz]`; `practice_column`: `<path>/*.csv[.gz]` holding many practices. */
      layout: 'folder_per_practice' | 'practice_column';
      /** Rows replace rows with the same key in the practice's slice; empty: appended. */
      key: string[];
      /** A row with this column set deletes its key (when the file has the column). */
      deletedAt: string;
    };

export interface Macro extends Located {
  name: string;
  body: string;
}

export interface Seed extends Located {
  name: string;
  /** sha256 of the CSV: a changed seed is `state:modified`. */
  checksum: string;
  /** Explicit column types from the seed's yml; others are inferred. */
  columnTypes: Record<string, string>;
  /** The CSV's header: every column the seed's table has (absent when the CSV is unreadable). */
  header?: string[];
  /** Its records after the header, as text (absent when unreadable): practice-seeds.ts reads a seed that has the practice id. */
  rows?: string[][];
}

export interface SingularTest extends Located {
  name: string;
  sql: string;
}

export interface PrivacyConfig {
  /** Smallest class size a published research relation may have (default 11). */
  k: number;
  /** The tenant-scoped model holding one row per (practice, patient) with identity columns. */
  identityModel: string;
  /** Column names in the identity model. */
  identity: { patientId: string; firstName: string; lastName: string; birthDate: string; sex: string; ssn?: string; linkage: LinkageConfig };
  /** Environment variable that may hold the vault key instead of the vault itself. */
  keyEnv: string;
  /**
   * `privacy.generalizers`: the macros approved to generalize, by name, each with the sha256 of
   * the macro file as reviewed (a changed macro is unapproved until this is updated).
   */
  generalizers: Record<string, ApprovedGeneralizer>;
  /**
   * `privacy.not_identifiers`: columns whose names mark an identifier but which hold none (a
   * provider's office address), as `<source>.<table>.<column>` or `<model>.<column>`
   * (security/declared-classes.ts). Reviewed here, not in models/.
   */
  notIdentifiers: string[];
  notIdentifiersLine?: number;
}

export interface ApprovedGeneralizer {
  sha256: string;
  /** The macro moves a date by this parameter, which must be the vault's per-person shift. */
  shift?: string;
  /** The macro generalizes only a date already moved by a `shift` macro (e.g. month of a shifted date). */
  requiresShifted?: boolean;
}

/** `policies/policies.yml`: who may read what in the PostgreSQL warehouse (DESIGN §5). */
export interface PolicyConfig extends Located {
  roles: {
    /** Runs tsform and owns every relation; the only role with a policy that sees all rows. */
    owner: string;
    researchReader: string;
    vaultSteward: string;
    /**
     * NOLOGIN group of the one-practice login roles; table grants go to it. Its policy compares
     * with one practice id (a scalar sub-select), the fastest spoof-proof form (notes/postgres-rls.md).
     */
    practices: string;
    /** NOLOGIN group of the multi-practice roles (`groups`); its policy compares with an array. */
    practiceGroups: string;
  };
  /** Login role of one practice; `{tenant}` is replaced by the practice id. */
  practiceRolePattern: string;
  /** Roles that belong to several practices (a practice group, a regional manager). */
  groups: { role: string; practices: string[]; line?: number }[];
  /** Schema of the membership table (role → practice ids) and tsform's security objects. */
  securitySchema: string;
  /** Every tenant-scoped relation in these schemas gets row-level security. */
  protectSchemas: string[];
  /** Extra relations, as `schema.name` or a model name; each must carry the tenant column. */
  protectRelations: { name: string; line?: number }[];
  /** Schemas whose relations practice roles may SELECT (row-level security applies). */
  practiceSchemas: string[];
  researchSchemas: string[];
  /**
   * `planner_statistics:` What PostgreSQL's planner may keep about the tenant column of protected
   * tables. `keep` (the default; also when absent): ANALYZE keeps its most-common-values list and
   * histogram, so a practice role's EXPLAIN of `WHERE <tenant column> = 'other'` estimates another
   * practice's row count. `none`: the column gets `SET STATISTICS 0` and `policies apply` removes
   * the statistics it already has; every practice id then gets the same estimate (README,
   * "Row-level security"; its cost in bench:rls).
   */
  plannerStatistics?: { tenantColumn: 'keep' | 'none' };
  /** Handlebars overrides of the built-in DDL templates (`policies/<name>.hbs`), by file name without `.hbs`. */
  templates: Record<string, PolicyTemplate>;
}

export interface PolicyTemplate {
  text: string;
  /** Project-relative path, for diagnostics. */
  file: string;
}

/** Everything read from disk. Plain data: the compiler never touches the file system. */
export interface Project {
  root: string;
  config: ProjectConfig;
  tenants: Tenant[];
  models: ModelFile[];
  properties: ModelProperties[];
  sources: SourceTable[];
  macros: Macro[];
  seeds: Seed[];
  singularTests: SingularTest[];
  /** Absent when the project has no policies/policies.yml. */
  policies?: PolicyConfig;
  diagnostics: Diagnostic[];
}

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_]{0,62}$/;
