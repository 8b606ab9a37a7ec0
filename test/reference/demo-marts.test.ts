import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_COLUMNS, formatCsv, formatTenantsYaml, prepareDemoData } from '../../scripts/prepare-demo-data.ts';
import {
  formatCents,
  loadDemoCsv,
  loadDemoTenants,
  localDate,
  referencePracticeDailyActivity,
  referenceProviderPanel,
  subtractMonthsUtc,
  toCents,
  type DemoTenant,
} from './demo-marts.ts';

type Row = Record<string, string>;

// Written out again here rather than imported, so a change to the script's columns shows up.
const EXPECTED_COLUMNS: Record<string, string[]> = {
  patients: ['practice_id', 'patient_id', 'mrn', 'birth_date', 'death_date', 'ssn', 'drivers_license', 'passport', 'prefix', 'first_name', 'middle_name', 'last_name', 'suffix', 'maiden_name', 'marital_status', 'race', 'ethnicity', 'sex', 'birthplace', 'address', 'city', 'state', 'county', 'zip', 'lat', 'lon', 'updated_at'],
  encounters: ['practice_id', 'encounter_id', 'patient_id', 'provider_id', 'payer_id', 'encounter_class', 'code', 'description', 'started_at', 'stopped_at', 'base_encounter_cost', 'total_claim_cost', 'payer_coverage', 'reason_code', 'reason_description', 'updated_at'],
  conditions: ['practice_id', 'condition_id', 'patient_id', 'encounter_id', 'system', 'code', 'description', 'onset_date', 'abatement_date', 'updated_at'],
  medications: ['practice_id', 'medication_id', 'patient_id', 'encounter_id', 'payer_id', 'code', 'description', 'started_at', 'stopped_at', 'base_cost', 'payer_coverage', 'dispenses', 'total_cost', 'reason_code', 'reason_description', 'updated_at'],
  procedures: ['practice_id', 'procedure_id', 'patient_id', 'encounter_id', 'system', 'code', 'description', 'started_at', 'stopped_at', 'base_cost', 'reason_code', 'reason_description', 'updated_at'],
  claims: ['practice_id', 'claim_id', 'patient_id', 'provider_id', 'encounter_id', 'primary_payer_id', 'secondary_payer_id', 'diagnosis_1', 'diagnosis_2', 'diagnosis_3', 'diagnosis_4', 'service_date', 'status_primary', 'status_secondary', 'status_patient', 'outstanding_primary', 'outstanding_secondary', 'outstanding_patient', 'updated_at'],
  providers: ['practice_id', 'provider_id', 'name', 'sex', 'speciality', 'address', 'city', 'state', 'zip', 'lat', 'lon', 'updated_at'],
};
const ID_COLUMN: Record<string, string> = {
  encounters: 'encounter_id',
  conditions: 'condition_id',
  medications: 'medication_id',
  procedures: 'procedure_id',
  claims: 'claim_id',
  providers: 'provider_id',
};
const TABLES = Object.keys(EXPECTED_COLUMNS);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
// The repository's own copy of the Synthea sample (a fresh clone has no ../shared): no skip.
const SYNTHEA_DIR = fileURLToPath(new URL('../fixtures/synthea-ma', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const data: Record<string, Row[]> = {};
let tenants: DemoTenant[] = [];

beforeAll(async () => {
  for (const table of TABLES) data[table] = await loadDemoCsv(table);
  tenants = await loadDemoTenants();
});

const rows = (table: string): Row[] => data[table]!;
const countBy = (list: Row[], column: string): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const r of list) counts.set(r[column]!, (counts.get(r[column]!) ?? 0) + 1);
  return counts;
};

