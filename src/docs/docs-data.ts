/**
 * The data of the docs site: the manifest reshaped for the browser (nodes with their columns,
 * tests, parents and children; the practices). Pure: manifest and tenants in, plain JSON out.
 */
import type { Manifest, ManifestNode, ManifestTest, NodeKind } from '../artifacts/manifest.ts';
import type { Materialization, PhiClass, Scope, Tenant } from '../project/types.ts';
import type { DocsLastRun, DocsNodeRun } from './last-run.ts';

export const DOCS_DATA_VERSION = 1;

export interface DocsColumn {
  name: string;
  /** `unclassified`: the warehouse has the column but no yml lists it (compile --strict refuses that). */
  phi: PhiClass | 'unclassified';
  description?: string;
  data_type?: string;
  /** Where `data_type` comes from: the warehouse's catalog after a run, else the yml's `data_type`. */
  type_source?: 'warehouse' | 'yml';
  /** Kinds of the generic tests on this column (`not_null`, `unique`, …). */
  tests: string[];
}

export interface DocsTest {
  name: string;
  kind: ManifestTest['kind'];
  column?: string;
  file: string;
  line?: number;
}

export interface DocsNode {
  /** The manifest id: a model or seed name, `source:<source>.<table>`, or `tenants`. */
  id: string;
  kind: NodeKind;
  /** The URL hash that selects it, e.g. `model/practice_daily_activity`, `source/ehr.patients`. */
  route: string;
  /** What the site shows as its name (`ehr.patients` for a source). */
  label: string;
  description?: string;
  scope: Scope;
  materialized: Materialization;
  schema: string;
  identifier: string;
  tags: string[];
  path: string;
  unique_key: string[];
  pseudonymized: boolean;
  columns: DocsColumn[];
  tests: DocsTest[];
  compiled_sql?: string;
  compiled_incremental_sql?: string;
  /** The model file as the analyst wrote it (Handlebars and all), shown beside the compiled SQL. */
  source_sql?: string;
  /** The node in the last run (target/run_results.json), when it ran. */
  last_run?: DocsNodeRun;
  csv_path?: string;
  macros: string[];
  vars: string[];
  /** Direct upstream node ids (the manifest's depends_on). */
  parents: string[];
  /** Direct downstream node ids. */
  children: string[];
}

export interface DocsTenant {
  id: string;
  name: string;
  timezone: string;
  ready_by: string;
  tags: string[];
  pool: string;
}

export interface DocsData {
  version: typeof DOCS_DATA_VERSION;
  project: string;
  tenant_column: string;
  generated_at: string;
  /** Every node by id: sources, seeds (and `tenants`), models. */
  nodes: Record<string, DocsNode>;
  tenants: DocsTenant[];
  /** The last run's command, id and time, when target/run_results.json was there to read. */
  last_run?: Omit<DocsLastRun, 'nodes'>;
  /** Whether column types were read from the warehouse (and why not, when they were not). */
  catalog: { read: boolean; note: string };
}

/** What `docs generate` found beside the manifest: model files, the warehouse's column types, the last run. */
export interface DocsExtras {
  /** Model name → its SQL file's text. */
  sourceSql?: Record<string, string>;
  /** Node id → column name → engine type, from the warehouse. */
  catalog?: Record<string, Record<string, string>>;
  catalogNote?: string;
  lastRun?: DocsLastRun;
}

/** `source:ehr.patients` → `ehr.patients`; other ids are shown as they are. */
export function nodeLabel(node: Pick<ManifestNode, 'name' | 'kind'>): string {
  return node.kind === 'source' ? node.name.replace(/^source:/, '') : node.name;
}

/**
 * The hash route of a node. Relations tsform builds itself (`tenants`, the vault's token map) are
 * listed with the seeds: they are neither models nor sources.
 */
export function nodeRoute(node: Pick<ManifestNode, 'name' | 'kind'>): string {
  if (node.kind === 'model') return `model/${node.name}`;
  if (node.kind === 'source') return `source/${nodeLabel(node)}`;
  return `seed/${node.name}`;
}

