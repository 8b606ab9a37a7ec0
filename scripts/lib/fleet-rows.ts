import { createHash } from 'node:crypto';
import type { FleetPractice } from './fleet-practices.ts';
import type { Vocabulary } from './fleet-vocabulary.ts';

/**
 * The rows of one practice, in the column order of the demo's sources.yml (fleet-ehr.ts checks
 * the headers against it). Every value derives from (seed, practice) or (seed, person), so a
 * practice's rows do not depend on how many practices come before it, and the same seed gives
 * the same bytes.
 *
 * Identities: a person exists once in a fleet-wide pool (identity derived from the person's
 * index); a practice's patient record is a new person or, with SHARED_PERSON probability, a
 * person already seen at another practice, with a practice-specific patient id and MRN and the
 * variations real records have (a missing SSN, a transposed letter, a new address), so that
 * linkage across practices is exercised.
 */

export const HEADERS = {
  patients: ['practice_id', 'patient_id', 'mrn', 'birth_date', 'death_date', 'ssn', 'drivers_license', 'passport', 'prefix', 'first_name', 'middle_name', 'last_name', 'suffix', 'maiden_name', 'marital_status', 'race', 'ethnicity', 'sex', 'birthplace', 'address', 'city', 'state', 'county', 'zip', 'lat', 'lon', 'updated_at'],
  encounters: ['practice_id', 'encounter_id', 'patient_id', 'provider_id', 'payer_id', 'encounter_class', 'code', 'description', 'started_at', 'stopped_at', 'base_encounter_cost', 'total_claim_cost', 'payer_coverage', 'reason_code', 'reason_description', 'updated_at'],
  conditions: ['practice_id', 'condition_id', 'patient_id', 'encounter_id', 'system', 'code', 'description', 'onset_date', 'abatement_date', 'updated_at'],
  medications: ['practice_id', 'medication_id', 'patient_id', 'encounter_id', 'payer_id', 'code', 'description', 'started_at', 'stopped_at', 'base_cost', 'payer_coverage', 'dispenses', 'total_cost', 'reason_code', 'reason_description', 'updated_at'],
  procedures: ['practice_id', 'procedure_id', 'patient_id', 'encounter_id', 'system', 'code', 'description', 'started_at', 'stopped_at', 'base_cost', 'reason_code', 'reason_description', 'updated_at'],
  claims: ['practice_id', 'claim_id', 'patient_id', 'provider_id', 'encounter_id', 'primary_payer_id', 'secondary_payer_id', 'diagnosis_1', 'diagnosis_2', 'diagnosis_3', 'diagnosis_4', 'service_date', 'status_primary', 'status_secondary', 'status_patient', 'outstanding_primary', 'outstanding_secondary', 'outstanding_patient', 'updated_at'],
  providers: ['practice_id', 'provider_id', 'name', 'sex', 'speciality', 'address', 'city', 'state', 'zip', 'lat', 'lon', 'updated_at'],
} as const;

export type FleetTable = keyof typeof HEADERS;
export const FLEET_TABLES = Object.keys(HEADERS) as FleetTable[];

/** A practice's record is a person already seen elsewhere this often. */
export const SHARED_PERSON = 0.2;
/** The extract's reference time: encounters reach back five years from it. */
const AS_OF = Date.UTC(2026, 10, 30);
const YEAR = 365.25 * 86_400_000;
const DAY = 86_400_000;

export type Rng = () => number;

/** sfc32 seeded from sha256 of the parts: 128 bits of state, so streams of different practices do not overlap. */
export function rngFor(...parts: (string | number)[]): Rng {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

const any = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const digits = (rng: Rng, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(rng() * 10));
  return s;
};
const hex = (rng: Rng, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(rng() * 16)];
  return s;
};
const ts = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const money = (x: number) => x.toFixed(2);

/** Synthea-shaped ids, unique by construction: the practice id, a table code and a counter. */
function idMaker(practiceId: string, table: number, rng: Rng): () => string {
  const p = practiceId.slice(2); // 10 hex digits
  let n = 0;
  return () => `${p.slice(0, 8)}-${p.slice(8, 10)}${table.toString(16).padStart(2, '0')}-4${hex(rng, 3)}-${hex(rng, 4)}-${(n++).toString(16).padStart(12, '0')}`;
}

