import type { Session, SqlParam } from '../adapters/adapter.ts';
import { manifestNodes, vaultNode, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import type { PrivacyConfig } from '../project/types.ts';
import { compactSql, hasDigitSql, identifierFormsSql, identifierShapeSql, wordsSql } from '../security/recognisable-forms.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { otherPracticesPersons, type OwnPersons } from './slice-persons.ts';

/**
 * The leak scan: does a research value hold a raw identifier in a form a person would recognise?
 *
 * Identifiers: every `direct` column of the relations a research relation is built from (its
 * sources and identifiable models, transitively), compared with every value of every research
 * column of any type (cast to text), in normalized forms (recognisable-forms.ts): case,
 * punctuation and spacing ignored, SSN and phone as digits, a ZIP or SSN without leading zeros.
 * A value matches when an identifier is one of its whole words or word sequences, or equals it
 * once compacted (`Fred  289` = `fred289`). Word boundaries keep a ZIP from matching inside a
 * hexadecimal token or a cost.
 *
 * Shapes: a value shaped like an SSN, an email address or a phone number with its separators
 * is a finding even when no declared identifier holds it (recognisable-forms.ts), so a new
 * source column declared `none` still cannot publish one.
 *
 * Per-person identifiers: the identity model's quasi-identifiers that carry digits (full birth
 * date, ZIP5, other full dates) match only a row that also holds the vault token of that same
 * person, so a common date or number is not a false positive.
 *
 * Everything here reports relations, columns and row counts; no value leaves the database.
 */

const IDS = '__tsf_scan_ids';
const PERSON_IDS = '__tsf_scan_person_ids';
const VALS = '__tsf_scan_values';
const FORMS = '__tsf_scan_value_forms';
const WORDS = '__tsf_scan_words';
const ROW_PERSONS = '__tsf_scan_row_persons';
const PERSON_CELLS = '__tsf_scan_person_cells';
const WANTED = '__tsf_scan_wanted';
const ALL_FORMS = '__tsf_scan_all_forms';
const ALL_WORDS = '__tsf_scan_all_words';
const PER_VALUE = [VALS, FORMS, WORDS, ROW_PERSONS, PERSON_CELLS];
const TEMP_TABLES = [ALL_FORMS, ALL_WORDS, WANTED, IDS, PERSON_IDS, ...PER_VALUE];

/** Identifiers shorter than this (compacted) are not compared: `Mr`, `M`, `MA`. */
export const MIN_IDENTIFIER_LENGTH = 4;

export interface ScanColumns {
  /** Column names of the scanned relation, in order. */
  columns: string[];
}

function allNodes(manifest: Manifest): Map<string, ManifestNode> {
  return new Map(Object.values(manifestNodes(manifest)).map((n) => [n.name, n]));
}

/** Nodes `roots` are built from, transitively (the roots excluded). */
export function ancestorsOf(manifest: Manifest, roots: readonly ManifestNode[]): ManifestNode[] {
  const nodes = allNodes(manifest);
  const seen = new Set<string>(roots.map((r) => r.name));
  const out: ManifestNode[] = [];
  const stack = roots.flatMap((r) => r.depends_on);
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const n = nodes.get(name);
    if (!n) continue;
    out.push(n);
    stack.push(...n.depends_on);
  }
  return out;
}

/** The relations whose `direct` columns are identifiers for a scan of `roots`. */
export function identifierRelations(manifest: Manifest, roots: readonly ManifestNode[]): ManifestNode[] {
  return ancestorsOf(manifest, roots).filter(
    (n) => (n.kind === 'source' || (n.kind === 'model' && !n.pseudonymized)) && n.materialized !== 'ephemeral' && Object.values(n.columns).some((c) => c.phi === 'direct'),
  );
}

/**
 * The normalized forms of every distinct value of every target, computed once per scan:
 * `ALL_FORMS` (padded words, compacted form) and `ALL_WORDS`; matchingRows takes each target's
 * share of them. `WANTED` is every word and compacted form among them: an identifier form can
 * match a value only if its first word is one of the value's words (`position(form IN padded)`)
 * or its compacted form equals the value's, so the identifiers are staged for these alone. A
 * published aggregate of a few rows then stages a few identifiers, not every practice's: that
 * table was most of the scan's memory (~1 GB at 5,000 practices, where a published model ran out
 * of DuckDB's 768MB).
 */
