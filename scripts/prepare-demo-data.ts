/**
 * Turns the Synthea Massachusetts sample (test/fixtures/synthea-ma) into the demo project's
 * OLTP source: one shared database holding many practices, `practice_id` first on every row.
 *
 *   npx tsx scripts/prepare-demo-data.ts [path/to/synthea-ma]   (default: test/fixtures/synthea-ma)
 *
 * Writes data/ehr/<table>.csv.gz, data/ehr/PROVENANCE.md and tenants.yml. The output is a pure
 * function of the input files: same bytes on every run (sorted rows, hashed ids, gzip without a
 * timestamp). Any row that cannot be mapped to a practice is counted and reported, and any broken
 * reference or id collision stops the script.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';

type SourceRow = Record<string, string>;
type OutRow = Record<string, string>;

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_]{0,62}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;
const PROVIDERS_UPDATED_AT = '2026-11-27T00:00:00Z';
// Every Synthea organization of this sample is in Massachusetts.
const PRACTICE_TIMEZONE = 'America/New_York';
const READY_BY_CHOICES = ['05:30', '06:00', '06:30', '07:00'] as const;
const LARGE_PRACTICES = 10;

/** Output tables and their columns, in file order. */
export const DEMO_COLUMNS = {
  patients: [
    'practice_id', 'patient_id', 'mrn', 'birth_date', 'death_date', 'ssn', 'drivers_license',
    'passport', 'prefix', 'first_name', 'middle_name', 'last_name', 'suffix', 'maiden_name',
    'marital_status', 'race', 'ethnicity', 'sex', 'birthplace', 'address', 'city', 'state',
    'county', 'zip', 'lat', 'lon', 'updated_at',
  ],
  encounters: [
    'practice_id', 'encounter_id', 'patient_id', 'provider_id', 'payer_id', 'encounter_class',
    'code', 'description', 'started_at', 'stopped_at', 'base_encounter_cost', 'total_claim_cost',
    'payer_coverage', 'reason_code', 'reason_description', 'updated_at',
  ],
  conditions: [
    'practice_id', 'condition_id', 'patient_id', 'encounter_id', 'system', 'code', 'description',
    'onset_date', 'abatement_date', 'updated_at',
  ],
  medications: [
    'practice_id', 'medication_id', 'patient_id', 'encounter_id', 'payer_id', 'code',
    'description', 'started_at', 'stopped_at', 'base_cost', 'payer_coverage', 'dispenses',
    'total_cost', 'reason_code', 'reason_description', 'updated_at',
  ],
  procedures: [
    'practice_id', 'procedure_id', 'patient_id', 'encounter_id', 'system', 'code', 'description',
    'started_at', 'stopped_at', 'base_cost', 'reason_code', 'reason_description', 'updated_at',
  ],
  claims: [
    'practice_id', 'claim_id', 'patient_id', 'provider_id', 'encounter_id', 'primary_payer_id',
    'secondary_payer_id', 'diagnosis_1', 'diagnosis_2', 'diagnosis_3', 'diagnosis_4',
    'service_date', 'status_primary', 'status_secondary', 'status_patient', 'outstanding_primary',
    'outstanding_secondary', 'outstanding_patient', 'updated_at',
  ],
  providers: [
    'practice_id', 'provider_id', 'name', 'sex', 'speciality', 'address', 'city', 'state', 'zip',
    'lat', 'lon', 'updated_at',
  ],
} as const;
export type DemoTable = keyof typeof DEMO_COLUMNS;

// ---------------------------------------------------------------------------------------------
// CSV and hashing helpers

