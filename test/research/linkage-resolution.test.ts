import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LINKAGE, type LinkageConfig } from '../../src/project/linkage-config.ts';
import { linkRecordOf } from '../../src/security/match-keys.ts';
import { newPersonToken, type IdentityFields } from '../../src/security/pseudonymize.ts';
import { resolvePersons, type Resolution } from '../../src/security/resolve-persons.ts';
import { PERTURBATIONS, PROFILES, perturb } from '../../scripts/lib/linkage-profiles.ts';
import { projectLinkage, readDemoRecords, runProfile } from '../../scripts/linkage.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { prng, testSeed } from '../support/prng.ts';

/**
 * Resolution of records into persons (issue 17), the pure function the vault runs. Identities
 * are synthetic; assertions compare token counts and booleans, never print an identity.
 */

const KEY = createHash('sha256').update('tsform linkage resolution test key').digest();
const WITH_WEAK: LinkageConfig = { ...DEFAULT_LINKAGE, matchKeys: [...DEFAULT_LINKAGE.matchKeys, 'name_year', 'name_monthday'] };
const william: IdentityFields = { firstName: 'William', lastName: 'Hartmann', birthDate: '1968-11-23', sex: 'M', ssn: '123-45-6788' };

function resolve(identities: readonly IdentityFields[], opts: { previous?: Map<string, string>; config?: LinkageConfig } = {}): Resolution {
  const config = opts.config ?? DEFAULT_LINKAGE;
  const records = identities.map((p, i) => linkRecordOf(KEY, `r${i}`, p, config));
  return resolvePersons(records, { maxKeyHolders: config.maxKeyHolders, previous: opts.previous ?? new Map(), newToken: (ids, attempt) => newPersonToken(KEY, ids, attempt) });
}
const distinct = (r: Resolution, ids: readonly string[]) => new Set(ids.map((id) => r.tokens.get(id))).size;

describe('each perturbation kind links', () => {
  const seed = testSeed(1717);
  for (const kind of PERTURBATIONS) {
    it(`${kind} (seed ${seed}): 30 draws, one person each`, () => {
      const rand = prng(seed);
      for (let n = 0; n < 30; n++) {
        const changed = perturb(william, kind, rand);
        expect(changed, 'perturbation applies').toBeDefined();
        expect(distinct(resolve([william, changed!]), ['r0', 'r1']), `draw ${n}`).toBe(1);
      }
    });
  }

  it('name perturbations link without any SSN; a mistyped birth date without SSN only with name_year/name_monthday', () => {
    const rand = prng(testSeed(99));
    const noSsn = { ...william, ssn: null };
    for (const kind of ['transpose', 'omit', 'nickname', 'swap_names'] as const) {
      for (let n = 0; n < 20; n++) expect(distinct(resolve([noSsn, perturb(noSsn, kind, rand)!]), ['r0', 'r1']), kind).toBe(1);
    }
    const dob = perturb(noSsn, 'dob_digit', rand)!;
    expect(distinct(resolve([noSsn, dob]), ['r0', 'r1'])).toBe(2);
    expect(distinct(resolve([noSsn, dob], { config: WITH_WEAK }), ['r0', 'r1'])).toBe(1);
  });
});

describe('hard negatives stay apart', () => {
  it('a namesake born the same year, on another day, with another SSN', () => {
    const namesake = { ...william, birthDate: '1968-04-02', ssn: '321-54-8766' };
    expect(distinct(resolve([william, namesake], { config: WITH_WEAK }), ['r0', 'r1'])).toBe(2);
  });

  it('a namesake born one digit apart is told apart by the SSN (the guard splits the candidates, counted)', () => {
    const namesake = { ...william, birthDate: '1968-11-28', ssn: '321-54-8766' };
    const r = resolve([william, namesake], { config: WITH_WEAK });
    expect(distinct(r, ['r0', 'r1'])).toBe(2);
    expect(r.counts.splits).toBe(1);
  });

  it('twins: same family name and birth date, given names with one initial, same sex, own SSNs', () => {
    const twins = [{ ...william, firstName: 'John', ssn: '223-45-6781' }, { ...william, firstName: 'James', ssn: '223-45-6782' }];
    expect(distinct(resolve(twins, { config: WITH_WEAK }), ['r0', 'r1'])).toBe(2);
    const noSsn = twins.map((t) => ({ ...t, ssn: null }));
    expect(distinct(resolve(noSsn, { config: WITH_WEAK }), ['r0', 'r1'])).toBe(2);
  });

  it('twins Alexander and Alexandra: "Alex" joins the one of the same sex only', () => {
    const he = { ...william, firstName: 'Alexander', ssn: null };
    const she = { ...william, firstName: 'Alexandra', sex: 'F', ssn: null };
    const alex = { ...he, firstName: 'Alex' };
    const r = resolve([he, she, alex]);
    expect(r.tokens.get('r2')).toBe(r.tokens.get('r0'));
    expect(r.tokens.get('r1')).not.toBe(r.tokens.get('r0'));
  });
});

