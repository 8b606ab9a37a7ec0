import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  dateShiftDays,
  generateKey,
  keyFingerprint,
  KEY_BYTES,
  normalizeIdentity,
  parseKey,
  personToken,
  practiceToken,
  PseudonymKeyError,
  pseudonymizeRecord,
  recordFallbackIdentity,
  type IdentityFields,
} from '../../src/security/pseudonymize.ts';

/** Fixed keys, derived so that they are not placeholders (all bytes equal). */
const keyA = createHash('sha256').update('tsform test key A').digest();
const keyB = createHash('sha256').update('tsform test key B').digest();

// Synthetic identities in Synthea's style (names with digits, 999- SSNs): no real person.
const base: IdentityFields = { firstName: 'Ana761', lastName: 'Müller512', birthDate: '1971-03-09', sex: 'F', ssn: '999-12-3456' };

const tokenOf = (p: IdentityFields, key = keyA): string => {
  const identity = normalizeIdentity(p);
  if (identity === undefined) throw new Error('identity unexpectedly unlinkable');
  return personToken(key, identity);
};

describe('normalizeIdentity', () => {
  it.each<[string, IdentityFields]>([
    ['case', { ...base, firstName: 'ANA761', lastName: 'müLLER512' }],
    ['accents stripped', { ...base, lastName: 'Muller512' }],
    ['decomposed accents (NFD input)', { ...base, lastName: 'Mu\u0308ller512' }],
    ['extra and surrounding whitespace', { ...base, firstName: '  Ana761 ', lastName: 'Müller512\t' }],
    ['punctuation', { ...base, firstName: 'Ana-761', lastName: "Mül'ler.512" }],
    ['whitespace inside a name', { ...base, lastName: 'Mül ler  512' }],
    ['SSN without dashes', { ...base, ssn: '999123456' }],
    ['SSN with spaces', { ...base, ssn: ' 999 12 3456 ' }],
    ['sex spelled out', { ...base, sex: 'female' }],
    ['sex lower case', { ...base, sex: 'f' }],
    ['birth date as an ISO timestamp', { ...base, birthDate: '1971-03-09T00:00:00Z' }],
    ['full-width digits (NFKD)', { ...base, firstName: 'Ana７６１' }],
  ])('treats %s as the same identity', (_what, variant) => {
    expect(normalizeIdentity(variant)).toBe(normalizeIdentity(base));
    expect(tokenOf(variant)).toBe(tokenOf(base));
  });

  it.each<[string, IdentityFields]>([
    ['a different birth date', { ...base, birthDate: '1971-03-10' }],
    ['a different sex', { ...base, sex: 'M' }],
    ['a different first name', { ...base, firstName: 'Ana762' }],
    ['different digits in the last name', { ...base, lastName: 'Müller51' }],
    ['a different SSN', { ...base, ssn: '999-12-3457' }],
    ['no SSN (the SSN is part of the identity when present)', { ...base, ssn: null }],
    ['first and last name swapped', { ...base, firstName: base.lastName, lastName: base.firstName }],
  ])('tells apart %s', (_what, variant) => {
    expect(normalizeIdentity(variant)).not.toBe(normalizeIdentity(base));
    expect(tokenOf(variant)).not.toBe(tokenOf(base));
  });

  it('keeps the digits of Synthea names', () => {
    expect(normalizeIdentity({ ...base, firstName: 'Walker122' })).not.toBe(normalizeIdentity({ ...base, firstName: 'Walker' }));
  });

  it('never lets one field spill into the next', () => {
    const a = normalizeIdentity({ ...base, firstName: 'Ab', lastName: 'C' });
    const b = normalizeIdentity({ ...base, firstName: 'A', lastName: 'Bc' });
    expect(a).not.toBe(b);
  });

  it.each<[string, IdentityFields]>([
    ['no first name', { ...base, firstName: null }],
    ['a blank last name', { ...base, lastName: '  ' }],
    ['a last name of punctuation only', { ...base, lastName: "'-." }],
    ['no birth date', { ...base, birthDate: undefined }],
    ['a birth date in another format', { ...base, birthDate: '03/09/1971' }],
    ['an impossible birth date', { ...base, birthDate: '1971-02-30' }],
  ])('cannot link a record with %s', (_what, variant) => {
    expect(normalizeIdentity(variant)).toBeUndefined();
  });

  it.each(['12345', '999-12-34567', '000-12-3456', '666-12-3456', '999-00-3456', '999-12-0000', '123-45-6789', ''])(
    'omits the implausible SSN %j (same identity as no SSN)',
    (ssn) => {
      expect(normalizeIdentity({ ...base, ssn })).toBe(normalizeIdentity({ ...base, ssn: null }));
    },
  );

  it('gives an unlinkable record a fallback identity per practice and patient, distinct from any person identity', () => {
    const a = recordFallbackIdentity('p_aaaa', 'patient-1');
    expect(a).toBe(recordFallbackIdentity('p_aaaa', 'patient-1'));
    expect(recordFallbackIdentity('p_bbbb', 'patient-1')).not.toBe(a);
    expect(recordFallbackIdentity('p_aaaa', 'patient-2')).not.toBe(a);
    // ids that contain the separator still cannot collide
    expect(recordFallbackIdentity('a|b', 'c')).not.toBe(recordFallbackIdentity('a', 'b|c'));
    expect(a.split('|')[0]).not.toBe(normalizeIdentity(base)!.split('|')[0]);
    expect(() => recordFallbackIdentity('', 'x')).toThrow(TypeError);
  });
});

