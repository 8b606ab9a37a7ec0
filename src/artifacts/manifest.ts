/**
 * `target/manifest.json`, version 1. Kept upstream of every stage: the compiler produces it, the
 * planner, runner, docs and state comparison read it. Add fields; never change a field's meaning
 * without bumping `schema_version`.
 */
import type { GenericTestKind, Materialization, PhiClass, Scope } from '../project/types.ts';

export const MANIFEST_SCHEMA_VERSION = 1;

export type NodeKind = 'model' | 'seed' | 'source' | 'tenants' | 'vault';

export interface ManifestColumn {
  phi: PhiClass;
  description?: string;
  data_type?: string;
}

export interface ManifestNode {
  /** Unique id: the model or seed name, `source:<source>.<table>`, or `tenants`. */
  name: string;
  kind: NodeKind;
  path: string;
  scope: Scope;
  /** How the node is built; sources with a loader and seeds are tables. */
  materialized: Materialization;
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
  /** Published aggregates: the column holding class sizes, checked against k before publishing. */
  k_count?: string;
  /** Incremental with a per-practice (correlated) high-water mark: may run in batches. */
  batch_incremental?: boolean;
  /**
   * SQL of a SELECT, rendered once for all practices. In tenant-scoped models `$1` is the array
   * of bound practice ids, so the text never contains one.
   */
  compiled_sql?: string;
  /** The `is_incremental` variant, used for practices whose slice already exists. */
  compiled_incremental_sql?: string;
  /** Pseudonymized models: the SQL with approved generalizations marked, for the PHI lineage gate. */
  lineage_sql?: string;
  /** Macros and vars the model used (for state comparison and docs). */
  macros: string[];
  vars: string[];
  /** sha256 of the raw SQL file (models) or CSV (seeds). */
  checksum: string;
  /** Source loader: CSV (optionally gzip) relative to the project root. */
  csv_path?: string;
  /** Captured source: built per practice by its own extract (one practice per node). */
  capture?: ManifestCapture;
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
  models: Record<string, ManifestNode>;
  seeds: Record<string, ManifestNode>;
  sources: Record<string, ManifestNode>;
  tests: Record<string, ManifestTest>;
  tenants: string[];
}

/** Every buildable node by id, in one map. */
export function manifestNodes(m: Manifest): Record<string, ManifestNode> {
  return { ...m.sources, ...m.seeds, ...m.models };
}