/** A person of the fleet-wide pool. */
export interface Person {
  sex: 'F' | 'M';
  first: string;
  middle: string;
  last: string;
  maiden: string;
  marital: string;
  birth: number;
  death: number | undefined;
  ssn: string;
  license: string;
  passport: string;
  race: string;
  ethnicity: string;
  birthplace: string;
  streetNo: number;
  street: string;
  place: string[];
}

export function personAt(v: Vocabulary, seed: number, index: number): Person {
  const rng = rngFor(seed, 'person', index);
  const sex = rng() < 0.51 ? 'F' : 'M';
  const birth = AS_OF - (1 + rng() * 90) * YEAR;
  const married = rng() < 0.5;
  const lifespan = {
    birth: Math.floor(birth / DAY) * DAY,
    // Some died within the five years of encounters, after their birth.
    death: rng() < 0.04 ? Math.floor((AS_OF - rng() * Math.min(AS_OF - birth, 5 * YEAR)) / DAY) * DAY : undefined,
  };
  return {
    sex,
    first: any(rng, v.firstNames[sex]),
    middle: any(rng, v.firstNames[sex]),
    last: any(rng, v.lastNames),
    maiden: sex === 'F' && married ? any(rng, v.lastNames) : '',
    marital: married ? 'M' : any(rng, ['S', 'D', 'W', '']),
    ...lifespan,
    // Area 900-999, like Synthea's (the demo sets ssn_area_9xx: valid): 10^8 numbers for the pool.
    ssn: `9${digits(rng, 2)}-${digits(rng, 2)}-${digits(rng, 4)}`,
    license: rng() < 0.8 ? `S99${digits(rng, 6)}` : '',
    passport: rng() < 0.6 ? `X${digits(rng, 8)}X` : '',
    race: any(rng, v.races),
    ethnicity: any(rng, v.ethnicities),
    birthplace: any(rng, v.birthplaces),
    streetNo: int(rng, 1, 999),
    street: any(rng, v.streets),
    place: any(rng, v.places),
  };
}

/** Where a practice's persons come from: new ones get the next index; shared ones an earlier one. */
export class PersonPool {
  next = 0;
  take(rng: Rng, taken: Set<number>): number {
    if (this.next > 0 && rng() < SHARED_PERSON) {
      // A few tries for a person this practice does not have yet; else a new one.
      for (let i = 0; i < 4; i++) {
        const p = Math.floor(rng() * this.next);
        if (!taken.has(p)) return p;
      }
    }
    return this.next++;
  }
}

export type RowSink = (table: FleetTable, fields: readonly string[]) => void;

/**
 * Emits one practice's rows through `emit`; `pause` is awaited every few hundred encounters so a
 * large practice is written out as it is made (streaming, bounded memory).
 */