describe('tokens', () => {
  const identity = normalizeIdentity(base)!;

  it('are deterministic given the key', () => {
    expect(personToken(keyA, identity)).toBe(personToken(Buffer.from(keyA), identity));
    expect(practiceToken(keyA, 'p_0123456789')).toBe(practiceToken(keyA, 'p_0123456789'));
  });

  it('have a fixed shape and carry no identity text', () => {
    const token = personToken(keyA, identity);
    expect(token).toMatch(/^pt_[0-9a-f]{64}$/);
    expect(practiceToken(keyA, 'p_0123456789')).toMatch(/^pr_[0-9a-f]{64}$/);
    for (const part of identity.split('|').filter((p) => p.length >= 3)) expect(token).not.toContain(part);
    expect(practiceToken(keyA, 'p_0123456789')).not.toContain('0123456789');
  });

  it('differ between keys', () => {
    expect(personToken(keyB, identity)).not.toBe(personToken(keyA, identity));
    expect(practiceToken(keyB, 'p_0123456789')).not.toBe(practiceToken(keyA, 'p_0123456789'));
  });

  it('keep purposes apart: the person token of a text is not the practice token of the same text', () => {
    for (const text of [identity, 'p_0123456789']) {
      expect(personToken(keyA, text).slice(3)).not.toBe(practiceToken(keyA, text).slice(3));
    }
  });

  it('are not a plain HMAC of the identity (a domain label is mixed in)', async () => {
    const { createHmac } = await import('node:crypto');
    const plain = createHmac('sha256', keyA).update(identity).digest('hex');
    expect(personToken(keyA, identity).slice(3)).not.toBe(plain);
  });

  it('reject an empty identity or practice id', () => {
    expect(() => personToken(keyA, '')).toThrow(TypeError);
    expect(() => practiceToken(keyA, '')).toThrow(TypeError);
  });
});

describe('pseudonymizeRecord', () => {
  it('links one person across practices and falls back per record when it cannot', () => {
    const atA = pseudonymizeRecord(keyA, 'p_aaaa', 'patient-1', base);
    const atB = pseudonymizeRecord(keyA, 'p_bbbb', 'patient-9', { ...base, firstName: 'ANA761', ssn: '999123456' });
    expect(atA).toEqual({ personToken: tokenOf(base), dateShiftDays: dateShiftDays(keyA, tokenOf(base)), linked: true });
    expect(atB).toEqual(atA);

    const noBirth = { ...base, birthDate: null };
    const lostA = pseudonymizeRecord(keyA, 'p_aaaa', 'patient-1', noBirth);
    const lostB = pseudonymizeRecord(keyA, 'p_bbbb', 'patient-9', noBirth);
    expect(lostA.linked).toBe(false);
    expect(lostA.personToken).toBe(personToken(keyA, recordFallbackIdentity('p_aaaa', 'patient-1')));
    expect(lostB.personToken).not.toBe(lostA.personToken);
  });
});

