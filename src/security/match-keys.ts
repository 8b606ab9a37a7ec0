/**
 * Match keys and guard values of one patient record (issue 17). Pure: the key is passed in.
 *
 * A record is reduced, inside the vault, to keyed HMACs only: several match keys (two records
 * sharing one are candidates for one person) and guard values (birth date, sex, SSN) that let the
 * resolution check that candidates agree without holding the values. Nothing here is stored or
 * returned in clear; the normalized fields live only inside `linkRecordOf`.
 */
import { createHash } from 'node:crypto';
import type { LinkageConfig, MatchKeyName } from '../project/linkage-config.ts';
import { hmacSha256Hex } from './hmac.ts';
import { formalGivenNames, sortedCharacters, soundex } from './name-phonetics.ts';
import { normalizeBirthDate, normalizeName, normalizeSex, type IdentityFields } from './pseudonymize.ts';

/** One record as the resolution sees it: an id and hashes. */
export interface LinkRecord {
  /** Unique per record (the vault uses JSON of [practice, patient]). */
  id: string;
  /** `name:hash` values; equal values at two records make them candidates. */
  keys: string[];
  /** Hashes of the birth date: [exact, then one per digit position with that digit masked]; [] when absent. */
  dob: string[];
  /** Hash of the sex; '' when absent. */
  sex: string;
  /** Hash of a valid SSN; '' when absent or invalid. */
  ssn: string;
  /** Too little identity to link (no birth date, or no name at all): a person of its own. */
  sparse: boolean;
}

const DOMAIN = { key: 'tsform/match-key/v1', guard: 'tsform/link-guard/v1', digest: 'tsform/link-identity/v1' } as const;
// 64 bits: equality of a key between two of a million records is a collision at ~2^-25 per pair
// set, far below the error rate of the identities themselves; halves the vault's storage.
const HASH_HEX = 16;

/** HMAC-SHA256 under `key`, in hex (hmac.ts; re-exported for the callers and tests that import it from here). */
export { hmacSha256Hex };

function hmac(key: Buffer, domain: string, message: string): string {
  return hmacSha256Hex(key, `${domain}\u0000${message}`).slice(0, HASH_HEX);
}

/**
 * Nine digits, or '' when absent or never issued as an SSN: area 000, 666 (and 9xx unless the
 * config keeps it), group 00, serial 0000, one digit repeated, or the placeholder 123456789.
 */
export function validSsn(value: string | null | undefined, area9xx: LinkageConfig['ssnArea9xx']): string {
  if (value === null || value === undefined) return '';
  const digits = value.replace(/\D/g, '');
  if (digits.length !== 9) return '';
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || (area9xx === 'invalid' && area.startsWith('9'))) return '';
  if (digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return '';
  if (/^(\d)\1{8}$/.test(digits) || digits === '123456789') return '';
  return digits;
}

interface Normalized {
  given: string;
  family: string;
  formalGiven: readonly string[];
  dob: string | undefined;
  sex: string;
  ssn: string;
}

function normalize(fields: IdentityFields, config: LinkageConfig): Normalized {
  const given = normalizeName(fields.firstName);
  return {
    given,
    family: normalizeName(fields.lastName),
    formalGiven: given === '' ? [] : formalGivenNames(given),
    dob: normalizeBirthDate(fields.birthDate),
    sex: normalizeSex(fields.sex),
    ssn: validSsn(fields.ssn, config.ssnArea9xx),
  };
}

/**
 * The text and every text with one letter deleted (the separator and digits are kept: in names
 * made mostly of digits, as synthetic ones are, one deleted digit made different persons meet).
 */
function deletionNeighbourhood(text: string): string[] {
  const out = new Set([text]);
  for (let i = 0; i < text.length; i++) if (text[i] !== '|' && !/\d/.test(text[i]!)) out.add(text.slice(0, i) + text.slice(i + 1));
  return [...out];
}

/**
 * The letters of both names sorted, then their digit runs as a sorted pair: the same for letters
 * transposed or given and family name swapped, while digits (Synthea's suffixes) keep their order.
 */
function lettersKey(given: string, family: string): string {
  const digits = [given, family].map((n) => n.replace(/\D/g, '')).sort();
  return `${sortedCharacters((given + family).replace(/\d/g, ''))}|${digits.join('|')}`;
}

