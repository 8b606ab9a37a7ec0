import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse } from 'csv-parse/sync';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { runCli } from '../../src/cli/program.ts';
import { REPO_ROOT } from './demo-project.ts';

/**
 * Helpers of the research-layer tests (issue 4). The demo data is shaped like PHI: nothing here
 * returns a value to print. Assertions compare counts, booleans and hashes, so that a failing
 * `expect` shows no name, SSN, id or date.
 */

export const SSN_PATTERN = /\d{3}-\d{2}-\d{4}/;
export const PERSON_TOKEN = /^pt_[0-9a-f]{64}$/;
export const FINGERPRINT = /kf_[0-9a-f]{16}/;
export const SQL_PERSON_TOKEN = '^pt_[0-9a-f]{64}$';
export const PUBLISHED_MODELS = ['research_condition_prevalence', 'research_diabetes_cohort'];
export const PSEUDO_MODELS = ['pseudo_persons', 'pseudo_encounters', 'pseudo_conditions'];
export const VAULT_NODE = 'vault_person_tokens';
/** A second valid key (64 hex, not the vitest one): a vault made with the vitest key must refuse it. */
export const OTHER_KEY = createHash('sha256').update('tsform research tests: some other key').digest('hex');

export type Row = Record<string, unknown>;
export type Query = (sql: string) => Promise<Row[]>;

/** The demo copy's database files. */
export function targetFiles(dir: string) {
  return {
    main: join(dir, 'target/tsform.duckdb'),
    research: join(dir, 'target/research.duckdb'),
    vault: join(dir, 'target/vault.duckdb'),
  };
}

/**
 * Opens one DuckDB file read-only (others attached read-only under their alias), runs `fn`, and
 * closes everything: tsform's own adapter must never find the file held when the next run starts.
 */