async function stageValueForms(s: Session, targets: readonly ScanTarget[]): Promise<void> {
  const values = targets
    .filter((t) => t.columns.length > 0)
    .map((t) => `SELECT unnest(ARRAY[${t.columns.map(castText).join(', ')}]) AS t FROM ${t.relationSql} AS r`);
  if (values.length === 0) values.push('SELECT CAST(NULL AS VARCHAR) AS t');
  await s.createTempTableAs(
    ALL_FORMS,
    `SELECT t, ' ' || ${wordsSql('t')} || ' ' AS padded, ${compactSql('t')} AS compact
       FROM (SELECT DISTINCT t FROM (${values.join('\nUNION ALL\n')}) AS v WHERE t IS NOT NULL) AS d`,
    [],
  );
  await s.createTempTableAs(ALL_WORDS, `SELECT DISTINCT t, unnest(string_to_array(trim(padded), ' ')) AS word FROM ${quoteIdent(ALL_FORMS)}`, []);
  await s.createTempTableAs(
    WANTED,
    `SELECT DISTINCT k FROM (SELECT word AS k FROM ${quoteIdent(ALL_WORDS)} UNION ALL SELECT compact AS k FROM ${quoteIdent(ALL_FORMS)}) AS x WHERE k IS NOT NULL`,
    [],
  );
}

/** A column of the scanned row `r` as text, the same in every statement that reads values. */
function castText(column: string): string {
  return `CAST(r.${quoteIdent(column)} AS VARCHAR)`;
}

/** An identifier form `w` (words joined by spaces) that a target value could match (stageValueForms). */
function wanted(w: string): string {
  const set = `(SELECT k FROM ${quoteIdent(WANTED)})`;
  return `(replace(${w}, ' ', '') IN ${set} OR split_part(${w}, ' ', 1) IN ${set})`;
}

/**
 * Creates the identifier tables of one scan in the session, only the forms a value can match
 * (stageValueForms). With `tenants`, a tenant-scoped relation contributes only those practices'
 * rows (a tenant-scoped model reads no other rows). Returns whether per-person values (through
 * the vault) are part of the scan.
 */
