import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ManifestNode } from '../../src/artifacts/manifest.ts';
import { buildVaultTokens } from '../../src/execute/vault.ts';
import { DEFAULT_LINKAGE } from '../../src/project/linkage-config.ts';
import type { PrivacyConfig } from '../../src/project/types.ts';
import type { LinkRecord } from '../../src/security/match-keys.ts';
import { keyFingerprint, newPersonToken } from '../../src/security/pseudonymize.ts';
import { resolvePersons } from '../../src/security/resolve-persons.ts';
import { twoEngines } from '../support/two-engines.ts';

/**
 * Each batch of practices re-resolves only the records its changes can reach (linkage-reach.ts),
 * not every practice's records. That is exact only if the reach holds whole persons, every
 * claimant of a token and every holder of a key value whose crowdedness moved. Checked against
 * the definition: after every step of a seeded random history (corrections, typos, moves of a
 * person between practices, mix-ups, deletions, new records, namesakes the guard splits, a key
 * value that becomes crowded and stops being so, near-empty identities), every token in the vault
 * equals what resolving all records at once gives, on DuckDB and on PostgreSQL. Identities are
 * synthetic; a failure prints record ids and counts only.
 */

const KEY = createHash('sha256').update('tsform linkage reach test key').digest();
const VAULT_KEY = { key: KEY, fingerprint: keyFingerprint(KEY) };
const TOKENS = { schema: 'vault', identifier: 'person_tokens' } as ManifestNode;
const IDENTITY = { schema: 'staging', identifier: 'stg_patients' } as ManifestNode;
// Small, so that one common identity crosses it (a placeholder-like value) within the history.
const MAX_KEY_HOLDERS = 4;
const LINKAGE = { ...DEFAULT_LINKAGE, maxKeyHolders: MAX_KEY_HOLDERS };
const PRIVACY: PrivacyConfig = {
  k: 11,
  identityModel: 'stg_patients',
  identity: { patientId: 'patient_id', firstName: 'first_name', lastName: 'last_name', birthDate: 'birth_date', sex: 'sex', ssn: 'ssn', linkage: LINKAGE },
  keyEnv: 'TSFORM_VAULT_KEY',
  generalizers: {},
  notIdentifiers: [],
};
const PRACTICES = ['p01', 'p02', 'p03', 'p04', 'p05', 'p06', 'p07', 'p08'];

type Identity = { first: string | null; last: string | null; dob: string | null; sex: string | null; ssn: string | null };

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const FIRST = ['William', 'Maria', 'John', 'Aiko', 'Fatima', 'Carlos', 'Olga', 'Kwame', 'Ines', 'Tomas'];
const LAST = ['Hartmann', 'Nguyen', 'Smith', 'Okafor', 'Silva', 'Kowalski', 'Haddad', 'Larsen'];

/** The random history's persons: a base identity each, and their records' current identities per (practice, patient). */
function generator(seed: number) {
  const r = rng(seed);
  const pick = <T,>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const persons: Identity[] = [];
  for (let i = 0; i < 30; i++) {
    const year = 1940 + Math.floor(r() * 60);
    persons.push({
      first: pick(FIRST),
      last: pick(LAST),
      dob: `${year}-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`,
      sex: r() < 0.5 ? 'M' : 'F',
      ssn: r() < 0.6 ? `${100 + Math.floor(r() * 600)}-${10 + Math.floor(r() * 80)}-${1000 + Math.floor(r() * 8000)}` : null,
    });
  }
  // a common identity several records share without being one person: crowded once > MAX_KEY_HOLDERS hold it
  const common: Identity = { first: 'John', last: 'Smith', dob: '1970-01-01', sex: null, ssn: null };
  const variant = (p: Identity): Identity => {
    const v = { ...p };
    const roll = r();
    if (roll < 0.15 && v.first) v.first = v.first.slice(0, 1) + v.first.slice(2, 3) + v.first.slice(1, 2) + v.first.slice(3); // transposed letters
    else if (roll < 0.3) v.ssn = null;
    else if (roll < 0.4 && v.dob) v.dob = v.dob.slice(0, 9) + String((Number(v.dob.slice(9)) + 1) % 10); // one digit off
    else if (roll < 0.45) v.sex = null;
    else if (roll < 0.5 && v.ssn) v.ssn = `${v.ssn.slice(0, 7)}${(Number(v.ssn.slice(7)) + 1) % 10000}`; // another valid SSN: the guard splits
    return v;
  };
  const sparse = (): Identity => ({ first: null, last: null, dob: null, sex: r() < 0.5 ? 'F' : 'M', ssn: null });
  let next = 0;
  const newRecord = (): [string, string, Identity] => {
    const practice = pick(PRACTICES);
    const roll = r();
    const identity = roll < 0.1 ? { ...common } : roll < 0.18 ? sparse() : variant(pick(persons));
    return [practice, `pt${next++}`, identity];
  };
  return { r, pick, persons, variant, newRecord };
}