describe('tokens stay', () => {
  const p = { ...william, ssn: null };
  const q = { ...william, firstName: 'Edward', lastName: 'Okafor', birthDate: '1980-01-15', ssn: null };

  it('a record joining a person does not change its token', () => {
    const first = resolve([p, p]);
    const previous = new Map(first.tokens);
    const again = resolve([p, p, { ...p, firstName: 'Bill' }], { previous });
    expect(new Set(again.tokens.values())).toEqual(new Set([first.tokens.get('r0')]));
    expect(again.counts).toMatchObject({ merges: 0, retokenized: 0, newPersons: 0 });
  });

  it('on a merge the larger side keeps its token; the smaller side is counted as merged', () => {
    // r0, r1: one person (two records, token A); r2: a typo made it another (token B)
    const typo = { ...p, lastName: 'Hatrmann', firstName: 'Xilliam' };
    const before = resolve([p, p, typo]);
    expect(distinct(before, ['r0', 'r1', 'r2'])).toBe(2);
    const larger = before.tokens.get('r0')!;
    // the typo corrected in the EHR: re-keyed, it heals the split
    const after = resolve([p, p, p], { previous: new Map(before.tokens) });
    expect(new Set(after.tokens.values())).toEqual(new Set([larger]));
    expect(after.counts).toMatchObject({ merges: 1, retokenized: 1 });
  });

  it('a person whose records no longer agree is split; the larger part keeps the token', () => {
    const before = resolve([p, p, p]);
    const token = before.tokens.get('r0')!;
    const after = resolve([p, p, q], { previous: new Map(before.tokens) });
    expect(after.tokens.get('r0')).toBe(token);
    expect(after.tokens.get('r1')).toBe(token);
    expect(after.tokens.get('r2')).not.toBe(token);
    expect(after.counts.splits).toBe(1);
  });
});

describe('bad input', () => {
  it('near-empty identities are persons of their own, never merged, and counted', () => {
    const empty: IdentityFields = { firstName: null, lastName: null, birthDate: null, sex: 'F', ssn: '123-45-6788' };
    const noDob = { ...william, birthDate: null };
    const r = resolve([empty, empty, noDob, noDob, william]);
    expect(distinct(r, ['r0', 'r1', 'r2', 'r3', 'r4'])).toBe(5);
    expect(r.counts.sparse).toBe(4);
  });

  it('a key value held by more records than max_key_holders links none of them', () => {
    const many = Array.from({ length: 60 }, () => ({ firstName: 'Unknown', lastName: 'Unknown', birthDate: '1900-01-01', sex: null, ssn: null }));
    const r = resolve(many);
    expect(r.counts.persons).toBe(60);
    expect(r.counts.crowdedKeys).toBeGreaterThan(0);
  });

  it('a part of the records links through a value only when all records do not hold it too often (the vault re-resolves parts)', () => {
    const rec = (id: string, keys: string[]) => ({ id, keys, dob: [], sex: '', ssn: '', sparse: false });
    const part = [rec('x', ['common', 'kx']), rec('y', ['common', 'ky'])];
    const opts = { maxKeyHolders: 5, previous: new Map<string, string>(), newToken: (ids: readonly string[]) => ids.join('+') };
    // within the part the value has two holders: linked
    expect(resolvePersons(part, opts).counts.persons).toBe(1);
    // crowded among all records: not linked, and counted
    const r = resolvePersons(part, { ...opts, crowded: new Set(['common']) });
    expect(r.counts.persons).toBe(2);
    expect(r.counts.crowdedKeys).toBe(1);
  });
});

describe('two persons never share a token', () => {
  const rec = (id: string, keys: string[]) => ({ id, keys, dob: [], sex: '', ssn: '', sparse: false });
  const newToken = (ids: readonly string[], attempt: number) => newPersonToken(KEY, ids, attempt);

  it('split, merged and split again: the second split does not mint the token the first split minted and the other side kept', () => {
    // a and b linked through x; x leaves: b is minted newToken([b]). x comes back: the merged
    // person keeps that token. x leaves again: a keeps it, and b's new token must be another one.
    const [a, x, b] = [rec('a', ['k1']), rec('x', ['k1', 'k2']), rec('b', ['k2'])];
    const first = resolvePersons([a, x, b], { maxKeyHolders: 5, previous: new Map(), newToken });
    const split = resolvePersons([a, b], { maxKeyHolders: 5, previous: new Map([...first.tokens].filter(([id]) => id !== 'x')), newToken });
    const merged = resolvePersons([a, x, b], { maxKeyHolders: 5, previous: split.tokens, newToken });
    expect(new Set(merged.tokens.values()).size).toBe(1);
    const again = resolvePersons([a, b], { maxKeyHolders: 5, previous: new Map([...merged.tokens].filter(([id]) => id !== 'x')), newToken });
    expect(again.tokens.get('a')).not.toBe(again.tokens.get('b'));
  });

  it('a token held outside the records resolved (`taken`) is not minted for a new person', () => {
    const lone = rec('c', ['k9']);
    const usual = resolvePersons([lone], { maxKeyHolders: 5, previous: new Map(), newToken }).tokens.get('c')!;
    const r = resolvePersons([lone], { maxKeyHolders: 5, previous: new Map(), newToken, taken: new Set([usual]) });
    expect(r.tokens.get('c')).not.toBe(usual);
  });
});

describe('npm run linkage figures on the repository demo data (no ../shared needed)', () => {
  const records = readDemoRecords(join(REPO_ROOT, 'data/ehr/patients.csv.gz'));
  const config = projectLinkage(join(REPO_ROOT, 'tsform.yml'));
  const target: Record<string, number> = { none: 1, 'missing-ssn': 0.99, typo: 0.99, everything: 0.95 };
  for (const profile of PROFILES) {
    it(`${profile}: recall ≥ ${target[profile]}, no false merge (hard negatives included)`, () => {
      const { figures } = runProfile(records, profile, config);
      expect(figures.persons_multi_practice).toBeGreaterThanOrEqual(100);
      expect(figures.recall).toBeGreaterThanOrEqual(target[profile]!);
      expect(figures.false_merges).toBe(0);
    });
  }
});
