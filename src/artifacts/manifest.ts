/**
 * `target/manifest.json`, version 1. Kept upstream of every stage: the compiler produces it, the
 * planner, runner, docs and state comparison read it. Add fields; never change a field's meaning
 * without bumping `schema_version`.
 */
import type { GenericTestKind, Materialization, PhiClass, Scope } from '../project/types.ts';

/**
 * 2: the tenants relation and the vault's token map moved out of `seeds` into `builtins`, and
 * every node is one of five kinds with only its own fields (a model always has its SQL).
 */
export const MANIFEST_SCHEMA_VERSION = 2;

export interface ManifestColumn {
  phi: PhiClass;
  description?: string;
  data_type?: string;
}

/** What every node has, whatever builds it. */
interface NodeCommon {
  /** Unique id: the model or seed name, `source:<source>.<table>`, `tenants` or the vault's. */
  name: string;
  path: string;
  scope: Scope;
  schema: string;
  /** The relation's name in its schema. */
  identifier: string;
  depends_on: string[];
  description?: string;
  columns: Record<string, ManifestColumn>;
  tags: string[];
  unique_key: string[];
  /** True when the relation carries no identifier (research layer); global models may read it. */
  pseudonymized: boolean;
  /** Macros and vars the node used (for state comparison and docs). */
  macros: string[];
  vars: string[];
  /** sha256 of the raw SQL file (models) or CSV (seeds); empty for the others. */
  checksum: string;
}

/** A SQL model of models/. */
export interface ModelNode extends NodeCommon {
  kind: 'model';
  materialized: Materialization;
  /**
   * SQL of a SELECT, rendered once for all practices. In tenant-scoped models `$1` is the array
   * of bound practice ids, so the text never contains one.
   */
  compiled_sql: string;
  /** The `is_incremental` variant (incremental models only), for practices whose slice already exists. */
  compiled_incremental_sql?: string;
  /**
   * Per line of `compiled_sql` (index 0 = line 1): the line of `path` it was rendered from, null
   * for text tsform added (the CTEs over its inputs). A database error is reported at that line.
   */
  compiled_lines?: (number | null)[];
  /** The same for `compiled_incremental_sql`. */
  compiled_incremental_lines?: (number | null)[];
  /** The SQL with approved generalizations marked, for the PHI lineage gate (phi-gate.ts). */
  lineage_sql?: string;
  /** Incremental models: the same for the `is_incremental` rendering. */
  lineage_incremental_sql?: string;
  /** Published aggregates: the column holding class sizes, checked against k before publishing. */
  k_count?: string;
  /** Incremental with a per-practice (correlated) high-water mark: may run in batches. */
  batch_incremental?: boolean;
}

/** A CSV of seeds/, loaded whole. */
export interface SeedNode extends NodeCommon {
  kind: 'seed';
  materialized: 'table';
}

/**
 * A source table of sources.yml. With a loader (`csv_path`, or `capture` from an OLTP or
 * landing files) tsform builds it per practice; without one it is read where it is.
 */
export interface SourceNode extends NodeCommon {
  kind: 'source';
  materialized: 'table';
  /** Source loader: CSV (optionally gzip) relative to the project root. */
  csv_path?: string;
  /** Captured source: built per practice by its own extract (one practice per node). */
  capture?: ManifestCapture;
}

/** The practices of tenants.yml as a relation (built by tsform, read by models). */
export interface TenantsNode extends NodeCommon {
  kind: 'tenants';
  materialized: 'table';
}

/** The vault's token map per (practice, patient), built from the identity model. */
export interface VaultNode extends NodeCommon {
  kind: 'vault';
  materialized: 'table';
  /** The model whose rows are tokenized (`privacy.identity_model`). */
  identity_model: string;
}

export type ManifestNode = ModelNode | SeedNode | SourceNode | TenantsNode | VaultNode;
export type NodeKind = ManifestNode['kind'];
/** The relations tsform builds from its own configuration rather than from a project file. */
export type BuiltinNode = TenantsNode | VaultNode;

/** Fails to type-check when a switch over node kinds misses one; throws if reached anyway. */
export function unknownNode(node: never): never {
  throw new Error(`unknown node kind ${JSON.stringify((node as { kind?: unknown }).kind)}`);
}

/** `SourceCapture` of the project, as it is written to manifest.json. */
export type ManifestCapture =
  | {
      kind: 'postgres';
      schema: string;
      table: string;
      url_env: string;
      key: string[];
      updated_at: string;
      deleted_at: string;
      timeout_ms?: number;
      chunk_rows?: number;
      slice_ms?: number;
      settle_seconds?: number;
      /** Absent: watermark capture. */
      mode?: 'logical';
    }
  | { kind: 'csv_landing'; path: string; layout: 'folder_per_practice' | 'practice_column'; key: string[]; deleted_at: string };

export interface ManifestTest {
  name: string;
  /** The node the test is attached to (its failures skip that node's downstream). */
  attached_to: string;
  kind: GenericTestKind | 'singular';
  column?: string;
  file: string;
  line?: number;
  /** Per-tenant failure counts: rows of `(tenant, failures)`; `$1` = bound practice ids. */
  sql: string;
  scope: Scope;
  depends_on: string[];
}

export interface Manifest {
  schema_version: typeof MANIFEST_SCHEMA_VERSION;
  project: string;
  tenant_column: string;
  models: Record<string, ModelNode>;
  seeds: Record<string, SeedNode>;
  sources: Record<string, SourceNode>;
  builtins: Record<string, BuiltinNode>;
  tests: Record<string, ManifestTest>;
  tenants: string[];
  /**
   * Practices of `tenants` withheld from population health (`research: false` in tenants.yml).
   * In the manifest, not read from tenants.yml by whoever builds: a worker whose tenants.yml says
   * otherwise has another manifest fingerprint and is refused. Absent in older manifests: none.
   */
  research_withheld?: string[];
}

/** Every buildable node by id, in one map. */
export function manifestNodes(m: Manifest): Record<string, ManifestNode> {
  return { ...m.sources, ...m.builtins, ...m.seeds, ...m.models };
}

export type PostgresCapture = Extract<ManifestCapture, { kind: 'postgres' }>;

/** Sources captured from a PostgreSQL OLTP. */
export function postgresCaptured(m: Manifest): (SourceNode & { capture: PostgresCapture })[] {
  return Object.values(m.sources).filter((n): n is SourceNode & { capture: PostgresCapture } => n.capture?.kind === 'postgres');
}

/** The vault's token map, when the project has a privacy: block. */
export function vaultNode(m: Manifest): VaultNode | undefined {
  return Object.values(m.builtins).find((n): n is VaultNode => n.kind === 'vault');
}
