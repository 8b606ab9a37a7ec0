/**
 * `npm run linkage [-- --perturb <profile>] [-- path/to/synthea-ma]`: how well person tokens link
 * one person's records across practices, measured against ground truth (issue 17).
 *
 * Records: the demo data (data/ehr/patients.csv.gz, one record per practice and Synthea person),
 * plus hard negatives (namesakes, twins; scripts/lib/linkage-profiles.ts). Tokens come from the
 * vault's own code: match keys (src/security/match-keys.ts) resolved into persons
 * (src/security/resolve-persons.ts), under a fixed test key and the repository's tsform.yml
 * `privacy.identity` settings.
 *
 * Ground truth: with the Synthea source (test/fixtures/synthea-ma or the path given), patient_id
 * = sha256(practice_id + ':' + Synthea id) gives each record's person (scripts/prepare-demo-data.ts).
 * Without it (a fresh clone), records with the same clean identity (names, birth date, SSN) are
 * one person; where both exist the script checks that they agree.
 *
 * Profiles (--perturb; all four without it): none, missing-ssn, typo, everything (see
 * applyProfile). Seeded: the same figures on every run. Printed: counts and a key fingerprint
 * only; the last stdout line is one JSON object {key, seed, hard_negatives, profiles: {<profile>:
 * {records, persons, tokens, persons_multi_practice, linked_single_token, recall, false_merges}}}.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { readConfig } from '../src/project/load-config.ts';
import { DEFAULT_LINKAGE, type LinkageConfig } from '../src/project/linkage-config.ts';
import { parseYamlFile } from '../src/project/yaml-file.ts';
import { keyFingerprint } from '../src/security/pseudonymize.ts';
import { applyProfile, hardNegatives, measure, missedByKind, PROFILES, resolveRecords, type LinkageFigures, type PatientRecord, type Profile } from './lib/linkage-profiles.ts';
import { practicePatientIdentity } from './prepare-demo-data.ts';

type CsvRow = Record<string, string>;

/** A fixed key: the figures are the same on every run and every machine. Not a secret. */
const TEST_KEY = createHash('sha256').update('tsform linkage test key v1').digest();
const SEED = 17;
const HARD_NEGATIVES = 40;

const log = (msg: string): void => {
  process.stderr.write(`[linkage] ${msg}\n`);
};

function readCsv(path: string, gzipped: boolean): CsvRow[] {
  const bytes = readFileSync(path);
  return parse(gzipped ? gunzipSync(bytes) : bytes, { columns: true, bom: true, skip_empty_lines: true }) as CsvRow[];
}

/** The demo records, each with its person from the clean identity (see the header). */
export function readDemoRecords(file: string): PatientRecord[] {
  const rows = readCsv(file, true);
  const missing = ['practice_id', 'patient_id', 'first_name', 'last_name', 'birth_date', 'sex', 'ssn'].filter((c) => !(c in (rows[0] ?? {})));
  if (missing.length > 0) throw new Error(`${file} lacks column(s) ${missing.join(', ')}`);
  return rows.map((row) => ({
    practiceId: row.practice_id!,
    patientId: row.patient_id!,
    person: JSON.stringify([row.first_name, row.last_name, row.birth_date, row.ssn]),
    identity: { firstName: row.first_name || null, lastName: row.last_name || null, birthDate: row.birth_date || null, sex: row.sex || null, ssn: row.ssn || null },
  }));
}