async function stageIdentifiers(
  s: Session,
  manifest: Manifest,
  privacy: PrivacyConfig,
  relations: readonly ManifestNode[],
  tenants: readonly string[] | undefined,
): Promise<boolean> {
  const tc = quoteIdent(manifest.tenant_column);
  const params: SqlParam[] = tenants ? [[...tenants]] : [];
  const slice = (n: ManifestNode) => (tenants && n.scope === 'tenant' ? ` WHERE ${tc} = ANY($1::VARCHAR[])` : '');
  // Bound only where a slice uses it: an engine refuses a parameter the statement does not have
  // (a model whose ancestors are all global or hold no direct column).
  const bound = (sql: string): SqlParam[] => (sql.includes('$1::VARCHAR[]') ? params : []);
  // One read per relation, its columns unpivoted after the practice filter. A select per column
  // read a partitioned relation's partitions once per column: on PostgreSQL with
  // partition_by_practice a 50-practice batch's identifiers took 0.16–0.56 s against 0.22–3.4 s,
  // and a steady run of the demo's models at 1,000 practices 54 s against 123 s (profiled). On
  // DuckDB, over every batch of a 5,000-practice run, 5–13 % less (less for batches of small
  // practices, up to 30 % more for one large practice alone). The filter sits inside the
  // sub-select: applied after the unpivot, DuckDB unpivoted the whole relation (3–4 s a batch).
  // The identifiers alone unpivot with unnest(ARRAY[…]) in the select list: on DuckDB 7–13 ms
  // against 20–87 ms for a LATERAL VALUES join per relation of a 50-practice batch (3,763
  // patients × 10–15 columns, 29,931 encounters × 2; the batch's identifier table 373 → 211 ms),
  // the same on PostgreSQL. Values carried beside them (the per-person ones, joined to the vault
  // next) keep the join: with unnest PostgreSQL's plan of that join took twice as long
  // (125–145 → 245–261 ms for a batch of a 200-practice fleet) and DuckDB gained nothing.
  const unpivoted = (n: ManifestNode, columns: readonly string[], carried: Readonly<Record<string, string>> = {}): string => {
    const read = [...new Set([...Object.values(carried), ...columns])].map(quoteIdent).join(', ');
    const from = `(SELECT ${read} FROM ${quoteRelation(n.schema, n.identifier)}${slice(n)}) AS r`;
    const keep = Object.entries(carried).map(([alias, col]) => `r.${quoteIdent(col)} AS ${quoteIdent(alias)}, `).join('');
    if (keep === '') return `SELECT unnest(ARRAY[${columns.map(castText).join(', ')}]) AS v FROM ${from}`;
    const values = columns.map((c) => `(${castText(c)})`).join(', ');
    return `SELECT ${keep}x.v FROM ${from} CROSS JOIN LATERAL (VALUES ${values}) AS x(v)`;
  };
  const selects = relations.flatMap((n) => {
    const direct = Object.entries(n.columns)
      .filter(([, c]) => c.phi === 'direct')
      .map(([col]) => col);
    return direct.length === 0 ? [] : [unpivoted(n, direct)];
  });
  if (selects.length === 0) selects.push('SELECT CAST(NULL AS VARCHAR) AS v');
  // OFFSET 0 keeps PostgreSQL from inlining `w` and `c` (two regular expressions) into every
  // form row that names them: 45 % of this statement there, and no change on DuckDB (measured
  // with bench/lib/leak-scan-profile.ts; the same fence on the per-person values slowed DuckDB).
  await s.createTempTableAs(
    IDS,
    `SELECT DISTINCT CASE WHEN NOT f.whole THEN ' ' || f.w || ' ' END AS form, CASE WHEN NOT f.whole THEN split_part(f.w, ' ', 1) END AS first_word,
            replace(f.w, ' ', '') AS compact
       FROM (SELECT ${wordsSql('v')} AS w, ${compactSql('v')} AS c FROM (${selects.join('\nUNION\n')}) AS raw WHERE v IS NOT NULL OFFSET 0) AS ids
       CROSS JOIN LATERAL ${identifierFormsSql('ids.w', 'ids.c')} AS f(w, whole)
      WHERE f.w IS NOT NULL AND length(replace(f.w, ' ', '')) >= ${MIN_IDENTIFIER_LENGTH} AND ${wanted('f.w')}`,
    bound(selects.join('\n')),
  );
  const identity = manifest.models[privacy.identityModel];
  const vault = vaultNode(manifest);
  const perPerson = identity
    ? Object.entries(identity.columns)
        .filter(([name, c]) => c.phi === 'quasi' || name === privacy.identity.birthDate)
        .map(([name]) => name)
    : [];
  // Per-person values matter only where the scanned relations descend from the identity model
  // (and it may not be built yet when they do not).
  const fromIdentity = identity !== undefined && relations.some((n) => n.name === identity.name);
  if (!identity || !vault || perPerson.length === 0 || !fromIdentity) {
    await s.createTempTableAs(
      PERSON_IDS,
      `SELECT CAST(NULL AS VARCHAR) AS person_token, CAST(NULL AS VARCHAR) AS form, CAST(NULL AS VARCHAR) AS compact, FALSE AS whole WHERE 1 = 0`,
      [],
    );
    return false;
  }
  const values = unpivoted(identity, perPerson, { t: manifest.tenant_column, patient_id: privacy.identity.patientId });
  await s.createTempTableAs(
    PERSON_IDS,
    `SELECT DISTINCT vt.person_token, CASE WHEN NOT f.whole THEN ' ' || f.w || ' ' END AS form, replace(f.w, ' ', '') AS compact, f.whole
       FROM (SELECT t, patient_id, ${wordsSql('v')} AS w, ${compactSql('v')} AS c FROM (${values}) AS raw WHERE v IS NOT NULL) AS p
       JOIN ${quoteRelation(vault.schema, vault.identifier)} AS vt ON vt.${tc} = p.t AND vt.patient_id = p.patient_id
       CROSS JOIN LATERAL ${identifierFormsSql('p.w', 'p.c')} AS f(w, whole)
      WHERE f.w IS NOT NULL AND ${hasDigitSql("replace(f.w, ' ', '')")} AND length(replace(f.w, ' ', '')) >= ${MIN_IDENTIFIER_LENGTH} AND ${wanted('f.w')}`,
    bound(values),
  );
  return true;
}

/**
 * Rows per column of `relationSql` holding an identifier; the identifier tables must exist.
 *
 * Whether a cell matches depends only on its value and on the persons whose tokens its row
 * holds, and a research relation repeats few values (a month, a code, a person's token on each
 * of their rows: 240k cells of a 200-practice fleet hold 6k values). So the normalized forms are
 * computed once per distinct value and matched once per (column, value, person); the matches
 * are then counted back onto rows.
 */