export async function practiceRows(v: Vocabulary, seed: number, p: FleetPractice, pool: PersonPool, emit: RowSink, pause: () => Promise<void>): Promise<void> {
  const rng = rngFor(seed, 'practice', p.id);
  const ids = {
    patient: idMaker(p.id, 1, rng),
    encounter: idMaker(p.id, 2, rng),
    condition: idMaker(p.id, 3, rng),
    medication: idMaker(p.id, 4, rng),
    procedure: idMaker(p.id, 5, rng),
    claim: idMaker(p.id, 6, rng),
    provider: idMaker(p.id, 7, rng),
  };
  const updated = ts(AS_OF - DAY);

  const providers: string[] = [];
  for (let i = 0; i < p.providers; i++) {
    const id = ids.provider();
    providers.push(id);
    const site = any(rng, v.providerSites);
    const sex = site[0] === 'F' ? 'F' : 'M';
    emit('providers', [p.id, id, `${any(rng, v.firstNames[sex])} ${any(rng, v.lastNames)}`, ...site, updated]);
  }

  const patients: { id: string; from: number; span: number }[] = [];
  const taken = new Set<number>();
  for (let i = 0; i < p.patients; i++) {
    const index = pool.take(rng, taken);
    taken.add(index);
    const who = personAt(v, seed, index);
    const id = ids.patient();
    // Encounters fall within the last five years of the person's life, never before birth or after death.
    const to = Math.min(who.death ?? AS_OF, AS_OF);
    const from = Math.max(who.birth, AS_OF - 5 * YEAR);
    patients.push({ id, from, span: Math.max(0, to - from) });
    // This practice's record of the person: what front desks get wrong or out of date.
    const first = rng() < 0.03 && who.first.length > 3 ? transpose(who.first, 1 + Math.floor(rng() * (who.first.length - 2))) : who.first;
    const ssn = rng() < 0.1 ? '' : who.ssn;
    const streetNo = rng() < 0.05 ? int(rng, 1, 999) : who.streetNo;
    emit('patients', [
      p.id, id, `MRN${digits(rng, 8)}`, date(who.birth), who.death === undefined ? '' : date(who.death), ssn, who.license, who.passport,
      who.sex === 'F' ? (who.maiden ? 'Mrs.' : 'Ms.') : 'Mr.', first, who.middle, who.last, '', who.maiden, who.marital,
      who.race, who.ethnicity, who.sex, who.birthplace, `${streetNo} ${who.street}`, ...who.place, ts(AS_OF - rng() * 2 * YEAR),
    ]);
  }

  for (let e = 0; e < p.encounters; e++) {
    if (e % 256 === 255) await pause();
    const encounterId = ids.encounter();
    const who = any(rng, patients);
    const patient = who.id;
    const provider = any(rng, providers);
    const payer = any(rng, v.payers);
    const t = any(rng, v.encounters);
    const start = Math.floor((who.from + rng() * who.span) / 1000) * 1000;
    const stop = start + int(rng, 15, 60) * 60_000;
    emit('encounters', [p.id, encounterId, patient, provider, payer, t[0]!, t[1]!, t[2]!, ts(start), ts(stop), t[3]!, t[4]!, t[5]!, t[6]!, t[7]!, ts(stop)]);

    const diagnoses: string[] = [];
    const conditions = rng() < 0.45 ? (rng() < 0.2 ? 2 : 1) : 0;
    for (let i = 0; i < conditions; i++) {
      const c = any(rng, v.conditions);
      diagnoses.push(c[1]!);
      const onset = Math.floor(start / DAY) * DAY;
      const abated = rng() < 0.5 ? onset + int(rng, 7, 60) * DAY : undefined;
      const ended = abated !== undefined && abated < AS_OF ? date(abated) : '';
      emit('conditions', [p.id, ids.condition(), patient, encounterId, c[0]!, c[1]!, c[2]!, date(onset), ended, ts(ended ? abated! : onset)]);
    }
    const medications = rng() < 0.5 ? (rng() < 0.4 ? 2 : 1) : 0;
    for (let i = 0; i < medications; i++) {
      const m = any(rng, v.medications);
      const mstop = start + int(rng, 7, 30) * DAY;
      emit('medications', [p.id, ids.medication(), patient, encounterId, payer, m[0]!, m[1]!, ts(start), ts(mstop), m[2]!, m[3]!, m[4]!, m[5]!, m[6]!, m[7]!, ts(Math.min(mstop, AS_OF))]);
    }
    const procedures = Math.floor(rng() * 3);
    for (let i = 0; i < procedures; i++) {
      const pr = any(rng, v.procedures);
      const pstop = start + int(rng, 10, 45) * 60_000;
      emit('procedures', [p.id, ids.procedure(), patient, encounterId, pr[0]!, pr[1]!, pr[2]!, ts(start), ts(pstop), pr[3]!, pr[4]!, pr[5]!, ts(pstop)]);
    }
    const st = any(rng, v.claimStatuses);
    const owed = st[0] !== 'CLOSED' ? Math.max(0, Number(t[4]) - Number(t[5])) : 0;
    const diag = [...diagnoses, t[6]!].filter((d) => d !== '');
    emit('claims', [
      p.id, ids.claim(), patient, provider, encounterId, payer, rng() < 0.1 ? any(rng, v.payers) : '',
      diag[0] ?? '', diag[1] ?? '', diag[2] ?? '', diag[3] ?? '', ts(start), st[0]!, st[1]!, st[2]!,
      money(owed), '0', st[2] !== 'CLOSED' ? money(rng() * 50) : '0', ts(stop),
    ]);
  }
}

function transpose(s: string, i: number): string {
  return s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2);
}