const rowsOf = (records: Map<string, [string, string, Identity]>) =>
  [...records.values()].map(([practice, patient, i]) => [practice, patient, i.first, i.last, i.dob, i.sex, i.ssn]);

const engines = twoEngines('linkage-reach');

const recordId = (practice: string, patient: string) => JSON.stringify([practice, patient]);
const words = (t: unknown) => (t === null || t === undefined || t === '' ? [] : String(t).split(' '));

describe.each(engines)('re-resolving only what a change reaches, on $name', (engine) => {
  const db = () => engine.adapter();

  it('gives every record the token resolving all records gives, after each of 40 random steps', async () => {
    await db().ensureSchema('staging');
    await db().ensureSchema('vault');
    await db().query('CREATE TABLE staging.stg_patients (practice_id VARCHAR, patient_id VARCHAR, first_name VARCHAR, last_name VARCHAR, birth_date VARCHAR, sex VARCHAR, ssn VARCHAR)');
    const g = generator(17);
    const records = new Map<string, [string, string, Identity]>();
    for (let i = 0; i < 60; i++) {
      const rec = g.newRecord();
      records.set(recordId(rec[0], rec[1]), rec);
    }
    let reference = new Map<string, string>();
    let reresolvedTotal = 0;
    let recordsSeen = 0;
    let crowdedSeen = 0;
    for (let step = 0; step < 40; step++) {
      // change a few records anywhere (their practices are built later), then build one or two practices
      const ids = [...records.keys()];
      for (let c = 0; c < 3; c++) {
        const roll = g.r();
        const id = g.pick(ids);
        const rec = records.get(id);
        if (!rec) continue;
        if (roll < 0.2) records.delete(id);
        else if (roll < 0.35) records.set(id, [rec[0], rec[1], g.variant(g.pick(g.persons))]); // now another person's identity
        else if (roll < 0.55) {
          // a mix-up that bridges two persons: one person's name and birth date, another's SSN and sex
          const [a, b] = [g.pick(g.persons), g.pick(g.persons)];
          records.set(id, [rec[0], rec[1], { first: a.first, last: a.last, dob: a.dob, sex: b.sex, ssn: b.ssn ?? a.ssn }]);
        }
        else if (roll < 0.8) records.set(id, [rec[0], rec[1], g.variant(rec[2])]);
        else {
          const added = g.newRecord();
          records.set(recordId(added[0], added[1]), added);
        }
      }
      await db().query('DELETE FROM staging.stg_patients');
      for (const row of rowsOf(records)) await db().query('INSERT INTO staging.stg_patients VALUES ($1, $2, $3, $4, $5, $6, $7)', row);
      const batch = step % 5 === 4 ? [...PRACTICES] : [g.pick(PRACTICES), g.pick(PRACTICES)];
      const built = await db().transaction((s) => buildVaultTokens(s, TOKENS, IDENTITY, [...new Set(batch)], 'practice_id', PRIVACY, VAULT_KEY));
      if (built.linkage.resolved) reresolvedTotal += built.linkage.reresolved;

      // the definition: every stored record resolved at once, from the previous step's answer
      const stored = await db().query('SELECT tenant, patient_id, match_keys, dob_guard, sex_guard, ssn_guard, sparse FROM vault.linkage_records');
      const all: LinkRecord[] = stored.rows
        .map((r) => ({ id: recordId(String(r.tenant), String(r.patient_id)), keys: words(r.match_keys), dob: words(r.dob_guard), sex: String(r.sex_guard ?? ''), ssn: String(r.ssn_guard ?? ''), sparse: Number(r.sparse) === 1 }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const full = resolvePersons(all, { maxKeyHolders: MAX_KEY_HOLDERS, previous: reference, newToken: (ids, attempt) => newPersonToken(KEY, ids, attempt) });
      reference = full.tokens;
      recordsSeen = all.length;
      crowdedSeen = Math.max(crowdedSeen, full.counts.crowdedKeys);

      const held = await db().query('SELECT practice_id, patient_id, person_token FROM vault.person_tokens');
      const vault = new Map(held.rows.map((r) => [recordId(String(r.practice_id), String(r.patient_id)), String(r.person_token)]));
      const differing = all.filter((rec) => vault.get(rec.id) !== reference.get(rec.id)).map((rec) => rec.id);
      expect({ step, differing }).toEqual({ step, differing: [] });
      if (built.linkage.resolved) {
        expect(built.linkage.records).toBe(all.length);
        expect(built.linkage.persons).toBe(new Set(all.map((rec) => reference.get(rec.id))).size);
      }
    }
    // the history did exercise what matters: a crowded value, and resolutions that read less than everything
    expect(crowdedSeen).toBeGreaterThan(0);
    expect(recordsSeen).toBeGreaterThan(40);
    expect(reresolvedTotal).toBeGreaterThan(0);
  }, 300_000);

  it('a record that bridges two persons reaches the records linked to them by their token only', async () => {
    await db().query('DELETE FROM staging.stg_patients');
    await db().query('DELETE FROM vault.person_tokens');
    await db().query('DELETE FROM vault.linkage_records');
    // A1, A2: one person (name and birth date). B1, B2: another (the same misspelled name);
    // B1 alone carries the SSN. N, new, shares the name with A and the SSN with B1, nothing with B2.
    const rows = [
      ['q1', 'a1', 'William', 'Hartmann', '1968-11-23', 'M', null],
      ['q2', 'a2', 'William', 'Hartmann', '1968-11-23', 'M', null],
      ['q3', 'b1', 'Xilliam', 'Hatrmann', '1968-11-23', 'M', '219-09-9998'],
      ['q4', 'b2', 'Xilliam', 'Hatrmann', '1968-11-23', 'M', null],
    ];
    for (const r of rows) await db().query('INSERT INTO staging.stg_patients VALUES ($1, $2, $3, $4, $5, $6, $7)', r);
    await db().transaction((s) => buildVaultTokens(s, TOKENS, IDENTITY, ['q1', 'q2', 'q3', 'q4'], 'practice_id', PRIVACY, VAULT_KEY));
    const tokens = async () => new Map((await db().query('SELECT patient_id, person_token FROM vault.person_tokens')).rows.map((r) => [String(r.patient_id), String(r.person_token)]));
    const before = await tokens();
    expect(before.get('a1')).toBe(before.get('a2'));
    expect(before.get('b1')).toBe(before.get('b2'));
    expect(before.get('a1')).not.toBe(before.get('b1'));

    await db().query("INSERT INTO staging.stg_patients VALUES ('q5', 'n1', 'William', 'Hartmann', '1968-11-23', 'M', '219-09-9998')");
    const { linkage } = await db().transaction((s) => buildVaultTokens(s, TOKENS, IDENTITY, ['q5'], 'practice_id', PRIVACY, VAULT_KEY));
    const after = await tokens();
    // one person now, b2 included although it shares no key with n1
    expect(new Set(['a1', 'a2', 'b1', 'b2', 'n1'].map((p) => after.get(p))).size).toBe(1);
    expect(linkage).toMatchObject({ records: 5, persons: 1, merges: 1, reresolved: 5 });
  }, 120_000);

  it('a vault made before the key table existed gets it filled from its records on the next build', async () => {
    await db().query('DROP TABLE vault.linkage_keys');
    await db().query("INSERT INTO staging.stg_patients VALUES ('q6', 'n2', 'William', 'Hartmann', '1968-11-23', 'M', null)");
    await db().transaction((s) => buildVaultTokens(s, TOKENS, IDENTITY, ['q6'], 'practice_id', PRIVACY, VAULT_KEY));
    const tokens = new Map((await db().query('SELECT patient_id, person_token FROM vault.person_tokens')).rows.map((r) => [String(r.patient_id), String(r.person_token)]));
    expect(tokens.get('n2')).toBe(tokens.get('a1'));
    const stored = await db().query('SELECT match_keys FROM vault.linkage_records WHERE sparse = 0');
    const expected = stored.rows.reduce((n, r) => n + words(r.match_keys).length, 0);
    expect(Number((await db().query('SELECT count(*) AS n FROM vault.linkage_keys')).rows[0]!.n)).toBe(expected);
  }, 120_000);
});