async function matchingRows(
  s: Session,
  relationSql: string,
  columns: readonly string[],
  vault: ManifestNode | undefined,
  ownPersons: OwnPersons | undefined,
): Promise<{ found: Map<string, number>; foreign: Map<string, number> }> {
  const found = new Map<string, number>();
  const foreign = new Map<string, number>();
  if (columns.length === 0) return { found, foreign };
  const q = quoteIdent;
  // Two unnests of equal length in one select list go in step (PostgreSQL since 10, DuckDB): a
  // LATERAL VALUES join cost 73 against 18 ms on DuckDB, 117 against 68 ms on PostgreSQL (a batch's encounters).
  const positions = columns.map((_, i) => String(i)).join(', ');
  const texts = columns.map(castText).join(', ');
  await s.createTempTableAs(
    VALS,
    `SELECT x.rid, x.col, x.t FROM (
       SELECT r.__tsf_rid AS rid, unnest(ARRAY[${positions}]) AS col, unnest(ARRAY[${texts}]) AS t
         FROM (SELECT row_number() OVER () AS __tsf_rid, * FROM ${relationSql}) AS r) AS x
      WHERE x.t IS NOT NULL`,
    [],
  );
  // This target's share of the scan's value forms (stageValueForms): the joins below then read
  // only its values, and no regular expression runs twice.
  await s.createTempTableAs(FORMS, `SELECT f.* FROM ${q(ALL_FORMS)} AS f WHERE f.t IN (SELECT t FROM ${q(VALS)})`, []);
  await s.createTempTableAs(WORDS, `SELECT w.* FROM ${q(ALL_WORDS)} AS w WHERE w.t IN (SELECT t FROM ${q(FORMS)})`, []);
  // A row belongs to the persons whose vault token it holds (in any column).
  await s.createTempTableAs(
    ROW_PERSONS,
    vault
      ? `SELECT DISTINCT v.rid, v.t AS person_token FROM ${q(VALS)} AS v
           WHERE v.t IN (SELECT person_token FROM ${quoteRelation(vault.schema, vault.identifier)})`
      : `SELECT CAST(NULL AS BIGINT) AS rid, CAST(NULL AS VARCHAR) AS person_token WHERE 1 = 0`,
    [],
  );
  await s.createTempTableAs(
    PERSON_CELLS,
    `SELECT DISTINCT v.col, v.t, rp.person_token FROM ${q(VALS)} AS v JOIN ${q(ROW_PERSONS)} AS rp ON rp.rid = v.rid`,
    [],
  );
  // Cells matching through their value alone, or through a person of their row (p.whole: a
  // number that is a person's ZIP without its leading zero, counted apart below).
  const personMatches = (whole: boolean) =>
    `SELECT pc.col, pc.t, pc.person_token FROM ${q(PERSON_CELLS)} AS pc
       JOIN ${q(FORMS)} AS f ON f.t = pc.t
       JOIN ${q(PERSON_IDS)} AS p ON p.person_token = pc.person_token
      WHERE ${whole ? 'p.whole AND p.compact = f.compact' : 'NOT p.whole AND (position(p.form IN f.padded) > 0 OR p.compact = f.compact)'}`;
  const cellsOf = (matches: string) =>
    `SELECT v.rid, v.col FROM ${q(VALS)} AS v JOIN ${q(ROW_PERSONS)} AS rp ON rp.rid = v.rid
       JOIN (${matches}) AS m ON m.col = v.col AND m.t = v.t AND m.person_token = rp.person_token`;
  const { rows } = await s.query(
    `SELECT m.col, count(DISTINCT m.rid) AS n FROM (
       SELECT v.rid, v.col FROM ${q(VALS)} AS v
        WHERE v.t IN (SELECT w.t FROM ${q(WORDS)} AS w
                        JOIN ${q(IDS)} AS i ON i.first_word = w.word
                        JOIN ${q(FORMS)} AS f ON f.t = w.t
                       WHERE position(i.form IN f.padded) > 0
                      UNION
                      SELECT f.t FROM ${q(FORMS)} AS f JOIN ${q(IDS)} AS i ON i.compact = f.compact
                      UNION
                      SELECT f.t FROM ${q(FORMS)} AS f WHERE ${identifierShapeSql('f.t')})
       UNION ALL
       ${cellsOf(personMatches(false))}
     ) AS m GROUP BY m.col ORDER BY m.col`,
  );
  for (const r of rows) found.set(columns[Number(r.col)]!, Number(r.n));
  // A number that is its own person's ZIP without the leading zero (`cast(zip as integer)`) could
  // also be a year or a count: the column is a finding when it is so for at least half of the
  // rows that carry a person, far beyond chance.
  const weak = await s.query(
    `SELECT c.col, c.persons, count(DISTINCT m.rid) AS n FROM (
        SELECT v.col, count(DISTINCT v.rid) AS persons FROM ${q(VALS)} AS v
         WHERE v.rid IN (SELECT rid FROM ${q(ROW_PERSONS)}) GROUP BY v.col) AS c
       JOIN (${cellsOf(personMatches(true))}) AS m ON m.col = c.col
      GROUP BY c.col, c.persons`,
  );
  for (const r of weak.rows) {
    const column = columns[Number(r.col)]!;
    if (Number(r.n) * 2 >= Number(r.persons)) found.set(column, Math.max(found.get(column) ?? 0, Number(r.n)));
  }
  for (const [column, rowsWithPerson] of await monthPrecisionColumns(s, columns)) {
    // A month equal to its person's real date is chance (a newborn's first visit); a column where
    // it is so for half the rows carrying a person is publishing dates of people born on the 1st.
    if ((found.get(column) ?? 0) * 2 < rowsWithPerson) found.delete(column);
  }
  if (ownPersons) for (const [column, n] of await otherPracticesPersons(s, VALS, columns, ownPersons)) foreign.set(column, n);
  for (const t of PER_VALUE) await s.query(`DROP TABLE IF EXISTS ${q(t)}`);
  return { found, foreign };
}