export function buildDocsData(manifest: Manifest, tenants: readonly Tenant[], opts: { generatedAt: Date } & DocsExtras): DocsData {
  const all: ManifestNode[] = [...Object.values(manifest.sources), ...Object.values(manifest.builtins), ...Object.values(manifest.seeds), ...Object.values(manifest.models)];
  const ids = new Set(all.map((n) => n.name));
  const children = new Map<string, string[]>(all.map((n) => [n.name, []]));
  for (const n of all) {
    for (const p of n.depends_on) if (ids.has(p)) children.get(p)!.push(n.name);
  }
  const testsByNode = new Map<string, ManifestTest[]>();
  for (const t of Object.values(manifest.tests)) {
    const list = testsByNode.get(t.attached_to) ?? [];
    list.push(t);
    testsByNode.set(t.attached_to, list);
  }

  const nodes: Record<string, DocsNode> = {};
  for (const n of all) {
    const tests = (testsByNode.get(n.name) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    const described = opts.catalog?.[n.name];
    const columns: DocsColumn[] = Object.entries(n.columns).map(([name, c]) => {
      const fromWarehouse = described?.[name] ?? described?.[name.toLowerCase()];
      const type = fromWarehouse !== undefined ? { data_type: fromWarehouse, type_source: 'warehouse' as const } : c.data_type !== undefined ? { data_type: c.data_type, type_source: 'yml' as const } : {};
      return {
        name,
        phi: c.phi,
        ...(c.description !== undefined ? { description: c.description } : {}),
        ...type,
        tests: tests.filter((t) => t.column === name).map((t) => t.kind),
      };
    });
    // Columns the built relation has and the yml does not list: shown, typed, and marked unclassified.
    const listed = new Set(Object.keys(n.columns).map((c) => c.toLowerCase()));
    for (const [name, type] of Object.entries(described ?? {})) {
      if (!listed.has(name.toLowerCase())) columns.push({ name, phi: 'unclassified', data_type: type, type_source: 'warehouse', tests: [] });
    }
    const lastRun = opts.lastRun?.nodes[n.name];
    const sourceSql = n.kind === 'model' ? opts.sourceSql?.[n.name] : undefined;
    nodes[n.name] = {
      id: n.name,
      kind: n.kind,
      route: nodeRoute(n),
      label: nodeLabel(n),
      ...(n.description !== undefined ? { description: n.description.trim() } : {}),
      scope: n.scope,
      materialized: n.materialized,
      schema: n.schema,
      identifier: n.identifier,
      tags: [...n.tags],
      path: n.path,
      unique_key: [...n.unique_key],
      pseudonymized: n.pseudonymized,
      columns,
      tests: tests.map((t) => ({ name: t.name, kind: t.kind, ...(t.column !== undefined ? { column: t.column } : {}), file: t.file, ...(t.line !== undefined ? { line: t.line } : {}) })),
      ...(n.kind === 'model' ? { compiled_sql: n.compiled_sql } : {}),
      ...(n.kind === 'model' && n.compiled_incremental_sql !== undefined ? { compiled_incremental_sql: n.compiled_incremental_sql } : {}),
      ...(n.kind === 'source' && n.csv_path !== undefined ? { csv_path: n.csv_path } : {}),
      ...(sourceSql !== undefined ? { source_sql: sourceSql } : {}),
      ...(lastRun ? { last_run: lastRun } : {}),
      macros: [...n.macros],
      vars: [...n.vars],
      parents: n.depends_on.filter((p) => ids.has(p)),
      children: (children.get(n.name) ?? []).sort(),
    };
  }
  return {
    version: DOCS_DATA_VERSION,
    project: manifest.project,
    tenant_column: manifest.tenant_column,
    generated_at: opts.generatedAt.toISOString(),
    nodes,
    tenants: tenants.map((t) => ({ id: t.id, name: t.name, timezone: t.timezone, ready_by: t.readyBy, tags: [...t.tags], pool: t.pool })),
    ...(opts.lastRun ? { last_run: { command: opts.lastRun.command, run_id: opts.lastRun.run_id, target: opts.lastRun.target, finished_at: opts.lastRun.finished_at } } : {}),
    catalog: { read: opts.catalog !== undefined, note: opts.catalogNote ?? (opts.catalog ? 'column types from the warehouse' : 'column types from the yml (data_type)') },
  };
}