describe('demo OLTP data', () => {
  it('has the expected columns, practice_id first, in every table', async () => {
    for (const table of TABLES) {
      expect(Object.keys(rows(table)[0]!), table).toEqual(EXPECTED_COLUMNS[table]);
      expect([...DEMO_COLUMNS[table as keyof typeof DEMO_COLUMNS]], table).toEqual(EXPECTED_COLUMNS[table]);
    }
  });

  it('has the row counts of the Synthea MA sample', () => {
    const counts = Object.fromEntries(TABLES.map((t) => [t, rows(t).length]));
    expect(counts).toEqual({
      patients: 363,
      encounters: 5127,
      conditions: 3236,
      medications: 3789,
      procedures: 13974,
      claims: 8916,
      providers: 221,
    });
  });

  it('has unique ids in every table', () => {
    for (const [table, column] of Object.entries(ID_COLUMN)) {
      const ids = rows(table).map((r) => r[column]!);
      expect(new Set(ids).size, table).toBe(ids.length);
    }
    const patientKeys = rows('patients').map((p) => p.patient_id!);
    expect(new Set(patientKeys).size).toBe(patientKeys.length);
    for (const [practice, list] of groupBy(rows('patients'), 'practice_id')) {
      const mrns = list.map((p) => p.mrn!);
      expect(new Set(mrns).size, practice).toBe(mrns.length);
    }
  });

  it('uses the documented formats', () => {
    for (const p of rows('patients')) {
      expect(p.patient_id).toMatch(UUID);
      expect(p.mrn).toMatch(/^MRN\d{8}$/);
      expect(p.birth_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(p.zip).toMatch(/^\d{5}(\d{4})?$/);
    }
    for (const id of ['condition_id', 'medication_id', 'procedure_id']) {
      const table = id.replace('_id', 's');
      for (const r of rows(table)) expect(r[id]).toMatch(UUID);
    }
    for (const table of TABLES) {
      for (const r of rows(table)) expect(r.updated_at, table).toMatch(TIMESTAMP);
    }
    for (const e of rows('encounters')) expect(e.started_at).toMatch(TIMESTAMP);
  });

  it('keeps ZIP codes as text with their leading zeros', () => {
    expect(rows('patients').some((p) => p.zip === '00000')).toBe(true);
    expect(rows('providers').some((p) => p.zip!.startsWith('0'))).toBe(true);
  });

  it('has every referenced encounter, in the same practice and for the same patient', () => {
    const encounters = new Map(rows('encounters').map((e) => [e.encounter_id!, e]));
    for (const table of ['conditions', 'medications', 'procedures', 'claims']) {
      for (const r of rows(table)) {
        const e = encounters.get(r.encounter_id!);
        expect(e, `${table} -> ${r.encounter_id}`).toBeDefined();
        expect(r.practice_id).toBe(e!.practice_id);
        expect(r.patient_id).toBe(e!.patient_id);
      }
    }
  });

  it('links encounters to a patient record and a provider of their own practice', () => {
    const patients = new Set(rows('patients').map((p) => `${p.practice_id}|${p.patient_id}`));
    const providers = new Set(rows('providers').map((p) => `${p.practice_id}|${p.provider_id}`));
    for (const e of rows('encounters')) {
      expect(patients.has(`${e.practice_id}|${e.patient_id}`)).toBe(true);
      expect(providers.has(`${e.practice_id}|${e.provider_id}`)).toBe(true);
    }
  });

  it('gives a person seen at two practices a separate record in each', () => {
    // The SSN survives in both records, so it identifies the Synthea person across practices.
    const recordsOfPerson = groupBy(rows('patients'), 'ssn');
    const multi = [...recordsOfPerson.values()].filter((list) => list.length > 1);
    expect(multi.length).toBeGreaterThan(0);
    const practicesOfPatientId = new Map<string, Set<string>>();
    for (const e of rows('encounters')) {
      const set = practicesOfPatientId.get(e.patient_id!) ?? new Set<string>();
      set.add(e.practice_id!);
      practicesOfPatientId.set(e.patient_id!, set);
    }
    for (const records of multi) {
      const practices = records.map((r) => r.practice_id!);
      expect(new Set(practices).size).toBe(records.length);
      expect(new Set(records.map((r) => r.patient_id)).size).toBe(records.length);
      for (const r of records) {
        // The practice-specific id is used by that practice's encounters only.
        expect([...practicesOfPatientId.get(r.patient_id!)!]).toEqual([r.practice_id]);
      }
    }
  });

  it('is what scripts/prepare-demo-data.ts makes from the repository copy of the Synthea sample', async () => {
    for (const table of ['organizations', 'patients', 'encounters', 'conditions', 'medications', 'procedures', 'claims', 'providers']) {
      expect(existsSync(join(SYNTHEA_DIR, `${table}.csv`)) || existsSync(join(SYNTHEA_DIR, `${table}.csv.gz`)), `test/fixtures/synthea-ma/${table}`).toBe(true);
    }
    const prepared = prepareDemoData(SYNTHEA_DIR);
    for (const table of TABLES) {
      const expected = parse(formatCsv(EXPECTED_COLUMNS[table]!, prepared.tables[table as keyof typeof prepared.tables]), {
        columns: true,
      }) as Row[];
      expect(rows(table), table).toEqual(expected);
    }
    expect(readFileSync(join(REPO_ROOT, 'tenants.yml'), 'utf8')).toBe(formatTenantsYaml(prepared.tenants));
  });
});

describe('tenants.yml', () => {
  it('lists exactly the practices of the data, sorted, with valid ids', () => {
    const ids = tenants.map((t) => t.id);
    expect(ids.length).toBe(221);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9][a-z0-9_]{0,62}$/);
    const known = new Set(ids);
    for (const table of TABLES) {
      for (const practice of countBy(rows(table), 'practice_id').keys()) {
        expect(known.has(practice), `${table}: ${practice}`).toBe(true);
      }
    }
    expect(new Set(rows('encounters').map((e) => e.practice_id))).toEqual(known);
  });

  it('gives each tenant a real time zone, an SLA, tags and a pool', () => {
    for (const t of tenants) {
      expect(t.name.length).toBeGreaterThan(0);
      expect(() => new Intl.DateTimeFormat('en-US', { timeZone: t.timezone })).not.toThrow();
      expect(['05:30', '06:00', '06:30', '07:00']).toContain(t.sla.ready_by);
      expect(t.pool).toBe('steady');
      expect(t.tags).toContain('ma');
      expect(t.tags.filter((tag) => tag === 'large' || tag === 'small')).toHaveLength(1);
    }
  });

  it('tags the 10 busiest practices large and 5 practices ci-sample, incl. the largest and a tiny one', () => {
    const counts = countBy(rows('encounters'), 'practice_id');
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const large = tenants.filter((t) => t.tags.includes('large')).map((t) => t.id).sort();
    expect(large).toEqual(ranked.slice(0, 10).map(([id]) => id).sort());
    const sample = tenants.filter((t) => t.tags.includes('ci-sample')).map((t) => t.id);
    expect(sample).toHaveLength(5);
    expect(sample).toContain(ranked[0]![0]);
    expect(sample.some((id) => counts.get(id)! <= 2)).toBe(true);
  });
});