/** Distinct first-of-month dates a column needs before it counts as holding months, not days. */
export const MONTH_PRECISION_MIN_VALUES = 3;

/**
 * Columns that hold months, not days, with the rows of each that carry a person: every value is
 * the first of a month (a date, or a timestamp at midnight), with at least
 * MONTH_PRECISION_MIN_VALUES distinct values. Such a value equal to a real birth or death date on
 * the 1st (a newborn's first visit, generalized with `month_of`) tells no more than the month,
 * which the column gives for everyone, so it is not a finding while it stays a minority (the
 * caller). A column of real dates passes as months only if all of its distinct dates fall on the
 * 1st (about 30^-3 for three people); fewer values keep every finding.
 */
async function monthPrecisionColumns(s: Session, columns: readonly string[]): Promise<[string, number][]> {
  const { rows } = await s.query(
    `SELECT v.col, count(DISTINCT rp.rid) AS with_person
       FROM ${quoteIdent(VALS)} AS v LEFT JOIN (SELECT DISTINCT rid FROM ${quoteIdent(ROW_PERSONS)}) AS rp ON rp.rid = v.rid
      GROUP BY v.col
     HAVING bool_and(v.t LIKE '____-__-01' OR v.t LIKE '____-__-01 00:00:00%') AND count(DISTINCT v.t) >= $1`,
    [MONTH_PRECISION_MIN_VALUES],
  );
  return rows.map((r) => [columns[Number(r.col)]!, Number(r.with_person)]);
}

export interface ScanTarget {
  /** `schema.identifier` as reported. */
  name: string;
  /** Already quoted relation (a staged temp table or a published relation). */
  relationSql: string;
  columns: string[];
}

export interface ScanFinding {
  relation: string;
  column: string;
  rows: number;
  /** A raw identifier, or (tenant-scoped batches) the token of a person not of the row's practice. */
  kind: 'identifier' | 'other_practice_person';
}

/**
 * Scans `targets` in one session against the identifiers of `roots` (the nodes the targets are
 * built as). Returns rows per (target, column) that hold an identifier, and, for a tenant-scoped
 * batch (`tenants`), rows holding another practice's person's token.
 */
export async function scanRelations(
  s: Session,
  manifest: Manifest,
  privacy: PrivacyConfig,
  roots: readonly ManifestNode[],
  targets: readonly ScanTarget[],
  tenants?: readonly string[],
): Promise<ScanFinding[]> {
  await stageValueForms(s, targets);
  const perPerson = await stageIdentifiers(s, manifest, privacy, identifierRelations(manifest, roots), tenants);
  const vault = vaultNode(manifest);
  // Only a tenant-scoped batch's rows belong to practices whose persons the vault lists.
  const ownPersons = tenants && vault && roots.every((r) => r.scope === 'tenant') ? { vault, tenantColumn: manifest.tenant_column } : undefined;
  const findings: ScanFinding[] = [];
  for (const t of targets) {
    const { found, foreign } = await matchingRows(s, t.relationSql, t.columns, perPerson ? vault : undefined, ownPersons);
    for (const [column, rows] of found) findings.push({ relation: t.name, column, rows, kind: 'identifier' });
    for (const [column, rows] of foreign) findings.push({ relation: t.name, column, rows, kind: 'other_practice_person' });
  }
  // On an error the caller's transaction rolls back, and these temporary tables with it.
  for (const t of TEMP_TABLES) await s.query(`DROP TABLE IF EXISTS ${quoteIdent(t)}`);
  return findings;
}