/**
 * Soundex of the letters with the name's trailing digits kept: digits are not sounds, but where a
 * system writes them (Synthea: "Sporer811") they tell persons apart, and a code without them would
 * make every such name sound alike.
 */
function phonetic(name: string): string {
  const code = soundex(name);
  return code === '' ? '' : code + (/\d*$/.exec(name)?.[0] ?? '');
}

/** The clear values of one key kind (several when a nickname stands for several names); [] when a field is missing. */
function keyValues(name: MatchKeyName, n: Normalized): string[] {
  const dob = n.dob;
  if (dob === undefined) return [];
  const names = <T>(f: (given: string) => T): T[] => (n.family === '' ? [] : n.formalGiven.map(f));
  switch (name) {
    case 'ssn_dob':
      return n.ssn === '' ? [] : [`${n.ssn}|${dob}`];
    case 'ssn_given':
      return n.ssn === '' ? [] : n.formalGiven.map((g) => `${n.ssn}|${phonetic(g)}`).filter((v) => !v.endsWith('|'));
    case 'name_dob':
      return names((g) => `${g}|${n.family}|${dob}`);
    case 'phonetic_dob':
      return names((g) => `${phonetic(n.family)}|${phonetic(g)}|${dob}`).filter((v) => !v.startsWith('|') && !v.includes('||'));
    case 'letters_dob':
      return names((g) => `${lettersKey(g, n.family)}|${dob}`);
    case 'name_edit_dob':
      return names((g) => deletionNeighbourhood(`${g}|${n.family}`).map((v) => `${v}|${dob}`)).flat();
    case 'name_year':
      return n.sex === '' ? [] : names((g) => `${g}|${n.family}|${n.sex}|${dob.slice(0, 4)}`);
    case 'name_monthday':
      return n.sex === '' ? [] : names((g) => `${g}|${n.family}|${n.sex}|${dob.slice(5)}`);
    default: {
      const never: never = name;
      throw new Error(`unknown match key ${JSON.stringify(never)}`);
    }
  }
}

/** Match keys and guard hashes of one record. */
export function linkRecordOf(key: Buffer, id: string, fields: IdentityFields, config: LinkageConfig): LinkRecord {
  const n = normalize(fields, config);
  const sparse = n.dob === undefined || (n.given === '' && n.family === '');
  if (sparse) return { id, keys: [], dob: [], sex: '', ssn: '', sparse };
  const keys = new Set<string>();
  for (const name of config.matchKeys) for (const value of keyValues(name, n)) keys.add(`${name}:${hmac(key, DOMAIN.key, `${name}|${value}`)}`);
  const digits = n.dob!.replaceAll('-', '');
  const dob = [hmac(key, DOMAIN.guard, `dob|${digits}`)];
  if (config.birthDateTolerance === 'one_digit') {
    for (let i = 0; i < digits.length; i++) dob.push(hmac(key, DOMAIN.guard, `dob${i}|${digits.slice(0, i)}_${digits.slice(i + 1)}`));
  }
  return {
    id,
    keys: [...keys].sort(),
    dob,
    sex: n.sex === '' ? '' : hmac(key, DOMAIN.guard, `sex|${n.sex}`),
    ssn: n.ssn === '' ? '' : hmac(key, DOMAIN.guard, `ssn|${n.ssn}`),
    sparse,
  };
}

/**
 * A keyed digest of what a record's link values depend on (its normalized fields and the
 * linkage config): when it changes, the record is re-keyed and re-resolved.
 */
export function identityDigest(key: Buffer, fields: IdentityFields, config: LinkageConfig): string {
  const n = normalize(fields, config);
  return hmac(key, DOMAIN.digest, JSON.stringify([linkageConfigFingerprint(config), n.given, n.family, n.dob ?? '', n.sex, n.ssn]));
}

/** `lc_` + 16 hex digits of the settings that decide match keys; stored in the vault beside them. */
export function linkageConfigFingerprint(config: LinkageConfig): string {
  const decisive = { v: 1, keys: [...config.matchKeys].sort(), tolerance: config.birthDateTolerance, ssn9xx: config.ssnArea9xx };
  return `lc_${createHash('sha256').update(JSON.stringify(decisive)).digest('hex').slice(0, 16)}`;
}