describe('reference marts', () => {
  it('computes local dates, month arithmetic and cents exactly', () => {
    const ny = 'America/New_York';
    expect(localDate('2024-03-10T04:59:00Z', ny)).toBe('2024-03-09'); // 23:59 EST
    expect(localDate('2024-03-10T07:30:00Z', ny)).toBe('2024-03-10'); // 03:30 EDT
    expect(localDate('2024-07-01T03:59:59Z', ny)).toBe('2024-06-30'); // 23:59 EDT
    expect(localDate('2024-07-01T04:00:00Z', ny)).toBe('2024-07-01');
    expect(localDate('1946-07-17T04:07:11Z', ny)).toBe('1946-07-17');
    expect(subtractMonthsUtc(new Date('2024-02-29T10:00:00Z'), 12).toISOString()).toBe('2023-02-28T10:00:00.000Z');
    expect(subtractMonthsUtc(new Date('2025-03-31T00:00:01Z'), 1).toISOString()).toBe('2025-02-28T00:00:01.000Z');
    expect(subtractMonthsUtc(new Date('2026-05-25T14:10:27Z'), 12).toISOString()).toBe('2025-05-25T14:10:27.000Z');
    expect(toCents('948.35') + toCents('0.1') + toCents('7')).toBe(95545n);
    expect(formatCents(95845n)).toBe('958.45');
    expect(formatCents(5n)).toBe('0.05');
    expect(formatCents(-105n)).toBe('-1.05');
  });

  it('practice daily activity adds up to the encounters CSV', async () => {
    const activity = await referencePracticeDailyActivity();
    const encounters = rows('encounters');
    expect(activity.reduce((n, r) => n + r.encounters, 0)).toBe(encounters.length);
    const totalCents = encounters.reduce((sum, e) => sum + toCents(e.total_claim_cost!), 0n);
    expect(activity.reduce((sum, r) => sum + toCents(r.total_claim_cost), 0n)).toBe(totalCents);
    const keys = activity.map((r) => `${r.practice_id}|${r.activity_date}|${r.encounter_class}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(keys);
    for (const r of activity) {
      expect(r.activity_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(r.total_claim_cost).toMatch(/^\d+\.\d{2}$/);
      expect(r.distinct_patients).toBeGreaterThan(0);
      expect(r.distinct_patients).toBeLessThanOrEqual(r.encounters);
    }
  });

  it('dates an evening encounter (New York time) on the previous UTC day', async () => {
    const activity = await referencePracticeDailyActivity();
    const evening = rows('encounters').find((e) => Number(e.started_at!.slice(11, 13)) < 4)!;
    expect(evening).toBeDefined();
    const previousDay = new Date(Date.parse(evening.started_at!.slice(0, 10)) - 86_400_000).toISOString().slice(0, 10);
    const hit = activity.find(
      (r) => r.practice_id === evening.practice_id && r.activity_date === previousDay && r.encounter_class === evening.encounter_class,
    );
    expect(hit).toBeDefined();
  });

  it('provider panel has one row per provider and counts only the last 12 months', async () => {
    const panel = await referenceProviderPanel();
    const providers = rows('providers');
    expect(panel).toHaveLength(providers.length);
    expect(panel.map((r) => `${r.practice_id}|${r.provider_id}`)).toEqual(
      providers.map((p) => `${p.practice_id}|${p.provider_id}`).sort(),
    );
    const allTime = new Map<string, Set<string>>();
    for (const e of rows('encounters')) {
      const key = `${e.practice_id}|${e.provider_id}`;
      allTime.set(key, (allTime.get(key) ?? new Set()).add(e.patient_id!));
    }
    for (const r of panel) {
      expect(r.active_patients_12m).toBeGreaterThanOrEqual(0);
      expect(r.active_patients_12m).toBeLessThanOrEqual(allTime.get(`${r.practice_id}|${r.provider_id}`)?.size ?? 0);
    }
    // A practice's latest encounter always falls in its own window, so some provider of every
    // practice has an active patient.
    const activePractices = new Set(panel.filter((r) => r.active_patients_12m > 0).map((r) => r.practice_id));
    expect(activePractices).toEqual(new Set(providers.map((p) => p.practice_id)));
  });
});

describe('demo CSV writer', () => {
  it('quotes commas, quotes and newlines so csv-parse reads the values back', () => {
    const values = [{ a: 'plain', b: 'x,y', c: 'say "hi"' }, { a: 'two\nlines', b: '', c: '00000' }];
    const text = formatCsv(['a', 'b', 'c'], values);
    expect(text.split('\n')[0]).toBe('a,b,c');
    expect(text).toContain('"x,y","say ""hi"""');
    expect(parse(text, { columns: true })).toEqual(values);
  });
});

function groupBy(list: Row[], column: string): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  for (const r of list) groups.set(r[column]!, [...(groups.get(r[column]!) ?? []), r]);
  return groups;
}