/** RFC 4180 field: quoted only when it holds a comma, quote, CR or LF; inner quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Header row first, `\n` line ends, trailing newline; missing values become ''. */
export function formatCsv(columns: readonly string[], rows: readonly OutRow[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c] ?? '')).join(','));
  return lines.join('\n') + '\n';
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** First 128 bits of the hash in 8-4-4-4-12 form (no version bits: a plain hashed id). */
export function uuidFromHash(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function practiceIdOf(organizationId: string): string {
  return 'p_' + organizationId.replaceAll('-', '').toLowerCase().slice(0, 10);
}

/** Practice-specific patient id and MRN, both from sha256(practice_id + ':' + synthea id). */
export function practicePatientIdentity(practiceId: string, syntheaPatientId: string) {
  const hex = sha256Hex(`${practiceId}:${syntheaPatientId}`);
  const mrnNumber = BigInt('0x' + hex.slice(32, 48)) % 100_000_000n;
  return { patientId: uuidFromHash(hex), mrn: 'MRN' + mrnNumber.toString().padStart(8, '0') };
}

function fail(message: string): never {
  throw new Error(`prepare-demo-data: ${message}`);
}

/** `<table>.csv`, or `<table>.csv.gz` (the repository's copy, test/fixtures/synthea-ma, is compressed). */
function readSourceFile(dir: string, table: string): Buffer {
  const plain = join(dir, `${table}.csv`);
  if (existsSync(plain)) return readFileSync(plain);
  const gz = `${plain}.gz`;
  if (existsSync(gz)) return gunzipSync(readFileSync(gz));
  fail(`${plain} (or .csv.gz) does not exist`);
}

function readSource(dir: string, table: string, required: readonly string[]): SourceRow[] {
  const rows = parse(readSourceFile(dir, table), {
    columns: true,
    bom: true,
    skip_empty_lines: true,
  }) as SourceRow[];
  const first = rows[0];
  if (!first) fail(`${table}.csv is empty`);
  const missing = required.filter((c) => !(c in first));
  if (missing.length > 0) fail(`${table}.csv lacks column(s) ${missing.join(', ')}`);
  return rows;
}

function checked(value: string, pattern: RegExp, what: string, optional = false): string {
  if (optional && value === '') return value;
  if (!pattern.test(value)) fail(`${what}: unexpected value ${JSON.stringify(value)}`);
  return value;
}

function byKeys<T extends OutRow>(...keys: string[]) {
  return (a: T, b: T): number => {
    for (const k of keys) {
      const x = a[k] ?? '';
      const y = b[k] ?? '';
      if (x !== y) return x < y ? -1 : 1; // code-unit order, independent of locale
    }
    return 0;
  };
}

/** Gives each row of a child table a hashed id from its natural key plus its duplicate index. */
function childIdFactory(table: string) {
  const seen = new Map<string, number>();
  const ids = new Set<string>();
  return (encounterId: string, code: string, start: string): string => {
    const key = `${encounterId}:${code}:${start}`;
    const index = seen.get(key) ?? 0;
    seen.set(key, index + 1);
    const id = uuidFromHash(sha256Hex(`${table}:${key}:${index}`));
    if (ids.has(id)) fail(`${table}: hashed id collision ${id}`);
    ids.add(id);
    return id;
  };
}

// ---------------------------------------------------------------------------------------------
// The transformation

interface Encounter {
  practiceId: string;
  syntheaPatientId: string;
  patientId: string;
  row: OutRow;
}

interface TenantEntry {
  id: string;
  name: string;
  timezone: string;
  sla: { ready_by: string };
  tags: string[];
  pool: string;
}

export interface PreparedDemoData {
  tables: Record<DemoTable, OutRow[]>;
  tenants: TenantEntry[];
  report: string[];
}

export function prepareDemoData(sourceDir: string): PreparedDemoData {
  const report: string[] = [];
  const organizations = readSource(sourceDir, 'organizations', ['Id', 'NAME']);
  const patientsSrc = readSource(sourceDir, 'patients', [
    'Id', 'BIRTHDATE', 'DEATHDATE', 'SSN', 'DRIVERS', 'PASSPORT', 'PREFIX', 'FIRST', 'MIDDLE',
    'LAST', 'SUFFIX', 'MAIDEN', 'MARITAL', 'RACE', 'ETHNICITY', 'GENDER', 'BIRTHPLACE', 'ADDRESS',
    'CITY', 'STATE', 'COUNTY', 'ZIP', 'LAT', 'LON',
  ]);
  const encountersSrc = readSource(sourceDir, 'encounters', [
    'Id', 'START', 'STOP', 'PATIENT', 'ORGANIZATION', 'PROVIDER', 'PAYER', 'ENCOUNTERCLASS', 'CODE',
    'DESCRIPTION', 'BASE_ENCOUNTER_COST', 'TOTAL_CLAIM_COST', 'PAYER_COVERAGE', 'REASONCODE',
    'REASONDESCRIPTION',
  ]);
  const conditionsSrc = readSource(sourceDir, 'conditions', [
    'START', 'STOP', 'PATIENT', 'ENCOUNTER', 'SYSTEM', 'CODE', 'DESCRIPTION',
  ]);
  const medicationsSrc = readSource(sourceDir, 'medications', [
    'START', 'STOP', 'PATIENT', 'PAYER', 'ENCOUNTER', 'CODE', 'DESCRIPTION', 'BASE_COST',
    'PAYER_COVERAGE', 'DISPENSES', 'TOTALCOST', 'REASONCODE', 'REASONDESCRIPTION',
  ]);
  const proceduresSrc = readSource(sourceDir, 'procedures', [
    'START', 'STOP', 'PATIENT', 'ENCOUNTER', 'SYSTEM', 'CODE', 'DESCRIPTION', 'BASE_COST',
    'REASONCODE', 'REASONDESCRIPTION',
  ]);
  const claimsSrc = readSource(sourceDir, 'claims', [
    'Id', 'PATIENTID', 'PROVIDERID', 'PRIMARYPATIENTINSURANCEID', 'SECONDARYPATIENTINSURANCEID',
    'DIAGNOSIS1', 'DIAGNOSIS2', 'DIAGNOSIS3', 'DIAGNOSIS4', 'DIAGNOSIS5', 'DIAGNOSIS6', 'DIAGNOSIS7',
    'DIAGNOSIS8', 'APPOINTMENTID', 'SERVICEDATE', 'STATUS1', 'STATUS2', 'STATUSP', 'OUTSTANDING1',
    'OUTSTANDING2', 'OUTSTANDINGP',
  ]);
  const providersSrc = readSource(sourceDir, 'providers', [
    'Id', 'ORGANIZATION', 'NAME', 'GENDER', 'SPECIALITY', 'ADDRESS', 'CITY', 'STATE', 'ZIP', 'LAT',
    'LON',
  ]);

  // Practices: organizations with at least one encounter.
  const organizationById = new Map(organizations.map((o) => [o.Id!, o]));
  const practiceOfOrganization = new Map<string, string>();
  const organizationOfPractice = new Map<string, string>();
  for (const e of encountersSrc) {
    const org = e.ORGANIZATION!;
    if (practiceOfOrganization.has(org)) continue;
    if (!organizationById.has(org)) fail(`encounter ${e.Id} names unknown organization ${org}`);
    const practiceId = practiceIdOf(org);
    if (!TENANT_ID_PATTERN.test(practiceId)) fail(`practice id ${practiceId} is not a valid tenant id`);
    const clash = organizationOfPractice.get(practiceId);
    if (clash !== undefined) fail(`practice id ${practiceId} is shared by organizations ${clash} and ${org}`);
    practiceOfOrganization.set(org, practiceId);
    organizationOfPractice.set(practiceId, org);
  }
  report.push(
    `practices: ${organizationOfPractice.size} of ${organizations.length} organizations ` +
      `(${organizations.length - organizationOfPractice.size} organizations have no encounter and are not practices)`,
  );

  // Encounters, and the (practice, patient) pairs they create.
  const patientById = new Map(patientsSrc.map((p) => [p.Id!, p]));
  const identities = new Map<string, { patientId: string; mrn: string }>(); // practice|patient
  const encounterById = new Map<string, Encounter>();
  const encounters: OutRow[] = [];
  for (const e of encountersSrc) {
    const id = e.Id!;
    if (encounterById.has(id)) fail(`duplicate encounter id ${id}`);
    const practiceId = practiceOfOrganization.get(e.ORGANIZATION!)!;
    const syntheaPatientId = e.PATIENT!;
    if (!patientById.has(syntheaPatientId)) fail(`encounter ${id} names unknown patient`);
    const pairKey = `${practiceId}|${syntheaPatientId}`;
    let identity = identities.get(pairKey);
    if (!identity) {
      identity = practicePatientIdentity(practiceId, syntheaPatientId);
      identities.set(pairKey, identity);
    }
    const startedAt = checked(e.START!, TIMESTAMP, `encounter ${id} START`);
    const stoppedAt = checked(e.STOP!, TIMESTAMP, `encounter ${id} STOP`, true);
    const row: OutRow = {
      practice_id: practiceId,
      encounter_id: id,
      patient_id: identity.patientId,
      provider_id: e.PROVIDER!,
      payer_id: e.PAYER!,
      encounter_class: e.ENCOUNTERCLASS!,
      code: e.CODE!,
      description: e.DESCRIPTION!,
      started_at: startedAt,
      stopped_at: stoppedAt,
      base_encounter_cost: checked(e.BASE_ENCOUNTER_COST!, DECIMAL, `encounter ${id} cost`),
      total_claim_cost: checked(e.TOTAL_CLAIM_COST!, DECIMAL, `encounter ${id} cost`),
      payer_coverage: checked(e.PAYER_COVERAGE!, DECIMAL, `encounter ${id} coverage`),
      reason_code: e.REASONCODE!,
      reason_description: e.REASONDESCRIPTION!,
      updated_at: stoppedAt || startedAt,
    };
    encounters.push(row);
    encounterById.set(id, { practiceId, syntheaPatientId, patientId: identity.patientId, row });
  }
  report.push(`encounters: ${encountersSrc.length} read, ${encounters.length} written`);

  // Patients: one record per practice that saw them.
  const latestUpdate = new Map<string, string>();
  for (const enc of encounterById.values()) {
    const key = `${enc.practiceId}|${enc.syntheaPatientId}`;
    const previous = latestUpdate.get(key);
    const updatedAt = enc.row.updated_at!;
    if (previous === undefined || updatedAt > previous) latestUpdate.set(key, updatedAt);
  }
  const mrnsByPractice = new Map<string, Set<string>>();
  const patients: OutRow[] = [];
  for (const [pairKey, identity] of identities) {
    const [practiceId, syntheaPatientId] = pairKey.split('|') as [string, string];
    const mrns = mrnsByPractice.get(practiceId) ?? new Set<string>();
    if (mrns.has(identity.mrn)) fail(`MRN collision in practice ${practiceId}`);
    mrns.add(identity.mrn);
    mrnsByPractice.set(practiceId, mrns);
    const p = patientById.get(syntheaPatientId)!;
    patients.push({
      practice_id: practiceId,
      patient_id: identity.patientId,
      mrn: identity.mrn,
      birth_date: checked(p.BIRTHDATE!, DATE, 'patient BIRTHDATE'),
      death_date: checked(p.DEATHDATE!, DATE, 'patient DEATHDATE', true),
      ssn: p.SSN!,
      drivers_license: p.DRIVERS!,
      passport: p.PASSPORT!,
      prefix: p.PREFIX!,
      first_name: p.FIRST!,
      middle_name: p.MIDDLE!,
      last_name: p.LAST!,
      suffix: p.SUFFIX!,
      maiden_name: p.MAIDEN!,
      marital_status: p.MARITAL!,
      race: p.RACE!,
      ethnicity: p.ETHNICITY!,
      sex: p.GENDER!,
      birthplace: p.BIRTHPLACE!,
      address: p.ADDRESS!,
      city: p.CITY!,
      state: p.STATE!,
      county: p.COUNTY!,
      zip: p.ZIP!, // text: '00000' and ZIP+4 values are kept as given
      lat: p.LAT!,
      lon: p.LON!,
      updated_at: latestUpdate.get(pairKey)!,
    });
  }
  const seenPatients = new Set([...identities.keys()].map((k) => k.split('|')[1]));
  const unseen = patientsSrc.filter((p) => !seenPatients.has(p.Id!)).length;
  report.push(
    `patients: ${patientsSrc.length} Synthea patients -> ${patients.length} practice records` +
      (unseen > 0 ? ` (${unseen} patients without any encounter are not in any practice)` : ''),
  );

  /** Resolves a child row's encounter; a dangling reference is a hard error. */
  const encounterOf = (table: string, encounterId: string, syntheaPatientId: string): Encounter => {
    const enc = encounterById.get(encounterId);
    if (!enc) fail(`${table}: row references missing encounter ${encounterId}`);
    if (enc.syntheaPatientId !== syntheaPatientId) fail(`${table}: patient differs from encounter ${encounterId}`);
    return enc;
  };

  const conditionId = childIdFactory('conditions');
  const conditions = conditionsSrc.map((c): OutRow => {
    const enc = encounterOf('conditions', c.ENCOUNTER!, c.PATIENT!);
    const onset = checked(c.START!, DATE, 'condition START');
    const abatement = checked(c.STOP!, DATE, 'condition STOP', true);
    return {
      practice_id: enc.practiceId,
      condition_id: conditionId(c.ENCOUNTER!, c.CODE!, onset),
      patient_id: enc.patientId,
      encounter_id: c.ENCOUNTER!,
      system: c.SYSTEM!,
      code: c.CODE!,
      description: c.DESCRIPTION!,
      onset_date: onset,
      abatement_date: abatement,
      updated_at: `${abatement || onset}T00:00:00Z`,
    };
  });

  const medicationId = childIdFactory('medications');
  const medications = medicationsSrc.map((m): OutRow => {
    const enc = encounterOf('medications', m.ENCOUNTER!, m.PATIENT!);
    const startedAt = checked(m.START!, TIMESTAMP, 'medication START');
    const stoppedAt = checked(m.STOP!, TIMESTAMP, 'medication STOP', true);
    return {
      practice_id: enc.practiceId,
      medication_id: medicationId(m.ENCOUNTER!, m.CODE!, startedAt),
      patient_id: enc.patientId,
      encounter_id: m.ENCOUNTER!,
      payer_id: m.PAYER!,
      code: m.CODE!,
      description: m.DESCRIPTION!,
      started_at: startedAt,
      stopped_at: stoppedAt,
      base_cost: checked(m.BASE_COST!, DECIMAL, 'medication BASE_COST'),
      payer_coverage: checked(m.PAYER_COVERAGE!, DECIMAL, 'medication PAYER_COVERAGE'),
      dispenses: m.DISPENSES!,
      total_cost: checked(m.TOTALCOST!, DECIMAL, 'medication TOTALCOST'),
      reason_code: m.REASONCODE!,
      reason_description: m.REASONDESCRIPTION!,
      updated_at: stoppedAt || startedAt,
    };
  });

  const procedureId = childIdFactory('procedures');
  const procedures = proceduresSrc.map((p): OutRow => {
    const enc = encounterOf('procedures', p.ENCOUNTER!, p.PATIENT!);
    const startedAt = checked(p.START!, TIMESTAMP, 'procedure START');
    const stoppedAt = checked(p.STOP!, TIMESTAMP, 'procedure STOP', true);
    return {
      practice_id: enc.practiceId,
      procedure_id: procedureId(p.ENCOUNTER!, p.CODE!, startedAt),
      patient_id: enc.patientId,
      encounter_id: p.ENCOUNTER!,
      system: p.SYSTEM!,
      code: p.CODE!,
      description: p.DESCRIPTION!,
      started_at: startedAt,
      stopped_at: stoppedAt,
      base_cost: checked(p.BASE_COST!, DECIMAL, 'procedure BASE_COST'),
      reason_code: p.REASONCODE!,
      reason_description: p.REASONDESCRIPTION!,
      updated_at: stoppedAt || startedAt,
    };
  });

  const claimIds = new Set<string>();
  let extraDiagnoses = 0;
  const claims = claimsSrc.map((c): OutRow => {
    const enc = encounterOf('claims', c.APPOINTMENTID!, c.PATIENTID!);
    if (claimIds.has(c.Id!)) fail(`duplicate claim id ${c.Id}`);
    claimIds.add(c.Id!);
    if (c.DIAGNOSIS5 || c.DIAGNOSIS6 || c.DIAGNOSIS7 || c.DIAGNOSIS8) extraDiagnoses++;
    const serviceDate = c.SERVICEDATE!;
    if (!TIMESTAMP.test(serviceDate) && !DATE.test(serviceDate)) fail(`claim SERVICEDATE ${serviceDate}`);
    return {
      practice_id: enc.practiceId,
      claim_id: c.Id!,
      patient_id: enc.patientId,
      provider_id: c.PROVIDERID!,
      encounter_id: c.APPOINTMENTID!,
      primary_payer_id: c.PRIMARYPATIENTINSURANCEID!,
      secondary_payer_id: c.SECONDARYPATIENTINSURANCEID!,
      diagnosis_1: c.DIAGNOSIS1!,
      diagnosis_2: c.DIAGNOSIS2!,
      diagnosis_3: c.DIAGNOSIS3!,
      diagnosis_4: c.DIAGNOSIS4!,
      service_date: serviceDate,
      status_primary: c.STATUS1!,
      status_secondary: c.STATUS2!,
      status_patient: c.STATUSP!,
      outstanding_primary: checked(c.OUTSTANDING1!, DECIMAL, 'claim OUTSTANDING1', true),
      outstanding_secondary: checked(c.OUTSTANDING2!, DECIMAL, 'claim OUTSTANDING2', true),
      outstanding_patient: checked(c.OUTSTANDINGP!, DECIMAL, 'claim OUTSTANDINGP', true),
      updated_at: DATE.test(serviceDate) ? `${serviceDate}T00:00:00Z` : serviceDate,
    };
  });
  if (extraDiagnoses > 0) {
    report.push(`claims: ${extraDiagnoses} claims carry DIAGNOSIS5..8, which the OLTP shape does not keep`);
  }

  const providers: OutRow[] = [];
  let providersWithoutPractice = 0;
  for (const p of providersSrc) {
    const practiceId = practiceOfOrganization.get(p.ORGANIZATION!);
    if (practiceId === undefined) {
      providersWithoutPractice++;
      continue;
    }
    providers.push({
      practice_id: practiceId,
      provider_id: p.Id!,
      name: p.NAME!,
      sex: p.GENDER!,
      speciality: p.SPECIALITY!,
      address: p.ADDRESS!,
      city: p.CITY!,
      state: p.STATE!,
      zip: p.ZIP!,
      lat: p.LAT!,
      lon: p.LON!,
      updated_at: PROVIDERS_UPDATED_AT,
    });
  }
  report.push(
    `providers: ${providersSrc.length} read, ${providers.length} written, ${providersWithoutPractice} not mapped ` +
      `(their organization has no encounter, so it is not a practice)`,
  );
  const providerPractice = new Map(providers.map((p) => [p.provider_id!, p.practice_id!]));
  for (const e of encounters) {
    if (providerPractice.get(e.provider_id!) !== e.practice_id) {
      fail(`encounter ${e.encounter_id} is seen by a provider of another practice`);
    }
  }

  const tables: Record<DemoTable, OutRow[]> = {
    patients: patients.sort(byKeys('practice_id', 'patient_id')),
    encounters: encounters.sort(byKeys('practice_id', 'started_at', 'encounter_id')),
    conditions: conditions.sort(byKeys('practice_id', 'onset_date', 'condition_id')),
    medications: medications.sort(byKeys('practice_id', 'started_at', 'medication_id')),
    procedures: procedures.sort(byKeys('practice_id', 'started_at', 'procedure_id')),
    claims: claims.sort(byKeys('practice_id', 'service_date', 'claim_id')),
    providers: providers.sort(byKeys('practice_id', 'provider_id')),
  };
  const tenants = buildTenants(tables, organizationOfPractice, organizationById, report);
  return { tables, tenants, report };
}

// ---------------------------------------------------------------------------------------------
// Tenants

function buildTenants(
  tables: Record<DemoTable, OutRow[]>,
  organizationOfPractice: Map<string, string>,
  organizationById: Map<string, SourceRow>,
  report: string[],
): TenantEntry[] {
  const encounterCount = new Map<string, number>();
  for (const e of tables.encounters) {
    encounterCount.set(e.practice_id!, (encounterCount.get(e.practice_id!) ?? 0) + 1);
  }
  // Rank: most encounters first, ties by id.
  const ranked = [...organizationOfPractice.keys()].sort((a, b) => {
    const diff = encounterCount.get(b)! - encounterCount.get(a)!;
    return diff !== 0 ? diff : a < b ? -1 : 1;
  });
  const large = new Set(ranked.slice(0, LARGE_PRACTICES));
  const ciSample = chooseCiSample(ranked, encounterCount, tables.patients);
  for (const id of ciSample) {
    report.push(`ci-sample: ${id} (${encounterCount.get(id)} encounters)`);
  }
  report.push(`largest practice: ${ranked[0]} (${encounterCount.get(ranked[0]!)} encounters)`);

  return [...organizationOfPractice.keys()].sort().map((id): TenantEntry => {
    const name = organizationById.get(organizationOfPractice.get(id)!)!.NAME!;
    const readyBy = READY_BY_CHOICES[parseInt(sha256Hex(`ready_by:${id}`).slice(0, 8), 16) % 4]!;
    const tags = [large.has(id) ? 'large' : 'small', 'ma'];
    if (ciSample.includes(id)) tags.push('ci-sample');
    return { id, name, timezone: PRACTICE_TIMEZONE, sla: { ready_by: readyBy }, tags, pool: 'steady' };
  });
}

/**
 * Five practices that together exercise the edge cases: the largest; the practice sharing the
 * most patients with it (a person with a record in two sampled practices); a practice of median
 * size; a tiny practice (fewest encounters, preferring one that shares a patient with the
 * largest); the second largest as a fill-in.
 */
function chooseCiSample(
  ranked: string[],
  encounterCount: Map<string, number>,
  patients: OutRow[],
): string[] {
  const practicesOfPerson = new Map<string, Set<string>>(); // ssn identifies a Synthea person
  for (const p of patients) {
    const set = practicesOfPerson.get(p.ssn!) ?? new Set<string>();
    set.add(p.practice_id!);
    practicesOfPerson.set(p.ssn!, set);
  }
  const largest = ranked[0]!;
  const shared = new Map<string, number>();
  for (const set of practicesOfPerson.values()) {
    if (!set.has(largest)) continue;
    for (const other of set) if (other !== largest) shared.set(other, (shared.get(other) ?? 0) + 1);
  }
  const chosen: string[] = [largest];
  const take = (candidates: string[]) => {
    const pick = candidates.find((c) => !chosen.includes(c));
    if (pick === undefined) fail('cannot choose the ci-sample practices');
    chosen.push(pick);
  };
  take([...ranked].sort((a, b) => (shared.get(b) ?? 0) - (shared.get(a) ?? 0))); // stable: rank breaks ties
  take(ranked.slice(Math.floor(ranked.length / 2)));
  const fewest = encounterCount.get(ranked[ranked.length - 1]!)!;
  const tiny = ranked.filter((id) => encounterCount.get(id) === fewest).sort();
  take([...tiny.filter((id) => shared.has(id)), ...tiny]);
  take(ranked);
  return chosen;
}

export function formatTenantsYaml(tenants: TenantEntry[]): string {
  const scalar = (value: string): string => {
    const text = YAML.stringify(value, { lineWidth: 0 }).trimEnd();
    if (text.includes('\n')) fail(`cannot write ${JSON.stringify(value)} on one line`);
    return text;
  };
  const lines = [
    '# Practices of the demo project: the Synthea organizations with at least one encounter.',
    '# Generated by scripts/prepare-demo-data.ts from test/fixtures/synthea-ma; edit the script, not this file.',
    `# Every organization is in Massachusetts, so every practice uses the real IANA zone ${PRACTICE_TIMEZONE}.`,
    'tenants:',
  ];
  for (const t of tenants) {
    lines.push(
      `  - id: ${t.id}`,
      `    name: ${scalar(t.name)}`,
      `    timezone: ${t.timezone}`,
      '    sla:',
      `      ready_by: "${t.sla.ready_by}"`,
      `    tags: [${t.tags.join(', ')}]`,
      `    pool: ${t.pool}`,
    );
  }
  const text = lines.join('\n') + '\n';
  const roundTrip = JSON.stringify(YAML.parse(text));
  if (roundTrip !== JSON.stringify({ tenants })) fail('tenants.yml does not parse back to the tenants');
  return text;
}

// ---------------------------------------------------------------------------------------------
// Provenance

function formatProvenance(sourceProvenance: string, tables: Record<DemoTable, OutRow[]>, tenantCount: number): string {
  const counts = (Object.keys(DEMO_COLUMNS) as DemoTable[])
    .map((t) => `| ${t} | ${tables[t].length} |`)
    .join('\n');
  return `# data/ehr — demo OLTP source data

Generated by \`npx tsx scripts/prepare-demo-data.ts\` (deterministic: same bytes every run).
Do not edit these files by hand; change the script and run it again.

## Source

Synthea™ synthetic patients, Massachusetts sample, read from \`test/fixtures/synthea-ma\`
(a copy of the sample in the repository; see its README.md).
Its PROVENANCE.txt says:

\`\`\`text
${sourceProvenance.trimEnd()}
\`\`\`

Synthea (https://github.com/synthetichealth/synthea) is licensed under the Apache License 2.0;
its output is synthetic: no real person is described. The copy we read comes from a third-party
repository that carries no LICENSE file of its own.

## Treat as PHI

Every value is fake (SSNs start with 999-, names carry digits), but the records are shaped
exactly like protected health information: names, SSNs, driver's licences, passports, street
addresses, coordinates, full birth and death dates. Code, logs, error messages and research
outputs must handle them as PHI — never print them, never let them reach \`research.*\`.

## Transformation

The data is reshaped into one shared multi-practice OLTP database:

- A **practice** is a Synthea organization with at least one encounter (${tenantCount} practices).
  \`practice_id\` = \`p_\` + the first 10 hex digits of the organization UUID without hyphens; the
  script fails if two organizations would share one. \`tenants.yml\` lists them.
- \`practice_id\` is the first column of every table. Encounters belong to their ORGANIZATION;
  conditions, medications, procedures and claims (via APPOINTMENTID) to their encounter's
  practice; providers to their ORGANIZATION (providers of organizations without encounters are
  dropped and counted by the script).
- A person seen at several practices has one patient record **per practice**, as separate
  practice systems would hold: \`patient_id\` = sha256(practice_id + ':' + Synthea patient id),
  first 128 bits as 8-4-4-4-12 lowercase hex; \`mrn\` = 'MRN' + 8 digits from the same hash.
  The Synthea patient id itself is not kept.
- Condition, medication and procedure ids are hashed (same format) from the table name,
  encounter id, code, start and the row's index among rows sharing those values. Encounter,
  claim and provider ids are Synthea's.
- Columns are renamed to snake_case; Synthea columns not listed below are dropped (FIPS,
  income and expense totals, claims' DIAGNOSIS5..8, department and billing-date columns,
  providers' utilization counts). Timestamps stay ISO UTC with 'Z', dates YYYY-MM-DD, money
  Synthea's decimal text, ZIP codes text ('00000' and ZIP+4 kept as given). NULL is ''.
- \`updated_at\` (ISO UTC): stop time if any else start time for events (date at 00:00:00Z for
  conditions); the service date for claims; the latest encounter \`updated_at\` of that patient
  at that practice for patients; \`2026-11-27T00:00:00Z\` for providers.
- Rows are sorted by practice_id, then time, then id.

| table | rows |
| --- | --- |
${counts}
`;
}

// ---------------------------------------------------------------------------------------------
// Entry point

function main(): void {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const sourceDir = resolve(process.argv[2] ?? join(repoRoot, 'test/fixtures/synthea-ma'));
  const { tables, tenants, report } = prepareDemoData(sourceDir);
  const outDir = join(repoRoot, 'data/ehr');
  mkdirSync(outDir, { recursive: true });
  for (const table of Object.keys(DEMO_COLUMNS) as DemoTable[]) {
    const csv = formatCsv(DEMO_COLUMNS[table], tables[table]);
    // node:zlib writes mtime 0; the OS byte is pinned to Unix so the bytes do not depend on
    // the machine (they can still change with the zlib version bundled in Node).
    const gz = gzipSync(csv, { level: 9 });
    gz[9] = 3;
    writeFileSync(join(outDir, `${table}.csv.gz`), gz);
    report.push(`wrote data/ehr/${table}.csv.gz: ${tables[table].length} rows`);
  }
  const sourceProvenance = readFileSync(join(sourceDir, 'PROVENANCE.txt'), 'utf8');
  writeFileSync(join(outDir, 'PROVENANCE.md'), formatProvenance(sourceProvenance, tables, tenants.length));
  writeFileSync(join(repoRoot, 'tenants.yml'), formatTenantsYaml(tenants));
  report.push(`wrote tenants.yml: ${tenants.length} tenants`);
  for (const line of report) console.log(line);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main();
}
