import type { Session } from '../adapters/adapter.ts';
import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { quoteRelation } from '../sql/quote.ts';
import { DELETION_EPOCHS } from './meta-schema.ts';

/**
 * How deletes reach incremental models (DESIGN §3). An incremental model only merges new and
 * changed rows, so a row its upstream lost would stay in it for good. Instead of asking every
 * analyst for tombstone logic, tsform counts deletions per (loaded source, practice) — an
 * epoch — and every tenant-scoped table records, with its slice and in the same transaction,
 * the epochs it has absorbed. An incremental model's practice whose upstream has absorbed a
 * newer epoch than the model has is rebuilt in full (its slice only); the others merge as before.
 *
 * Upstream means the stored relations a model reads, seen through views and ephemeral models;
 * a stored model counts with what IT absorbed, not the source's latest epoch, so a model built
 * from a stale intermediate does not claim the deletion and is rebuilt again once the
 * intermediate has caught up.
 */

type Queryable = Pick<Session, 'query'>;

/** Epochs per upstream source (raw relation), per practice. */
export type Epochs = Map<string, Map<string, number>>;

/** The key of a stored relation in deletion_epochs. */
export function relationKey(node: Pick<ManifestNode, 'schema' | 'identifier'>): string {
  return `${node.schema}.${node.identifier}`;
}

/** Counts one deletion in each practice's slice of a loaded source, in the transaction that deleted. */
export async function countDeletion(s: Queryable, metaSchema: string, relation: string, tenants: readonly string[]): Promise<void> {
  if (tenants.length === 0) return;
  const rel = quoteRelation(metaSchema, DELETION_EPOCHS.name);
  // One statement: two practices' chunks may count a deletion for the same practice at once (a
  // row moved away from it). PostgreSQL makes the second wait and then add its own; DuckDB
  // reports a write conflict, retried like one. An UPDATE then an INSERT … WHERE NOT EXISTS let
  // both insert on PostgreSQL, and the second failed for good (23505).
  await s.query(
    `INSERT INTO ${rel} AS d (relation, tenant, source, epoch)
     SELECT CAST($1 AS VARCHAR), u.t, CAST($1 AS VARCHAR), 1 FROM unnest($2::VARCHAR[]) AS u(t)
     ON CONFLICT (relation, tenant, source) DO UPDATE SET epoch = d.epoch + 1`,
    [relation, [...new Set(tenants)]],
  );
}

/** A stored relation a model reads, and the loaded sources behind it. */
interface Upstream {
  relation: string;
  isSource: boolean;
  sources: ReadonlySet<string>;
}

/** Sources are the leaves: those tsform loads (CSV, capture) can lose rows. */
function isLoadedSource(node: ManifestNode): boolean {
  return node.kind === 'source' && (node.csv_path !== undefined || node.capture !== undefined);
}

function isStoredTenantModel(node: ManifestNode): boolean {
  return node.kind === 'model' && node.scope === 'tenant' && (node.materialized === 'table' || node.materialized === 'incremental');
}

const lineageCache = new WeakMap<Manifest, Map<string, Upstream[]>>();

/** The stored relations `node` reads directly, looking through views and ephemeral models. */
function storedUpstreamOf(manifest: Manifest, node: ManifestNode): Upstream[] {
  const cache = lineageCache.get(manifest) ?? new Map<string, Upstream[]>();
  lineageCache.set(manifest, cache);
  const all = manifestNodes(manifest);
  const sourcesOf = (n: ManifestNode, seen: Set<string>): Set<string> => {
    if (isLoadedSource(n)) return new Set([relationKey(n)]);
    const out = new Set<string>();
    for (const dep of n.depends_on) {
      const d = all[dep];
      if (!d || seen.has(dep)) continue;
      seen.add(dep);
      for (const s of sourcesOf(d, seen)) out.add(s);
    }
    return out;
  };
  const direct = (n: ManifestNode, seen: Set<string>): Upstream[] => {
    const cached = cache.get(n.name);
    if (cached) return cached;
    const out: Upstream[] = [];
    for (const dep of n.depends_on) {
      const d = all[dep];
      if (!d || seen.has(dep)) continue;
      seen.add(dep);
      if (isLoadedSource(d)) out.push({ relation: relationKey(d), isSource: true, sources: new Set([relationKey(d)]) });
      else if (isStoredTenantModel(d)) out.push({ relation: relationKey(d), isSource: false, sources: sourcesOf(d, new Set()) });
      else if (d.kind === 'model') out.push(...direct(d, seen));
    }
    return out;
  };
  const result = direct(node, new Set()).filter((u) => u.sources.size > 0);
  cache.set(node.name, result);
  return result;
}

