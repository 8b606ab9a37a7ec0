import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LINKAGE, type LinkageConfig } from '../../src/project/linkage-config.ts';
import { linkageConfigFingerprint, linkRecordOf, validSsn } from '../../src/security/match-keys.ts';
import { formalGivenNames, soundex } from '../../src/security/name-phonetics.ts';
import type { IdentityFields } from '../../src/security/pseudonymize.ts';

/**
 * Match keys (issue 17): normalization per field, SSN validity, and that keys are keyed hashes
 * only. Identities are synthetic, in Synthea's style; assertions compare key names and booleans,
 * so a failure prints no identity.
 */

const KEY = createHash('sha256').update('tsform match-key test key').digest();
const OTHER = createHash('sha256').update('tsform match-key other key').digest();
const base: IdentityFields = { firstName: 'Robert', lastName: "O'Brien", birthDate: '1971-03-09', sex: 'M', ssn: '123-45-6788' };

/** Names of the match keys two identities share. */
function shared(a: IdentityFields, b: IdentityFields, config: LinkageConfig = DEFAULT_LINKAGE): string[] {
  const ka = linkRecordOf(KEY, 'a', a, config).keys;
  const kb = new Set(linkRecordOf(KEY, 'b', b, config).keys);
  return [...new Set(ka.filter((k) => kb.has(k)).map((k) => k.split(":")[0]!))].sort();
}

describe('soundex', () => {
  it.each([
    ['Robert', 'R163'], ['Rupert', 'R163'], ['Ashcraft', 'A261'], ['Tymczak', 'T522'], ['Pfister', 'P236'], ['Honeyman', 'H555'], ['Lee', 'L000'], ['', ''],
  ])('%s → %s', (name, code) => expect(soundex(name)).toBe(code));
});

describe('normalization', () => {
  it('case, accents, punctuation and spacing do not change any key', () => {
    const retyped = { ...base, firstName: '  RÓBERT ', lastName: 'obrien', sex: 'male', ssn: '123456788' };
    expect(shared(base, retyped)).toEqual([...DEFAULT_LINKAGE.matchKeys].sort());
  });

  it('a nickname meets its formal name, and keeps its typed form', () => {
    expect(formalGivenNames('bob')).toEqual(['bob', 'robert']);
    expect(formalGivenNames('bill12')).toEqual(['bill12', 'william12']);
    expect(shared(base, { ...base, firstName: 'Bob', ssn: null })).toContain('name_dob');
  });

  it('names that differ only in their digits (Synthea style) share no key', () => {
    const a = { ...base, firstName: 'Robert12', lastName: 'Brien34', ssn: null };
    expect(shared(a, { ...a, firstName: 'Robert56', lastName: 'Brien78' })).toEqual([]);
  });

  it('SSN validity: never-issued numbers and placeholders count as missing', () => {
    for (const bad of ['000-12-3456', '666-12-3456', '123-00-4567', '123-45-0000', '111-11-1111', '123456789', '12345678', '', null]) {
      expect(validSsn(bad, 'invalid'), String(bad === null ? 'null' : bad.length)).toBe('');
    }
    expect(validSsn('912-34-5678', 'invalid')).toBe('');
    expect(validSsn('912-34-5678', 'valid')).toBe('912345678');
    expect(validSsn('123-45-6788', 'invalid')).toBe('123456788');
    // an invalid SSN makes no SSN key and no SSN guard
    const rec = linkRecordOf(KEY, 'x', { ...base, ssn: '000-12-3456' }, DEFAULT_LINKAGE);
    expect(rec.keys.some((k) => k.startsWith('ssn_'))).toBe(false);
    expect(rec.ssn).toBe('');
  });

  it('no name and no birth date, or no birth date at all: sparse, without keys', () => {
    expect(linkRecordOf(KEY, 'x', { ssn: '123-45-6788', sex: 'F' }, DEFAULT_LINKAGE)).toMatchObject({ sparse: true, keys: [] });
    expect(linkRecordOf(KEY, 'x', { ...base, birthDate: '1971-02-30' }, DEFAULT_LINKAGE)).toMatchObject({ sparse: true, keys: [] });
    expect(linkRecordOf(KEY, 'x', { ...base, firstName: null, lastName: '' }, DEFAULT_LINKAGE).sparse).toBe(true);
  });
});

describe('keys are keyed hashes', () => {
  it('hold no identity text, and differ under another key', () => {
    const rec = linkRecordOf(KEY, 'x', base, DEFAULT_LINKAGE);
    const text = JSON.stringify(rec).toLowerCase();
    for (const part of ['robert', 'brien', '1971', '0309', '123456788']) expect(text.includes(part), 'identity text in a key').toBe(false);
    for (const k of rec.keys) expect(k).toMatch(/^[a-z_]+:[0-9a-f]{16}$/);
    const other = new Set(linkRecordOf(OTHER, 'x', base, DEFAULT_LINKAGE).keys);
    expect(rec.keys.filter((k) => other.has(k))).toEqual([]);
  });

  it('the config fingerprint changes with the keys, the tolerance and the SSN rule, not with the order of keys', () => {
    const fp = linkageConfigFingerprint(DEFAULT_LINKAGE);
    expect(linkageConfigFingerprint({ ...DEFAULT_LINKAGE, matchKeys: [...DEFAULT_LINKAGE.matchKeys].reverse() })).toBe(fp);
    expect(linkageConfigFingerprint({ ...DEFAULT_LINKAGE, matchKeys: ['ssn_dob'] })).not.toBe(fp);
    expect(linkageConfigFingerprint({ ...DEFAULT_LINKAGE, birthDateTolerance: 'exact' })).not.toBe(fp);
    expect(linkageConfigFingerprint({ ...DEFAULT_LINKAGE, ssnArea9xx: 'valid' })).not.toBe(fp);
  });
});

describe('hmacSha256Hex', () => {
  it('equals createHmac for short, long and non-ASCII messages', async () => {
    const { createHmac } = await import('node:crypto');
    const { hmacSha256Hex } = await import('../../src/security/match-keys.ts');
    for (const m of ['', 'a', 'x'.repeat(200), 'Müller|Ørsted|1971-03-09']) expect(hmacSha256Hex(KEY, m)).toBe(createHmac('sha256', KEY).update(m, 'utf8').digest('hex'));
  });
});
