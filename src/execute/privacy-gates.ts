import type { Adapter, Session } from '../adapters/adapter.ts';
import { manifestNodes, vaultNode, type Manifest, type ManifestNode, type ModelNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PrivacyConfig } from '../project/types.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { scanRelations, type ScanFinding } from './leak-scan.ts';
import { suppressSmallCells } from './small-cells.ts';

/**
 * Privacy gates that need data (DESIGN §1 promise 3), run on the rows about to be written, in the
 * transaction that writes them: a relation that fails is not written (or keeps its last
 * published content). They report counts and class sizes only; a value is never printed.
 */

/** What a published relation looks like after its gate, for notes and `privacy check`. */
export interface PublicationSummary {
  k: number;
  /** `aggregate` (k_anonymity_count) or `rows` (k-anonymous on every column but the person token). */
  kind: 'aggregate' | 'rows';
  /** Smallest published count (aggregate) or class size (rows); null when nothing is published. */
  smallest: number | null;
  /** Cells not published: below k, and complementary. */
  suppressed: { primary: number; complementary: number };
  rows: number;
}

export function describePublication(p: PublicationSummary): string {
  const smallest = p.smallest === null ? 'nothing published' : `smallest ${p.kind === 'aggregate' ? 'cell' : 'class'} ${p.smallest}`;
  return `k=${p.k}, ${smallest}, ${p.suppressed.primary + p.suppressed.complementary} suppressed cells (${p.suppressed.primary} below k, ${p.suppressed.complementary} complementary), ${p.rows} rows`;
}

/**
 * Columns of `relationSql` that hold person tokens: every non-NULL value is a token of the vault
 * (`holdingAny`: at least one is). Decided by the data, never by a name: a column called
 * person_token that holds anything else is an ordinary column (and so part of every equivalence
 * class).
 */
async function personTokenColumns(s: Session, relationSql: string, columns: readonly string[], manifest: Manifest, holdingAny = false): Promise<string[]> {
  const vault = vaultNode(manifest);
  if (!vault || columns.length === 0) return [];
  const tokens = `(SELECT DISTINCT person_token FROM ${quoteRelation(vault.schema, vault.identifier)})`;
  const checks = columns.map(
    (c, i) =>
      `count(r.${quoteIdent(c)}) AS n${i}, count(*) FILTER (WHERE CAST(r.${quoteIdent(c)} AS VARCHAR) IN ${tokens}) AS t${i}`,
  );
  const { rows } = await s.query(`SELECT ${checks.join(', ')} FROM ${relationSql} AS r`);
  const r = rows[0] ?? {};
  if (holdingAny) return columns.filter((_, i) => Number(r[`t${i}`]) > 0);
  return columns.filter((_, i) => Number(r[`n${i}`]) > 0 && Number(r[`n${i}`]) === Number(r[`t${i}`]));
}

/**
 * k-anonymity of a person- or row-level published relation: equivalence classes over every
 * column except the person token(s) have at least k persons (rows, without a token column).
 */
async function checkRowsKAnonymous(s: Session, relationSql: string, node: ManifestNode, manifest: Manifest, k: number): Promise<PublicationSummary> {
  const columns = (await s.query(`SELECT * FROM ${relationSql} LIMIT 0`)).columns;
  const tokens = await personTokenColumns(s, relationSql, columns, manifest);
  const qi = columns.filter((c) => !tokens.includes(c));
  const size = tokens.length > 0 ? `count(DISTINCT ${quoteIdent(tokens[0]!)})` : 'count(*)';
  const cols = qi.map(quoteIdent).join(', ');
  const classes = `SELECT ${size} AS n FROM ${relationSql}${cols ? ` GROUP BY ${cols}` : ' HAVING count(*) > 0'}`;
  const { rows } = await s.query(`SELECT n AS size, count(*) AS cells FROM (${classes}) AS classes WHERE n < $1 GROUP BY n ORDER BY n`, [k]);
  if (rows.length > 0) {
    throw new TsformError(Codes.privacyGate, `${node.name} not published: quasi-identifier classes (${qi.join(', ') || 'all rows'}) below k=${k} (${histogram(rows)})`);
  }
  const summary = await s.query(`SELECT min(n) AS m FROM (${classes}) AS classes`);
  const total = await s.query(`SELECT count(*) AS n FROM ${relationSql}`);
  const m = summary.rows[0]?.m;
  return { k, kind: 'rows', smallest: m === null || m === undefined ? null : Number(m), suppressed: { primary: 0, complementary: 0 }, rows: Number(total.rows[0]?.n ?? 0) };
}

/**
 * The gate of a published research relation, on its staged rows (`stageTable`, a temp table
 * the caller then publishes): an aggregate (`k_anonymity_count`) is suppressed (primary and
 * complementary) and verified; any other relation must be k-anonymous on every column but the
 * person token; then no value may hold a raw identifier. Throws TSF414 on failure, so the
 * caller's transaction rolls back and nothing is published.
 */