/** What a batch of one model's slices must absorb, and which practices have not yet. */
export interface Absorption {
  /** Per practice, per source: the epoch its upstream has absorbed (what the slice records once written). */
  upstream: Epochs;
  /** Practices whose slice holds rows an upstream has since lost: rebuild them in full. */
  stale: Set<string>;
  /** Practices whose record differs from `upstream` (only they are written: no deletes, no writes). */
  changed: Set<string>;
}

/** Reads the epochs of `node`'s upstream and of its own slices, for these practices. */
export async function readAbsorption(q: Queryable, metaSchema: string, manifest: Manifest, node: ManifestNode, tenants: readonly string[]): Promise<Absorption | undefined> {
  const upstream = storedUpstreamOf(manifest, node);
  if (upstream.length === 0 || tenants.length === 0) return undefined;
  const self = relationKey(node);
  const { rows } = await q.query(
    `SELECT relation, tenant, source, epoch FROM ${quoteRelation(metaSchema, DELETION_EPOCHS.name)}
      WHERE relation = ANY($1::VARCHAR[]) AND tenant = ANY($2::VARCHAR[])`,
    [[self, ...new Set(upstream.map((u) => u.relation))], [...tenants]],
  );
  const epochOf = new Map(rows.map((r) => [`${String(r.relation)}\u0000${String(r.tenant)}\u0000${String(r.source)}`, Number(r.epoch)]));
  const at = (relation: string, tenant: string, source: string): number => epochOf.get(`${relation}\u0000${tenant}\u0000${source}`) ?? 0;
  const result: Absorption = { upstream: new Map(), stale: new Set(), changed: new Set() };
  for (const tenant of tenants) {
    const absorbed = new Map<string, number>();
    for (const u of upstream) {
      // several paths to one source: the slice has absorbed only what the stalest path has
      for (const source of u.sources) absorbed.set(source, Math.min(absorbed.get(source) ?? Infinity, at(u.relation, tenant, source)));
    }
    result.upstream.set(tenant, absorbed);
    if ([...absorbed].some(([source, epoch]) => epoch > at(self, tenant, source))) result.stale.add(tenant);
    if ([...absorbed].some(([source, epoch]) => epoch !== at(self, tenant, source))) result.changed.add(tenant);
  }
  return result;
}

/** Records what these practices' slices of `node` now hold; in the transaction that wrote them. */
export async function recordAbsorbed(s: Queryable, metaSchema: string, node: ManifestNode, absorption: Absorption, batch: readonly string[]): Promise<void> {
  // A missing row reads as epoch 0, so a fleet that never deleted anything never writes here.
  const tenants = batch.filter((t) => absorption.changed.has(t));
  if (tenants.length === 0) return;
  const rel = quoteRelation(metaSchema, DELETION_EPOCHS.name);
  const self = relationKey(node);
  await s.query(`DELETE FROM ${rel} WHERE relation = $1 AND tenant = ANY($2::VARCHAR[])`, [self, [...tenants]]);
  const tenantCol: string[] = [];
  const sourceCol: string[] = [];
  const epochCol: string[] = [];
  for (const t of tenants) {
    for (const [source, epoch] of absorption.upstream.get(t) ?? []) {
      tenantCol.push(t);
      sourceCol.push(source);
      epochCol.push(String(epoch));
    }
  }
  if (tenantCol.length === 0) return;
  await s.query(
    `INSERT INTO ${rel} (relation, tenant, source, epoch)
     SELECT CAST($1 AS VARCHAR), t, s, e FROM (SELECT unnest($2::VARCHAR[]) AS t, unnest($3::VARCHAR[]) AS s, unnest($4::BIGINT[]) AS e) AS u`,
    [self, tenantCol, sourceCol, epochCol],
  );
}