/** Checks the derived ground truth against Synthea's ids: the same partition of records. */
function checkAgainstSynthea(records: readonly PatientRecord[], syntheaFile: string): void {
  const ids = readCsv(syntheaFile, false).map((r) => r.Id!);
  const wanted = new Map(records.map((r) => [`${r.practiceId}|${r.patientId}`, r.person]));
  const pairs = new Set<string>();
  for (const practiceId of new Set(records.map((r) => r.practiceId))) {
    for (const id of ids) {
      const derived = wanted.get(`${practiceId}|${practicePatientIdentity(practiceId, id).patientId}`);
      if (derived !== undefined) pairs.add(`${id}\u0000${derived}`);
    }
  }
  const syntheaIds = new Set([...pairs].map((p) => p.split('\u0000')[0]));
  const derivedPersons = new Set(records.map((r) => r.person));
  if (pairs.size !== syntheaIds.size || pairs.size !== derivedPersons.size) {
    throw new Error(`the clean-identity ground truth and Synthea's ids disagree (${pairs.size} pairs, ${syntheaIds.size} Synthea persons, ${derivedPersons.size} identities)`);
  }
  log(`ground truth checked against ${syntheaFile}: ${syntheaIds.size} persons, the same partition`);
}

/** `privacy.identity` linkage settings of the repository's tsform.yml (defaults when absent). */
export function projectLinkage(file: string): LinkageConfig {
  const diagnostics: Parameters<typeof readConfig>[1] = [];
  const config = readConfig(parseYamlFile(readFileSync(file, 'utf8'), 'tsform.yml', diagnostics), diagnostics);
  if (diagnostics.length > 0) throw new Error(`tsform.yml: ${diagnostics.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  return config.privacy?.identity.linkage ?? DEFAULT_LINKAGE;
}

/** Figures of one profile over the demo records and the hard negatives. */
export function runProfile(
  records: readonly PatientRecord[],
  profile: Profile,
  config: LinkageConfig,
  key: Buffer = TEST_KEY,
): { figures: LinkageFigures; applied: Record<string, number>; missed: Record<string, number> } {
  const all = [...records, ...hardNegatives(records, SEED, HARD_NEGATIVES)];
  const { records: perturbed, applied, kindOf } = applyProfile(all, profile, SEED);
  const tokens = resolveRecords(perturbed, key, config);
  return { figures: measure(perturbed, tokens), applied, missed: missedByKind(perturbed, tokens, kindOf) };
}

function parseArgs(argv: readonly string[]): { profiles: Profile[]; syntheaDir?: string } {
  const profiles: Profile[] = [];
  let syntheaDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--perturb') {
      const p = argv[++i];
      if (!(PROFILES as readonly string[]).includes(p ?? '')) throw new Error(`--perturb takes one of ${PROFILES.join(', ')}`);
      profiles.push(p as Profile);
    } else syntheaDir = argv[i];
  }
  return { profiles: profiles.length > 0 ? profiles : [...PROFILES], syntheaDir };
}

function main(): void {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const demoFile = join(repoRoot, 'data/ehr/patients.csv.gz');
  if (!existsSync(demoFile)) throw new Error(`${demoFile} is missing: run npx tsx scripts/prepare-demo-data.ts`);
  const args = parseArgs(process.argv.slice(2));
  const records = readDemoRecords(demoFile);
  const syntheaFile = join(resolve(args.syntheaDir ?? join(repoRoot, 'test/fixtures/synthea-ma')), 'patients.csv');
  if (existsSync(syntheaFile)) checkAgainstSynthea(records, syntheaFile);
  else log(`no Synthea source at ${syntheaFile}: ground truth from the clean identities only`);
  const config = projectLinkage(join(repoRoot, 'tsform.yml'));
  log(`key ${keyFingerprint(TEST_KEY)} (fixed test key); ${records.length} demo records of ${new Set(records.map((r) => r.person)).size} persons; match keys ${config.matchKeys.join(', ')}; seed ${SEED}`);
  const profiles: Record<string, LinkageFigures> = {};
  for (const profile of args.profiles) {
    const { figures, applied, missed } = runProfile(records, profile, config);
    log(`${profile}: perturbations ${JSON.stringify(applied)}; persons not linked, by perturbation ${JSON.stringify(missed)}; recall ${figures.recall}, false merges ${figures.false_merges}`);
    profiles[profile] = figures;
  }
  console.log(JSON.stringify({ key: keyFingerprint(TEST_KEY), seed: SEED, hard_negatives: HARD_NEGATIVES, profiles }));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`linkage: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
