/**
 * Person and practice tokens for the research layer (DESIGN §1, §5; issue 4). Pure: no I/O, the
 * key is passed in. Every token is a keyed HMAC-SHA256, so without the key a token cannot be
 * recomputed from a guessed identity, and it never contains identity text.
 *
 * One key serves three purposes, kept apart by a domain label hashed in front of every message
 * (`tsform/<purpose>/v1` + NUL): person tokens, practice tokens and date shifts. A person token
 * therefore never equals the practice token of the same text, and the date shift of a person
 * tells nothing about their token.
 *
 * Tokens are the full 256-bit HMAC in lower-case hex behind a type prefix (`pt_…`, `pr_…`, 67
 * characters): hex compares and sorts the same in DuckDB and PostgreSQL, and no truncation has
 * to be argued about.
 *
 * Since issue 17 the vault no longer derives a person token from one normalized identity: it
 * resolves records into persons over several match keys (match-keys.ts, resolve-persons.ts) and
 * mints a person's token with `personToken` once. `pseudonymizeRecord` (one identity, one token)
 * remains what bench:pseudonymize's token-map pipeline computes; vault tokens made by it before
 * issue 17 are kept as they are (tokens stay).
 */
import { createHash, randomBytes } from 'node:crypto';
import { hmacSha256Hex } from './hmac.ts';

/** Identity columns of one patient record, as a practice system holds them. */
export interface IdentityFields {
  firstName?: string | null;
  lastName?: string | null;
  /** `YYYY-MM-DD`; a longer ISO timestamp is cut to its date. */
  birthDate?: string | null;
  sex?: string | null;
  ssn?: string | null;
}

/** Bytes in a key made by `generateKey` and accepted by `parseKey`. */
export const KEY_BYTES = 32;

const PERSON_PREFIX = 'pt_';
const PRACTICE_PREFIX = 'pr_';
const FINGERPRINT_PREFIX = 'kf_';
const PERSON_TOKEN_LENGTH = PERSON_PREFIX.length + 64;

// The field separator: normalized fields hold only letters, digits and the date's '-', so '|'
// cannot occur in them and two different field lists never join to the same string.
const SEPARATOR = '|';
// Versioned prefixes: a change of the normalization rules must change every token (the vault
// then sees a new identity version instead of silently mixing two), and a per-record fallback
// can never equal a person identity.
const IDENTITY_VERSION = 'id1';
const FALLBACK_VERSION = 'rec1';

const DOMAIN = {
  person: 'tsform/person-token/v1',
  practice: 'tsform/practice-token/v1',
  dateShift: 'tsform/date-shift/v1',
} as const;

/** The largest date shift in days, either way; 0 is never chosen. */
export const MAX_DATE_SHIFT_DAYS = 180;

/** A key that is missing, malformed or of the wrong length. Never carries the key text. */
export class PseudonymKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PseudonymKeyError';
  }
}

// ---- normalization --------------------------------------------------------------------------

const COMBINING_MARKS = /\p{M}/gu;
const NOT_LETTER_OR_DIGIT = /[^\p{L}\p{N}]/gu;
const ASCII_NAME = /^[A-Za-z0-9]*$/;

/**
 * A name reduced to what survives re-typing at another practice: compatibility decomposition
 * (NFKD), diacritics removed, lower case, and every character that is not a letter or a digit
 * removed — whitespace and punctuation alike, so "Mary  Ann", "Mary-Ann" and "MaryAnn" are one
 * name, and so are "O'Brien" and "OBRIEN". Digits stay: Synthea names carry them ("Walker122")
 * and they tell persons apart.
 */
export function normalizeName(value: string | null | undefined): string {
  if (value === null || value === undefined) return '';
  // Most names are plain ASCII; skip the Unicode passes for them.
  if (ASCII_NAME.test(value)) return value.toLowerCase();
  return value
    .normalize('NFKD')
    .toLowerCase()
    .replaceAll('ß', 'ss') // NFKD keeps ß; its upper case is SS
    .normalize('NFKD') // lower-casing may create new composed forms (İ → i̇)
    .replace(COMBINING_MARKS, '')
    .replace(NOT_LETTER_OR_DIGIT, '');
}

/** `YYYY-MM-DD` when the text starts with a real calendar date, else undefined. */
export function normalizeBirthDate(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])/.exec(value.trim());
  if (!match) return undefined;
  const [, y, m, d] = match as unknown as [string, string, string, string];
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  // Date.UTC rolls 02-30 over to 03-02: only a date that comes back unchanged is real.
  if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(m) - 1 || date.getUTCDate() !== Number(d)) return undefined;
  return `${y}-${m}-${d}`;
}