describe('dateShiftDays', () => {
  it('is stable for a person and independent of the practice', () => {
    const token = tokenOf(base);
    // the same person typed differently at another practice gets the same token, hence the same shift
    expect(dateShiftDays(keyA, tokenOf({ ...base, lastName: 'MULLER512', ssn: '999123456' }))).toBe(dateShiftDays(keyA, token));
    expect(dateShiftDays(keyA, token)).toBe(dateShiftDays(keyA, token));
  });

  it('stays in [-180, 180] without 0, and uses the whole range', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const shift = dateShiftDays(keyA, personToken(keyA, `synthetic-${i}`));
      expect(Number.isInteger(shift)).toBe(true);
      expect(shift).not.toBe(0);
      expect(Math.abs(shift)).toBeLessThanOrEqual(180);
      seen.add(shift);
    }
    expect(seen.size).toBe(360);
  });

  it('depends on the key', () => {
    let differ = 0;
    for (let i = 0; i < 50; i++) {
      const token = personToken(keyA, `synthetic-${i}`);
      if (dateShiftDays(keyA, token) !== dateShiftDays(keyB, token)) differ++;
    }
    expect(differ).toBeGreaterThan(40);
  });

  it('accepts person tokens only', () => {
    expect(() => dateShiftDays(keyA, normalizeIdentity(base)!)).toThrow(/person token/);
    expect(() => dateShiftDays(keyA, practiceToken(keyA, 'p_x'))).toThrow(/person token/);
  });
});

describe('keys', () => {
  it('generateKey makes 32 random bytes', () => {
    const a = generateKey();
    expect(a.length).toBe(KEY_BYTES);
    expect(generateKey().equals(a)).toBe(false);
  });

  it('keyFingerprint is short, stable and reveals nothing of the key', () => {
    const fp = keyFingerprint(keyA);
    expect(fp).toMatch(/^kf_[0-9a-f]{16}$/);
    expect(keyFingerprint(Buffer.from(keyA))).toBe(fp);
    expect(keyFingerprint(keyB)).not.toBe(fp);
    // 16 hex digits of a hash: no run of the key's own text shows up in it
    const digits = fp.slice(3);
    const keyTexts = [keyA.toString('hex'), keyA.toString('base64')];
    for (let i = 0; i + 6 <= digits.length; i++) {
      for (const text of keyTexts) expect(text).not.toContain(digits.slice(i, i + 6));
    }
    // not the fingerprint of a token either: keys and tokens are different hashes
    expect(personToken(keyA, 'x')).not.toContain(fp.slice(3));
  });

  it('parseKey reads hex and base64 (padded, unpadded, url-safe) of 32 bytes', () => {
    expect(parseKey(keyA.toString('hex')).equals(keyA)).toBe(true);
    expect(parseKey(keyA.toString('hex').toUpperCase()).equals(keyA)).toBe(true);
    expect(parseKey(`  ${keyA.toString('base64')}\n`).equals(keyA)).toBe(true);
    expect(parseKey(keyA.toString('base64').replace(/=+$/, '')).equals(keyA)).toBe(true);
    expect(parseKey(keyA.toString('base64url')).equals(keyA)).toBe(true);
  });

  it.each<[string, string, RegExp]>([
    ['empty', '   ', /is empty/],
    ['31 bytes of hex', 'ab'.repeat(31).replace(/^ab/, 'cd'), /must be 32 bytes; it decodes \(as hex\) to 31 bytes/],
    ['64 bytes of hex', createHash('sha512').update('k').digest('hex'), /as hex\) to 64 bytes/],
    ['an odd number of hex digits', keyA.toString('hex').slice(1), /odd number of digits \(63\)/],
    ['16 bytes of base64', createHash('md5').update('k').digest('base64'), /as base64\) to 16 bytes/],
    ['other characters', 'not a key!', /neither/],
    ['a repeated byte', '00'.repeat(32), /repeated/],
  ])('parseKey rejects %s with a clear error that does not echo the key', (_what, text, message) => {
    let caught: unknown;
    try {
      parseKey(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PseudonymKeyError);
    expect((caught as Error).message).toMatch(message);
    if (text.trim().length > 8) expect((caught as Error).message).not.toContain(text.trim());
  });

  it('token functions refuse a key of the wrong length', () => {
    expect(() => personToken(Buffer.alloc(16, 7), 'x')).toThrow(PseudonymKeyError);
    expect(() => keyFingerprint(Buffer.alloc(32))).toThrow(/repeated/);
  });
});