export async function gatePublication(s: Session, stageTable: string, node: ModelNode, manifest: Manifest, privacy: PrivacyConfig): Promise<PublicationSummary> {
  const k = privacy.k;
  let summary: PublicationSummary;
  if (node.k_count) {
    // A cell of an aggregate is a group of persons: one that names a person is a cell of one,
    // whatever its count says.
    const columns = (await s.query(`SELECT * FROM ${quoteIdent(stageTable)} LIMIT 0`)).columns;
    const tokens = await personTokenColumns(s, quoteIdent(stageTable), columns, manifest, true);
    if (tokens.length > 0) throw new TsformError(Codes.privacyGate, `${node.name} not published: an aggregate whose ${tokens.join(', ')} holds person tokens (cells of one person)`);
    const sup = await suppressSmallCells(s, stageTable, node.name, node.k_count, k);
    summary = { k, kind: 'aggregate', smallest: sup.smallest, suppressed: { primary: sup.primary, complementary: sup.complementary }, rows: sup.published };
  } else {
    summary = await checkRowsKAnonymous(s, quoteIdent(stageTable), node, manifest, k);
  }
  await checkStagedForLeaks(s, stageTable, node, manifest, privacy);
  return summary;
}

/**
 * Re-checks a relation already published (`tsform privacy check`): counts at least k (and no
 * NULL count) for an aggregate, k-anonymity for any other relation. Changes nothing.
 */
export async function checkPublished(s: Session, relationSql: string, node: ModelNode, manifest: Manifest, k: number): Promise<{ smallest: number | null; rows: number }> {
  if (!node.k_count) {
    const r = await checkRowsKAnonymous(s, relationSql, node, manifest, k);
    return { smallest: r.smallest, rows: r.rows };
  }
  const columns = (await s.query(`SELECT * FROM ${relationSql} LIMIT 0`)).columns;
  const tokens = await personTokenColumns(s, relationSql, columns, manifest, true);
  if (tokens.length > 0) throw new TsformError(Codes.privacyGate, `${node.name}: an aggregate whose ${tokens.join(', ')} holds person tokens (cells of one person)`);
  const count = quoteIdent(node.k_count);
  const { rows } = await s.query(
    `SELECT ${count} AS size, count(*) AS cells FROM ${relationSql} WHERE ${count} IS NULL OR (${count} <> 0 AND ${count} < $1) GROUP BY 1 ORDER BY 1`,
    [k],
  );
  if (rows.length > 0) throw new TsformError(Codes.privacyGate, `${node.name}: published cells below k=${k} (${histogram(rows)})`);
  const r = await s.query(`SELECT min(${count}) FILTER (WHERE ${count} <> 0) AS m, count(*) AS n FROM ${relationSql}`);
  const m = r.rows[0]?.m;
  return { smallest: m === null || m === undefined ? null : Number(m), rows: Number(r.rows[0]?.n ?? 0) };
}

function histogram(rows: { size?: unknown; cells?: unknown }[]): string {
  return rows.map((r) => `${Number(r.cells)} of size ${r.size === null ? 'NULL' : Number(r.size)}`).join(', ');
}

export interface LeakFinding {
  relation: string;
  column: string;
  /** Rows whose value holds a raw identifier. */
  rows: number;
}

/**
 * The leak scan on rows about to be written to pseudo or research (inside the writing
 * transaction): a relation holding a raw identifier is never written. `tenants`: the practices
 * of a tenant-scoped batch (their identifiers are the only ones it can hold).
 */
export async function checkStagedForLeaks(
  s: Session,
  stageTable: string,
  node: ManifestNode,
  manifest: Manifest,
  privacy: PrivacyConfig,
  tenants?: readonly string[],
): Promise<void> {
  const columns = (await s.query(`SELECT * FROM ${quoteIdent(stageTable)} LIMIT 0`)).columns;
  const findings = await scanRelations(s, manifest, privacy, [node], [{ name: node.name, relationSql: quoteIdent(stageTable), columns }], tenants);
  const listed = (kind: ScanFinding['kind']) => findings.filter((f) => f.kind === kind).map((f) => `${f.column} (${f.rows} rows)`).join(', ');
  if (findings.some((f) => f.kind === 'identifier')) {
    throw new TsformError(Codes.privacyGate, `${node.name} not published: raw direct identifiers in ${listed('identifier')}`);
  }
  if (findings.length > 0) {
    throw new TsformError(
      Codes.privacyGate,
      `${node.name} not written: person tokens of other practices' persons in ${listed('other_practice_person')}; a practice's research slice holds its own persons only (read a global research relation per person, joined on its person token)`,
    );
  }
}

/** The leak scan over every pseudonymized relation as it is in the warehouse (after a run). */
export async function scanForLeaks(adapter: Adapter, manifest: Manifest, privacy: PrivacyConfig): Promise<LeakFinding[]> {
  const nodes = manifestNodes(manifest);
  const targets: { node: ManifestNode; columns: string[] }[] = [];
  // Described before the transaction: the adapter's pool may have a single connection.
  for (const node of Object.values(nodes).filter((n) => n.kind === 'model' && n.pseudonymized && n.materialized !== 'ephemeral')) {
    const info = await adapter.describe(node.schema, node.identifier);
    if (info) targets.push({ node, columns: info.columns.map((c) => c.name) });
  }
  if (targets.length === 0) return [];
  return adapter.transaction((s) =>
    scanRelations(
      s,
      manifest,
      privacy,
      targets.map((t) => t.node),
      targets.map((t) => ({ name: `${t.node.schema}.${t.node.identifier}`, relationSql: quoteRelation(t.node.schema, t.node.identifier), columns: t.columns })),
    ),
  );
}