/** First letter of the normalized value, upper case ('female' → 'F'); '' when absent. */
export function normalizeSex(value: string | null | undefined): string {
  return normalizeName(value).slice(0, 1).toUpperCase();
}

/**
 * Nine digits, or '' when absent or not a plausible SSN: wrong length, or a number the SSA never
 * issues (area 000 or 666, group 00, serial 0000) or the common placeholder 123456789. Such
 * placeholders are typed by many systems for "unknown" and would otherwise look like data.
 * Area 9xx is kept: Synthea uses 999 and ITINs live there.
 */
export function normalizeSsn(value: string | null | undefined): string {
  if (value === null || value === undefined) return '';
  const digits = value.replace(/\D/g, '');
  if (digits.length !== 9) return '';
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return '';
  if (digits === '123456789') return '';
  return digits;
}

/**
 * The identity string a person token is computed from, or undefined when the record cannot be
 * linked (first name, last name or a valid birth date missing): the caller then tokenizes
 * `recordFallbackIdentity(practiceId, patientId)`, which links nothing.
 *
 * Fields: version, first name, last name, birth date, sex, SSN — each normalized as above, absent
 * sex and SSN as ''. Note that an absent SSN is part of the identity: a record with an SSN and
 * one without get different tokens (the issue's "SSN when present").
 *
 * The result is PHI in plain text: hash it at once, never log, store or return it further.
 */
export function normalizeIdentity(p: IdentityFields): string | undefined {
  const first = normalizeName(p.firstName);
  const last = normalizeName(p.lastName);
  const birthDate = normalizeBirthDate(p.birthDate);
  if (first === '' || last === '' || birthDate === undefined) return undefined;
  return [IDENTITY_VERSION, first, last, birthDate, normalizeSex(p.sex), normalizeSsn(p.ssn)].join(SEPARATOR);
}

/**
 * The identity of one record that cannot be linked: unique per (practice, patient), never equal
 * to a `normalizeIdentity` result (other version prefix), and unambiguous whatever characters
 * the ids hold (JSON-encoded).
 */
export function recordFallbackIdentity(practiceId: string, patientId: string): string {
  if (practiceId === '' || patientId === '') throw new TypeError('recordFallbackIdentity needs a practice id and a patient id');
  return `${FALLBACK_VERSION}${SEPARATOR}${JSON.stringify([practiceId, patientId])}`;
}

// ---- tokens ---------------------------------------------------------------------------------

/** HMAC-SHA256 of `domain` NUL `message`, in hex (hmac.ts). */
function hmacHex(key: Buffer, domain: string, message: string): string {
  checkKey(key);
  return hmacSha256Hex(key, `${domain}\u0000${message}`);
}

/** `pt_` + 64 hex digits: HMAC-SHA256 of the identity under the person domain. */
export function personToken(key: Buffer, identity: string): string {
  if (identity === '') throw new TypeError('personToken needs a non-empty identity');
  return PERSON_PREFIX + hmacHex(key, DOMAIN.person, identity);
}

/**
 * The token of a new person (resolve-persons.ts): from its sorted record ids, so that the same
 * records make the same person again (a practice coming back to research). `attempt` > 0 when the
 * first is held by another person: the same list of ids can be a new person twice (split, merged,
 * split again), and the first time's token may have stayed with a record that left it.
 */
export function newPersonToken(key: Buffer, recordIds: readonly string[], attempt = 0): string {
  return personToken(key, attempt === 0 ? `persons2|${JSON.stringify(recordIds)}` : `persons2|${attempt}|${JSON.stringify(recordIds)}`);
}

/** `pr_` + 64 hex digits: HMAC-SHA256 of the practice id under the practice domain. */
export function practiceToken(key: Buffer, practiceId: string): string {
  if (practiceId === '') throw new TypeError('practiceToken needs a practice id');
  return PRACTICE_PREFIX + hmacHex(key, DOMAIN.practice, practiceId);
}

/**
 * Days to add to every date of this person: in [-180, 180], never 0, the same at every practice
 * (it depends on the person token only). 48 bits of an HMAC under the date-shift domain, reduced
 * modulo 360 (bias below 2^-39).
 */