export async function withDuckFile<T>(file: string, fn: (q: Query) => Promise<T>, attach: Record<string, string> = {}): Promise<T> {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  try {
    const conn = await instance.connect();
    try {
      for (const [alias, path] of Object.entries(attach)) await conn.run(`ATTACH '${path.replaceAll("'", "''")}' AS "${alias}" (READ_ONLY)`);
      const q: Query = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJson() as Row[];
      return await fn(q);
    } finally {
      conn.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/** The warehouse as tsform sees it: the main file with `research` and `vault` attached. */
export function withWarehouse<T>(dir: string, fn: (q: Query) => Promise<T>): Promise<T> {
  const f = targetFiles(dir);
  return withDuckFile(f.main, fn, { research: f.research, vault: f.vault });
}

export const num = (v: unknown): number => Number(v);

/** One value of a one-row, one-column query. */
export async function scalar(q: Query, sql: string): Promise<unknown> {
  const rows = await q(sql);
  const first = rows[0];
  return first === undefined ? undefined : Object.values(first)[0];
}

/** Tables (and views) of one attached database, as `schema.name`. */
export async function relationsOf(q: Query, database: string): Promise<string[]> {
  const rows = await q(
    `SELECT schema_name || '.' || table_name AS rel FROM duckdb_tables() WHERE database_name = '${database}'
     UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE database_name = '${database}' AND NOT internal
     ORDER BY 1`,
  );
  return rows.map((r) => String(r.rel));
}

export async function relationExists(q: Query, database: string, name: string): Promise<boolean> {
  return (await relationsOf(q, database)).some((r) => r.endsWith(`.${name}`));
}

/** Row count and an order-independent checksum of a relation's rows: equal means unchanged. */
export async function fingerprintRows(q: Query, relation: string): Promise<string> {
  const rows = await q(`SELECT count(*) AS n, CAST(coalesce(sum(hash(t)), 0) AS VARCHAR) AS h FROM ${relation} AS t`);
  return `${rows[0]!.n}:${rows[0]!.h}`;
}

/** Build results of one model (one per practice, or one for a global model); data tests left out. */
export function resultsOf(run: RunResults, model: string): NodeResult[] {
  return run.results.filter((r) => r.model === model && r.kind === 'build');
}

export function onlyResult(run: RunResults, model: string): NodeResult {
  const found = resultsOf(run, model);
  if (found.length !== 1) throw new Error(`expected one build result of ${model}, found ${found.length}`);
  return found[0]!;
}

/** The leak scan's result (`privacy:leak_scan`, after every run that built a research model). */
export function leakScanOf(run: RunResults): NodeResult | undefined {
  return run.results.find((r) => r.node === 'privacy:leak_scan');
}

/**
 * `node: status code` of every result that did not succeed, with the engine's error class when
 * there is one ("TransactionContext Error"): enough to tell a conflict from a model error.
 * Messages hold no values, but are left out anyway.
 */
export function failuresOf(run: RunResults): string[] {
  return run.results
    .filter((r) => r.status !== 'success')
    .map((r) => `${r.node}: ${r.status} ${r.code ?? ''}${r.status === 'error' ? errorClassIn(r.message) : ''}`.trim());
}

function errorClassIn(message: string | null): string {
  const m = /\b([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)? Error)\b/.exec(message ?? '');
  return m ? ` (${m[1]})` : '';
}

/** Runs the CLI in-process, collecting stdout lines (never printed). */
export async function cli(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runCli(['node', 'tsform', ...args], (l) => lines.push(l));
  return { code, lines };
}

/** Sets (or, with undefined, removes) environment variables for one call and restores them after. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Every file under `dir` (recursively). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Files under `dir` whose bytes contain `text` (names relative to dir; they never hold the text itself). */
export function filesContaining(dir: string, text: string): string[] {
  const needle = Buffer.from(text, 'utf8');
  return filesUnder(dir)
    .filter((f) => readFileSync(f).includes(needle))
    .map((f) => f.slice(dir.length + 1));
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The Synthea source of the demo data: the ground truth of which practice records are one person. */
// Copied from ../shared/data/synthea-ma (PROVENANCE.txt beside it): a clone has no ../shared.
export const SYNTHEA_PATIENTS = join(REPO_ROOT, 'test/fixtures/synthea-ma/patients.csv');

export function syntheaPatientIds(): string[] {
  const rows = parse(readFileSync(SYNTHEA_PATIENTS), { columns: true, bom: true, skip_empty_lines: true }) as { Id: string }[];
  return rows.map((r) => r.Id);
}

/** Models added to a demo copy to prove each gate fails (DESIGN §8: security suites are tests). */
export const LEAKY = {
  /** Persons per condition across practices: cells below k, which tsform withholds when publishing (the flag only changes the comment now that no macro suppresses). */
  smallCells: (suppressed: boolean) => `{{config k_anonymity_count="persons"}}
-- Test model: persons per condition${suppressed ? ', suppressed below k' : ', NOT suppressed (must not be published)'}.
select
  c.condition_code,
  count(distinct c.person_token) as persons
from {{ref "pseudo_conditions"}} c
group by c.condition_code
`,
  smallCellsYml: `models:
  - name: leaky_small_cells
    columns:
      - { name: condition_code, phi: none }
      - { name: persons, phi: none }
`,
  /** One row per person with its quasi-identifiers: classes far below k. */
  qiRows: `-- Test model: row-level quasi-identifiers of every person (must not be published).
select distinct p.age_band, p.sex, p.zip3, p.person_token
from {{ref "pseudo_persons"}} p
`,
  /** The same, with birth year, and no yml entry at all: its quasi-identifiers are only known by lineage. */
  qiRowsUndeclared: `-- Test model: row-level quasi-identifiers, no yml (must not be published either).
select distinct p.age_band, p.sex, p.zip3, p.birth_year, p.person_token
from {{ref "pseudo_persons"}} p
`,
  qiRowsYml: `models:
  - name: leaky_qi_rows
    columns:
      - { name: age_band, phi: quasi }
      - { name: sex, phi: quasi }
      - { name: zip3, phi: quasi }
      - { name: person_token, phi: none }
`,
  /**
   * A pseudonymized tenant model that concatenates the raw SSN into a "free-text" column. The
   * compile-time lineage gate may reject it (direct identifier); if it does not, the leak scan must.
   */
  directNotes: `-- Test model: a "free-text note" that carries the raw SSN.
select
  p.practice_id,
  v.person_token,
  'note: ' || p.ssn as note
from {{ref "stg_patients"}} p
join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id
`,
  /**
   * The case lineage cannot see: a staging free-text column whose yml calls it harmless (phi: none)
   * although it holds the SSN, carried into a pseudonymized model. Only the leak scan catches it.
   */
  freeText: `-- Test model: a free-text column, classified harmless, that holds the raw SSN.
select
  practice_id,
  patient_id,
  'note: ' || ssn as free_text
from {{ref "stg_patients"}}
`,
  freeTextYml: `models:
  - name: stg_patient_notes
    columns:
      - { name: practice_id, phi: none }
      - { name: patient_id, phi: direct }
      - { name: free_text, phi: none }
`,
  freeTextNotes: `-- Test model: pseudonymized notes, with the misclassified free text.
select
  n.practice_id,
  v.person_token,
  n.free_text as note
from {{ref "stg_patient_notes"}} n
join {{ref "vault_person_tokens"}} v on v.practice_id = n.practice_id and v.patient_id = n.patient_id
`,
  notesYml: `models:
  - name: leaky_notes
    columns:
      - { name: practice_id, phi: none }
      - { name: person_token, phi: none }
      - { name: note, phi: none }
`,
} as const;

/** Writes test files (models, yml) into a project copy; returns a function that removes them again. */
export function addProjectFiles(dir: string, files: Record<string, string>): () => void {
  // A file that was there (tsform.yml) is put back as it was; a new one is removed.
  const before = new Map<string, string | undefined>();
  for (const [path, text] of Object.entries(files)) {
    before.set(path, existsSync(join(dir, path)) ? readFileSync(join(dir, path), 'utf8') : undefined);
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return () => {
    for (const [path, text] of before) {
      if (text === undefined) rmSync(join(dir, path), { force: true });
      else writeFileSync(join(dir, path), text);
    }
  };
}

/** Rewrites the copy's tenants.yml list (e.g. a practice's `research:` flag, or one removed). */
export function editTenants(dir: string, edit: (tenants: Record<string, unknown>[]) => Record<string, unknown>[]): void {
  const file = join(dir, 'tenants.yml');
  const doc = parseYaml(readFileSync(file, 'utf8')) as { tenants: Record<string, unknown>[] };
  writeFileSync(file, stringifyYaml({ ...doc, tenants: edit(doc.tenants) }));
}
