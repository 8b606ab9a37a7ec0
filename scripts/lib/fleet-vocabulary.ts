import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';

/**
 * The value vocabulary of the synthetic fleet, taken from the demo project's own extracts
 * (data/ehr/*.csv.gz, Synthea): encounter, condition, medication and procedure templates with
 * their codes and costs, claim statuses, payers, and the parts identities are assembled from.
 * Reusing them keeps the demo's models meaningful on the fleet (chronic panels find their
 * codes, encounter classes join the seed) without inventing clinical content.
 */

export interface Vocabulary {
  /** encounter_class, code, description, base_encounter_cost, total_claim_cost, payer_coverage, reason_code, reason_description */
  encounters: string[][];
  payers: string[];
  /** system, code, description */
  conditions: string[][];
  /** code, description, base_cost, payer_coverage, dispenses, total_cost, reason_code, reason_description */
  medications: string[][];
  /** system, code, description, base_cost, reason_code, reason_description */
  procedures: string[][];
  /** status_primary, status_secondary, status_patient */
  claimStatuses: string[][];
  firstNames: { F: string[]; M: string[] };
  lastNames: string[];
  prefixes: { F: string[]; M: string[] };
  races: string[];
  ethnicities: string[];
  birthplaces: string[];
  streets: string[];
  /** city, state, county, zip, lat, lon */
  places: string[][];
  /** name-less provider templates: sex, speciality, address, city, state, zip, lat, lon */
  providerSites: string[][];
}

type Row = Record<string, string>;

function readRows(dataDir: string, table: string): Row[] {
  const text = gunzipSync(readFileSync(join(dataDir, `${table}.csv.gz`))).toString('utf8');
  return parse(text, { columns: true, bom: true }) as Row[];
}

const pick = (row: Row, cols: readonly string[]) => cols.map((c) => row[c] ?? '');
/** Distinct rows, in first-seen order (the demo's files are sorted by practice, so the order is stable). */
function distinct(rows: string[][]): string[][] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = r.join('\u0000');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
const distinctValues = (values: string[]) => [...new Set(values.filter((v) => v !== ''))];

/** Reads the demo extracts under `dataDir` (data/ehr of the repository). */
export function readVocabulary(dataDir: string): Vocabulary {
  const enc = readRows(dataDir, 'encounters');
  const cond = readRows(dataDir, 'conditions');
  const med = readRows(dataDir, 'medications');
  const proc = readRows(dataDir, 'procedures');
  const claims = readRows(dataDir, 'claims');
  const pats = readRows(dataDir, 'patients');
  const provs = readRows(dataDir, 'providers');
  // Synthea names carry a numeric suffix ("Barbie211"); the digits make names that real records
  // never have, so they are stripped and the bare names recombined.
  const bare = (v: string) => v.replace(/\d+$/, '');
  const names = (sex: string) => distinctValues(pats.filter((p) => p.sex === sex).map((p) => bare(p.first_name ?? '')));
  return {
    // Templates keep their frequency (duplicates stay), so common encounters stay common.
    encounters: enc.map((r) => pick(r, ['encounter_class', 'code', 'description', 'base_encounter_cost', 'total_claim_cost', 'payer_coverage', 'reason_code', 'reason_description'])),
    payers: distinctValues(enc.map((r) => r.payer_id ?? '')),
    conditions: cond.map((r) => pick(r, ['system', 'code', 'description'])),
    medications: med.map((r) => pick(r, ['code', 'description', 'base_cost', 'payer_coverage', 'dispenses', 'total_cost', 'reason_code', 'reason_description'])),
    procedures: proc.map((r) => pick(r, ['system', 'code', 'description', 'base_cost', 'reason_code', 'reason_description'])),
    claimStatuses: claims.map((r) => pick(r, ['status_primary', 'status_secondary', 'status_patient'])),
    firstNames: { F: names('F'), M: names('M') },
    lastNames: distinctValues(pats.map((p) => bare(p.last_name ?? ''))),
    prefixes: { F: ['Mrs.', 'Ms.'], M: ['Mr.'] },
    races: pats.map((p) => p.race ?? 'other'),
    ethnicities: pats.map((p) => p.ethnicity ?? 'nonhispanic'),
    birthplaces: distinctValues(pats.map((p) => p.birthplace ?? '')),
    streets: distinctValues(pats.map((p) => (p.address ?? '').replace(/^\d+\s+/, ''))),
    places: distinct(pats.map((r) => pick(r, ['city', 'state', 'county', 'zip', 'lat', 'lon']))),
    providerSites: distinct(provs.map((r) => pick(r, ['sex', 'speciality', 'address', 'city', 'state', 'zip', 'lat', 'lon']))),
  };
}
