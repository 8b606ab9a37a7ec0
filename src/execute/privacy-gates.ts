import type { Adapter, Session } from '../adapters/adapter.ts';
import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PrivacyConfig } from '../project/types.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/**
 * Privacy gates that need data (DESIGN §1 promise 3). Both report counts and class sizes only;
 * a value that failed a gate is never printed.
 */

/** Quasi-identifier columns of a relation, from its yml `phi: quasi`. */
export function quasiColumns(node: ManifestNode): string[] {
  return Object.entries(node.columns)
    .filter(([, c]) => c.phi === 'quasi')
    .map(([name]) => name);
}

/**
 * k-anonymity of rows about to be published (the staged rows of a research relation): every
 * quasi-identifier combination has at least k rows, or, for an aggregate with a class-size
 * column, every published size is NULL (suppressed) or at least k. Throws TSF414 with the
 * class sizes, so the caller's transaction rolls back and nothing is published.
 */
/** `relationSql` is already quoted (quoteIdent / quoteRelation). */
export async function checkKAnonymity(s: Session, relationSql: string, node: ManifestNode, k: number): Promise<void> {
  const stage = relationSql;
  if (node.k_count) {
    const { rows } = await s.query(
      `SELECT ${quoteIdent(node.k_count)} AS size, count(*) AS cells FROM ${stage} WHERE ${quoteIdent(node.k_count)} IS NOT NULL AND ${quoteIdent(node.k_count)} < $1 GROUP BY 1 ORDER BY 1`,
      [k],
    );
    if (rows.length > 0) throw new TsformError(Codes.privacyGate, `${node.name} not published: cells below k=${k} (${histogram(rows)}); suppress them`);
    return;
  }
  const qi = quasiColumns(node);
  if (qi.length === 0) return;
  const cols = qi.map(quoteIdent).join(', ');
  const { rows } = await s.query(
    `SELECT n AS size, count(*) AS cells FROM (SELECT ${cols}, count(*) AS n FROM ${stage} GROUP BY ${cols}) AS classes WHERE n < $1 GROUP BY n ORDER BY n`,
    [k],
  );
  if (rows.length > 0) {
    throw new TsformError(Codes.privacyGate, `${node.name} not published: quasi-identifier classes (${qi.join(', ')}) below k=${k} (${histogram(rows)})`);
  }
}

function histogram(rows: { size?: unknown; cells?: unknown }[]): string {
  return rows.map((r) => `${Number(r.cells)} of size ${Number(r.size)}`).join(', ');
}

export interface LeakFinding {
  relation: string;
  column: string;
  /** Rows whose value contains a raw direct identifier. */
  rows: number;
}

/**
 * Leak scan: no value of any raw direct identifier (every source column classified `direct`,
 * plus the identity model's full birth date) appears in any text column of a research or
 * pseudonymized relation, whole or inside free text.
 */
function identifierSelects(manifest: Manifest, privacy: PrivacyConfig): string[] {
  const identifiers: string[] = [];
  for (const n of Object.values(manifest.sources)) {
    for (const [col, c] of Object.entries(n.columns)) {
      if (c.phi === 'direct') identifiers.push(`SELECT CAST(${quoteIdent(col)} AS VARCHAR) AS v FROM ${quoteRelation(n.schema, n.identifier)}`);
    }
  }
  const identity = manifest.models[privacy.identityModel];
  if (identity) identifiers.push(`SELECT CAST(${quoteIdent(privacy.identity.birthDate)} AS VARCHAR) AS v FROM ${quoteRelation(identity.schema, identity.identifier)}`);
  return identifiers;
}

const IDENTIFIERS = '__tsf_identifiers';

async function stageIdentifiers(s: Session, identifiers: string[], minLength: number, withDates: boolean): Promise<void> {
  // Without column types (a staged table), a published month could equal someone's birth date
  // by chance: the in-transaction scan leaves dates to the typed scan after the run.
  const dates = withDates ? '' : ` AND NOT (v LIKE '____-__-__')`;
  await s.createTempTableAs(IDENTIFIERS, `SELECT DISTINCT v FROM (${identifiers.join('\nUNION ALL\n')}) AS ids WHERE v IS NOT NULL AND length(v) >= $1${dates}`, [minLength]);
}

async function rowsContainingIdentifiers(s: Session, relationSql: string, column: string): Promise<number> {
  const { rows } = await s.query(
    `SELECT count(*) AS n FROM ${relationSql} AS r
      WHERE EXISTS (SELECT 1 FROM ${quoteIdent(IDENTIFIERS)} AS i WHERE position(i.v IN CAST(r.${quoteIdent(column)} AS VARCHAR)) > 0)`,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * The leak scan on rows about to be published (inside the publishing transaction): a research
 * relation holding a raw identifier is never written, not only reported afterwards.
 */
export async function checkStagedForLeaks(s: Session, stageTable: string, node: ManifestNode, manifest: Manifest, privacy: PrivacyConfig, minLength = 4): Promise<void> {
  const identifiers = identifierSelects(manifest, privacy);
  if (identifiers.length === 0) return;
  const probe = await s.query(`SELECT * FROM ${quoteIdent(stageTable)} LIMIT 0`);
  await stageIdentifiers(s, identifiers, minLength, false);
  const findings: string[] = [];
  for (const column of probe.columns) {
    const n = await rowsContainingIdentifiers(s, quoteIdent(stageTable), column);
    if (n > 0) findings.push(`${column} (${n} rows)`);
  }
  await s.query(`DROP TABLE IF EXISTS ${quoteIdent(IDENTIFIERS)}`);
  if (findings.length > 0) throw new TsformError(Codes.privacyGate, `${node.name} not published: raw direct identifiers in ${findings.join(', ')}`);
}

export async function scanForLeaks(adapter: Adapter, manifest: Manifest, privacy: PrivacyConfig, minLength = 4): Promise<LeakFinding[]> {
  const nodes = manifestNodes(manifest);
  const identifiers = identifierSelects(manifest, privacy);
  if (identifiers.length === 0) return [];
  const targets: { node: ManifestNode; columns: string[] }[] = [];
  // Described before the transaction: the adapter's pool may have a single connection.
  for (const node of Object.values(nodes).filter((n) => n.kind === 'model' && n.pseudonymized && n.materialized !== 'ephemeral')) {
    const info = await adapter.describe(node.schema, node.identifier);
    if (info) targets.push({ node, columns: info.columns.filter((c) => /char|text|string/.test(c.type)).map((c) => c.name) });
  }
  const findings: LeakFinding[] = [];
  await adapter.transaction(async (s) => {
    await stageIdentifiers(s, identifiers, minLength, true);
    for (const { node, columns } of targets) {
      for (const column of columns) {
        const n = await rowsContainingIdentifiers(s, quoteRelation(node.schema, node.identifier), column);
        if (n > 0) findings.push({ relation: `${node.schema}.${node.identifier}`, column, rows: n });
      }
    }
    await s.query(`DROP TABLE IF EXISTS ${quoteIdent(IDENTIFIERS)}`);
  });
  return findings;
}
