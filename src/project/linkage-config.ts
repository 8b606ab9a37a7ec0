import { Codes } from '../errors.ts';
import type { YamlReader } from './yaml-file.ts';

/**
 * The match keys a record may carry (issue 17), each a keyed HMAC of normalized fields computed
 * in the vault. Every key holds the birth date or part of it, so that no key links two persons
 * on names alone; which keys run is a reviewed choice in tsform.yml, not an open list.
 */
export const MATCH_KEY_NAMES = [
  /** SSN + birth date: the strongest key, when the SSN is valid at both practices. */
  'ssn_dob',
  /** SSN + phonetic given name: a birth date mistyped at one practice. */
  'ssn_given',
  /** Formal given name (nicknames resolved) + family name + birth date. */
  'name_dob',
  /** Soundex of family and formal given name + birth date: omitted or doubled letters. */
  'phonetic_dob',
  /** The sorted characters of both names + birth date: transposed letters, swapped given/family name. */
  'letters_dob',
  /**
   * Both names with any one character deleted (and as typed) + birth date: one omitted, extra or
   * transposed letter in either name, found by equal hashes only (a deletion neighbourhood).
   */
  'name_edit_dob',
  /** Names + sex + birth year: a month or day mistyped and no SSN (the birth-date guard bounds it to one digit). */
  'name_year',
  /** Names + sex + month and day: the year mistyped and no SSN. */
  'name_monthday',
] as const;

export type MatchKeyName = (typeof MATCH_KEY_NAMES)[number];

export interface LinkageConfig {
  /**
   * Keys computed per record; two records sharing any one are candidates for one person. Default:
   * all but `name_year` and `name_monthday`, which link a mistyped birth date without an SSN but
   * also a namesake born one digit apart when no SSN tells the two apart: opt in knowingly.
   */
  matchKeys: MatchKeyName[];
  /**
   * How far the birth dates of one person's records may differ before the guard splits them:
   * `one_digit` (default: one digit of YYYYMMDD, a typo) or `exact`.
   */
  birthDateTolerance: 'exact' | 'one_digit';
  /**
   * SSNs of area 9xx: `invalid` (default; the SSA never issues them, ITINs live there) counts them
   * as missing; `valid` keeps them (Synthea's demo data uses 999).
   */
  ssnArea9xx: 'invalid' | 'valid';
  /**
   * A key value held by more records than this links none of them (default 50): a placeholder
   * identity ("UNKNOWN", 1900-01-01) must not pull unrelated patients into one person.
   */
  maxKeyHolders: number;
}

export const DEFAULT_LINKAGE: Readonly<LinkageConfig> = {
  matchKeys: MATCH_KEY_NAMES.filter((k) => k !== 'name_year' && k !== 'name_monthday'),
  birthDateTolerance: 'one_digit',
  ssnArea9xx: 'invalid',
  maxKeyHolders: 50,
};


/** The linkage settings of `privacy.identity` (its unknown keys are TSF117 from yml-schema.ts). */
export function readLinkageConfig(r: YamlReader, identity: Record<string, unknown>): LinkageConfig {
  const config: LinkageConfig = { ...DEFAULT_LINKAGE, matchKeys: [...DEFAULT_LINKAGE.matchKeys] };
  if (identity.match_keys !== undefined) {
    const names = r.stringList(identity, 'match_keys');
    const unknown = names.filter((n) => !(MATCH_KEY_NAMES as readonly string[]).includes(n));
    if (unknown.length > 0) r.fail(identity, 'match_keys', `privacy.identity.match_keys: unknown key(s) ${unknown.join(', ')} (${MATCH_KEY_NAMES.join(', ')})`, Codes.invalidConfig);
    else if (names.length === 0) r.fail(identity, 'match_keys', 'privacy.identity.match_keys: name at least one key (every record would be a person of its own)', Codes.invalidConfig);
    else config.matchKeys = [...new Set(names as MatchKeyName[])];
  }
  const tolerance = r.string(identity, 'birth_date_tolerance');
  if (tolerance !== undefined) {
    if (tolerance === 'exact' || tolerance === 'one_digit') config.birthDateTolerance = tolerance;
    else r.fail(identity, 'birth_date_tolerance', `privacy.identity.birth_date_tolerance: '${tolerance}' is not exact or one_digit`, Codes.invalidConfig);
  }
  const area9xx = r.string(identity, 'ssn_area_9xx');
  if (area9xx !== undefined) {
    if (area9xx === 'invalid' || area9xx === 'valid') config.ssnArea9xx = area9xx;
    else r.fail(identity, 'ssn_area_9xx', `privacy.identity.ssn_area_9xx: '${area9xx}' is not invalid or valid`, Codes.invalidConfig);
  }
  if (identity.max_key_holders !== undefined) config.maxKeyHolders = r.positiveInt(identity, 'max_key_holders', DEFAULT_LINKAGE.maxKeyHolders);
  return config;
}