export function dateShiftDays(key: Buffer, personTokenValue: string): number {
  // prefix and length only: the full pattern would cost as much as a tenth of the HMAC
  if (personTokenValue.length !== PERSON_TOKEN_LENGTH || !personTokenValue.startsWith(PERSON_PREFIX)) throw new TypeError('dateShiftDays needs a person token (pt_ + 64 hex digits)');
  // 12 hex digits = 48 bits: exact in a double
  const n = Number.parseInt(hmacHex(key, DOMAIN.dateShift, personTokenValue).slice(0, 12), 16) % (2 * MAX_DATE_SHIFT_DAYS);
  return n < MAX_DATE_SHIFT_DAYS ? n - MAX_DATE_SHIFT_DAYS : n - MAX_DATE_SHIFT_DAYS + 1;
}

export interface RecordPseudonym {
  personToken: string;
  dateShiftDays: number;
  /** False when the record could not be linked and its token is a per-record fallback. */
  linked: boolean;
}

/**
 * Token and date shift of one (practice, patient) record, as the vault stores them: the person
 * token of its normalized identity, or of its per-record fallback when it cannot be linked.
 */
export function pseudonymizeRecord(key: Buffer, practiceId: string, patientId: string, fields: IdentityFields): RecordPseudonym {
  const identity = normalizeIdentity(fields);
  const token = personToken(key, identity ?? recordFallbackIdentity(practiceId, patientId));
  return { personToken: token, dateShiftDays: dateShiftDays(key, token), linked: identity !== undefined };
}

// ---- keys -----------------------------------------------------------------------------------

/** A new random key (32 bytes from the OS CSPRNG). */
export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * `kf_` + the first 16 hex digits of sha256(key): safe to print and store beside tokens, so that
 * tokens made under another key are recognised. 64 bits of a hash of a 256-bit random key reveal
 * nothing usable about it.
 */
export function keyFingerprint(key: Buffer): string {
  checkKey(key);
  return FINGERPRINT_PREFIX + createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * The key from its text form: 64 hex digits, or base64 / base64url (padding optional) of 32
 * bytes. Surrounding whitespace is ignored. Errors say what was wrong, never what was given.
 */
export function parseKey(text: string): Buffer {
  const trimmed = text.trim();
  if (trimmed === '') throw new PseudonymKeyError('the pseudonymization key is empty');
  let key: Buffer;
  let form: string;
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0) {
    key = Buffer.from(trimmed, 'hex');
    form = 'hex';
  } else if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length !== 43) {
    // 43 characters is unpadded base64 of 32 bytes, which may by chance hold hex digits only
    throw new PseudonymKeyError(`the pseudonymization key looks like hex but has an odd number of digits (${trimmed.length}); expected ${KEY_BYTES * 2}`);
  } else if (/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || /^[A-Za-z0-9_-]+={0,2}$/.test(trimmed)) {
    const bare = trimmed.replace(/=+$/, '');
    if (bare.length % 4 === 1) throw new PseudonymKeyError('the pseudonymization key is not valid base64 (its length is impossible)');
    key = Buffer.from(bare.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
    form = 'base64';
  } else {
    throw new PseudonymKeyError(`the pseudonymization key must be ${KEY_BYTES} bytes as ${KEY_BYTES * 2} hex digits or as base64; it holds characters that are neither`);
  }
  if (key.length !== KEY_BYTES) {
    throw new PseudonymKeyError(`the pseudonymization key must be ${KEY_BYTES} bytes; it decodes (as ${form}) to ${key.length} bytes`);
  }
  checkKey(key);
  return key;
}

// Keys already checked, so that the per-call check (two HMACs per record) is one lookup. A key is
// used as the bytes it held at its first use: hmac.ts copies its pads then, so a key buffer is
// never to be rewritten in place (nothing in tsform does).
const checkedKeys = new WeakSet<Buffer>();

function checkKey(key: Buffer): void {
  if (checkedKeys.has(key)) return;
  checkKeyBytes(key);
  checkedKeys.add(key);
}

function checkKeyBytes(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new PseudonymKeyError(`the pseudonymization key must be ${KEY_BYTES} bytes; got ${Buffer.isBuffer(key) ? `${key.length} bytes` : typeof key}`);
  }
  // A key of one repeated byte (all zeros from an unset buffer, a test placeholder) is no secret.
  if (key.every((b) => b === key[0])) throw new PseudonymKeyError('the pseudonymization key is one byte repeated: a placeholder, not a secret');
}
