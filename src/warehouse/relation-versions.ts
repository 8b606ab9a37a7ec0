import { createHash } from 'node:crypto';
import type { Session } from '../adapters/adapter.ts';
import { manifestNodes, type Manifest, type ManifestNode, type ModelNode } from '../artifacts/manifest.ts';
import { quoteRelation } from '../sql/quote.ts';
import { relationKey } from './deletion-epochs.ts';
import { RELATION_VERSIONS } from './meta-schema.ts';

/**
 * Which SQL built each slice of an incremental model. An `is_incremental` rendering reads
 * `{{this}}`, and the PHI gate exempts its high-water test only because `{{this}}` holds what
 * this same SQL selected (phi-lineage-nodes.ts isHighWater). A table left by an earlier version
 * of the model (or by anything else) could hold rows chosen so that the bound selects one
 * person's records. So a slice is merged only when the recorded version is the model's current
 * one (its SQL and its upstream's: modelVersion); otherwise it is rebuilt in full from the full
 * rendering. This also keeps a changed model's old rows consistent with its new logic (SQLMesh
 * versions models the same way; dbt leaves it to a manual --full-refresh).
 */

type Queryable = Pick<Session, 'query'>;

/** The `tenant` of a relation built whole (global incremental models). */
export const WHOLE_RELATION = '*';

const versionCache = new WeakMap<Manifest, Map<string, string>>();

/**
 * A hash of what decides an incremental model's rows: both renderings and the merge key, and the
 * same of every model and seed upstream, transitively. Upstream counts because `{{this}}` holds
 * what they gave: a staging table that kept one ZIP's persons while nothing published read it,
 * then every person, leaves an unchanged incremental model merging new rows onto the first
 * population. Sources count by name only: their rows are what incremental loading is for.
 */
export function modelVersion(manifest: Manifest, node: ModelNode): string {
  const cache = versionCache.get(manifest) ?? new Map<string, string>();
  versionCache.set(manifest, cache);
  const cached = cache.get(node.name);
  if (cached !== undefined) return cached;
  const nodes = manifestNodes(manifest);
  const parts: string[] = [];
  const seen = new Set<string>();
  const stack = [node.name];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const n = nodes[name];
    if (!n) continue;
    parts.push(definition(n));
    stack.push(...n.depends_on);
  }
  const version = createHash('sha256').update(parts.sort().join('\u0001')).digest('hex');
  cache.set(node.name, version);
  return version;
}

function definition(n: ManifestNode): string {
  switch (n.kind) {
    case 'model':
      return [n.name, n.materialized, n.compiled_sql, n.compiled_incremental_sql ?? '', n.unique_key.join(',')].join('\u0000');
    case 'seed':
      return [n.name, n.checksum].join('\u0000');
    default:
      return n.name;
  }
}

/** What these keys' (practices', or WHOLE_RELATION's) versions tell about `node`'s slices. */
export interface VersionCheck {
  /** Built by other SQL than the model's current SQL: rebuild in full. */
  changed: Set<string>;
  /** No record (a new practice; a slice another materialization wrote, or written before tsform recorded versions): build in full. */
  unrecorded: Set<string>;
}

export async function checkVersions(q: Queryable, metaSchema: string, manifest: Manifest, node: ModelNode, keys: readonly string[]): Promise<VersionCheck> {
  const { rows } = await q.query(
    `SELECT tenant, version FROM ${quoteRelation(metaSchema, RELATION_VERSIONS.name)} WHERE relation = $1 AND tenant = ANY($2::VARCHAR[])`,
    [relationKey(node), [...keys]],
  );
  const recorded = new Map(rows.map((r) => [String(r.tenant), String(r.version)]));
  const current = modelVersion(manifest, node);
  const out: VersionCheck = { changed: new Set(), unrecorded: new Set() };
  for (const k of keys) {
    const v = recorded.get(k);
    if (v === undefined) out.unrecorded.add(k);
    else if (v !== current) out.changed.add(k);
  }
  return out;
}

/**
 * Records that these keys' slices are now built by the model's current SQL. Called after the
 * slice commits (on DuckDB a research relation and the meta schema are different files, which
 * one transaction cannot both write): a crash in between leaves the older record, which costs one
 * more full rebuild and never a merge over rows of other SQL.
 */
export async function recordVersions(q: Queryable, metaSchema: string, manifest: Manifest, node: ModelNode, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  const rel = quoteRelation(metaSchema, RELATION_VERSIONS.name);
  await q.query(
    `INSERT INTO ${rel} (relation, tenant, version)
     SELECT CAST($1 AS VARCHAR), u.t, CAST($3 AS VARCHAR) FROM unnest($2::VARCHAR[]) AS u(t)
     ON CONFLICT (relation, tenant) DO UPDATE SET version = excluded.version`,
    [relationKey(node), [...new Set(keys)], modelVersion(manifest, node)],
  );
}

/** Forgets these practices' records of `node`: their slices are gone, and one built again starts in full, as a new practice's. */
export async function forgetVersions(q: Queryable, metaSchema: string, node: ModelNode, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await q.query(`DELETE FROM ${quoteRelation(metaSchema, RELATION_VERSIONS.name)} WHERE relation = $1 AND tenant = ANY($2::VARCHAR[])`, [relationKey(node), [...keys]]);
}

/**
 * Forgets the records of every relation this manifest does not build as an incremental model;
 * once per run, before anything is built. A table model, a seed or a view written at that
 * relation holds rows no incremental SQL chose, so a model that is incremental there again, even
 * with exactly the SQL its old record names (incremental, then a table planting its bound, then
 * incremental as before), starts in full.
 */
export async function forgetNonIncremental(q: Queryable, metaSchema: string, manifest: Manifest): Promise<void> {
  const incremental = Object.values(manifest.models).filter((m) => m.materialized === 'incremental').map(relationKey);
  await q.query(`DELETE FROM ${quoteRelation(metaSchema, RELATION_VERSIONS.name)} WHERE NOT (relation = ANY($1::VARCHAR[]))`, [incremental]);
}
