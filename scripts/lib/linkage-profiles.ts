/**
 * Perturbation profiles, hard negatives and figures of `npm run linkage` (issue 17), shared with
 * the linkage tests. Deterministic: every random choice comes from a seeded PRNG.
 *
 * Records here hold demo identities (Synthea-made, shaped like PHI): nothing in this module
 * returns or prints a field value; callers print counts only.
 */
import type { LinkageConfig } from '../../src/project/linkage-config.ts';
import { linkRecordOf } from '../../src/security/match-keys.ts';
import { FORMAL_TO_NICKNAME } from '../../src/security/name-phonetics.ts';
import { newPersonToken, type IdentityFields } from '../../src/security/pseudonymize.ts';
import { resolvePersons } from '../../src/security/resolve-persons.ts';
import { prng } from '../../test/support/prng.ts';

export interface PatientRecord {
  practiceId: string;
  patientId: string;
  /** Ground truth: the person this record belongs to. */
  person: string;
  identity: IdentityFields;
}

export const PROFILES = ['none', 'missing-ssn', 'typo', 'everything'] as const;
export type Profile = (typeof PROFILES)[number];
export const PERTURBATIONS = ['missing_ssn', 'transpose', 'omit', 'nickname', 'swap_names', 'dob_digit'] as const;
export type Perturbation = (typeof PERTURBATIONS)[number];

type Random = () => number;
const pick = <T>(rand: Random, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** Letters of a name and its trailing digits (Synthea: "Sporer811"). */
function split(name: string): [string, string] {
  const m = /^(.*?)(\d*)$/.exec(name)!;
  return [m[1]!, m[2]!];
}

function transpose(name: string, rand: Random): string | undefined {
  const [letters, digits] = split(name);
  const spots = [...letters].map((_, i) => i).filter((i) => i + 1 < letters.length && letters[i]!.toLowerCase() !== letters[i + 1]!.toLowerCase());
  if (spots.length === 0) return undefined;
  const i = pick(rand, spots);
  return letters.slice(0, i) + letters[i + 1] + letters[i] + letters.slice(i + 2) + digits;
}

function omit(name: string, rand: Random): string | undefined {
  const [letters, digits] = split(name);
  if (letters.length < 3) return undefined;
  const i = Math.floor(rand() * letters.length);
  return letters.slice(0, i) + letters.slice(i + 1) + digits;
}

function nickname(name: string): string | undefined {
  const [letters, digits] = split(name);
  const nick = FORMAL_TO_NICKNAME.get(letters.toLowerCase());
  return nick === undefined ? undefined : nick[0]!.toUpperCase() + nick.slice(1) + digits;
}

function isDate(y: number, m: number, d: number): boolean {
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d && y >= 1900;
}

/** One digit of YYYYMMDD changed, the result still a real date. */
function dobDigit(dob: string, rand: Random): string | undefined {
  const digits = dob.replaceAll('-', '');
  for (let attempt = 0; attempt < 50; attempt++) {
    const i = Math.floor(rand() * 8);
    const d = String(Math.floor(rand() * 10));
    if (d === digits[i]) continue;
    const next = digits.slice(0, i) + d + digits.slice(i + 1);
    if (isDate(Number(next.slice(0, 4)), Number(next.slice(4, 6)), Number(next.slice(6)))) return `${next.slice(0, 4)}-${next.slice(4, 6)}-${next.slice(6)}`;
  }
  return undefined;
}

/** The identity with one perturbation applied; undefined when it does not apply (no nickname known, no SSN to drop). */
export function perturb(p: IdentityFields, kind: Perturbation, rand: Random): IdentityFields | undefined {
  const onName = (f: (name: string) => string | undefined): IdentityFields | undefined => {
    const field = rand() < 0.7 ? 'lastName' : 'firstName';
    const changed = f(p[field] ?? '');
    return changed === undefined ? undefined : { ...p, [field]: changed };
  };
  switch (kind) {
    case 'missing_ssn':
      return p.ssn ? { ...p, ssn: null } : undefined;
    case 'transpose':
      return onName((n) => transpose(n, rand));
    case 'omit':
      return onName((n) => omit(n, rand));
    case 'nickname': {
      const first = nickname(p.firstName ?? '');
      return first === undefined ? undefined : { ...p, firstName: first };
    }
    case 'swap_names':
      return { ...p, firstName: p.lastName, lastName: p.firstName };
    case 'dob_digit': {
      const dob = p.birthDate ? dobDigit(p.birthDate, rand) : undefined;
      return dob === undefined ? undefined : { ...p, birthDate: dob };
    }
    default: {
      const never: never = kind;
      throw new Error(`unknown perturbation ${String(never)}`);
    }
  }
}

/** Persons with records at two or more practices. */
export function multiPracticePersons(records: readonly PatientRecord[]): Set<string> {
  const practices = new Map<string, Set<string>>();
  for (const r of records) (practices.get(r.person) ?? practices.set(r.person, new Set()).get(r.person)!).add(r.practiceId);
  return new Set([...practices].filter(([, p]) => p.size >= 2).map(([person]) => person));
}

/**
 * The profile applied: one record (not the first) of every multi-practice person perturbed — by
 * dropping its SSN (`missing-ssn`), a transposed or omitted letter (`typo`), or one kind drawn
 * from all (`everything`, which also drops the SSN of a fifth of all records). A kind that does
 * not apply to a record falls back to a transposition. Returns the records and the kinds applied.
 */
export function applyProfile(
  records: readonly PatientRecord[],
  profile: Profile,
  seed: number,
): { records: PatientRecord[]; applied: Record<string, number>; kindOf: Map<string, Perturbation> } {
  const rand = prng(seed);
  const applied: Record<string, number> = {};
  const kindOf = new Map<string, Perturbation>();
  if (profile === 'none') return { records: [...records], applied, kindOf };
  const multi = multiPracticePersons(records);
  const seen = new Set<string>();
  const out = records.map((r) => {
    let identity = r.identity;
    if (profile === 'everything' && rand() < 0.2) identity = perturb(identity, 'missing_ssn', rand) ?? identity;
    if (!multi.has(r.person) || !seen.has(r.person) || seen.has(`${r.person}|done`)) {
      seen.add(r.person);
      return { ...r, identity };
    }
    seen.add(`${r.person}|done`);
    const kinds: readonly Perturbation[] = profile === 'missing-ssn' ? ['missing_ssn'] : profile === 'typo' ? ['transpose', 'omit'] : PERTURBATIONS.filter((k) => k !== 'missing_ssn');
    let kind = pick(rand, kinds);
    let changed = perturb(identity, kind, rand);
    if (changed === undefined) {
      kind = 'transpose';
      changed = perturb(identity, kind, rand);
    }
    if (changed === undefined) return { ...r, identity };
    applied[kind] = (applied[kind] ?? 0) + 1;
    kindOf.set(r.person, kind);
    return { ...r, identity: changed };
  });
  return { records: out, applied, kindOf };
}

function otherSsn(rand: Random, like: string | null | undefined): string {
  const area = like?.startsWith('9') ? '999' : String(100 + Math.floor(rand() * 565));
  return `${area}-${String(10 + Math.floor(rand() * 89))}-${String(1000 + Math.floor(rand() * 8999))}`;
}

/**
 * Hard negatives, each a new person: a namesake (same names and sex, same birth year, another
 * birth date and SSN) at one practice, and a twin (same family name and birth date, another given
 * name, own SSN) at every practice of the person — twins share an address and often a doctor.
 */
export function hardNegatives(records: readonly PatientRecord[], seed: number, count: number): PatientRecord[] {
  const rand = prng(seed);
  const multi = [...multiPracticePersons(records)].sort();
  const practices = [...new Set(records.map((r) => r.practiceId))].sort();
  const givenNames = [...new Set(records.map((r) => r.identity.firstName ?? '').filter((n) => n !== ''))].sort();
  const out: PatientRecord[] = [];
  for (let n = 0; n < count && multi.length > 0; n++) {
    const person = multi[(n * 7919) % multi.length]!;
    const own = records.filter((r) => r.person === person);
    const p = own[0]!.identity;
    const year = Number((p.birthDate ?? '1970').slice(0, 4));
    let dob = p.birthDate ?? '';
    while (dob === p.birthDate) dob = `${year}-${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`;
    out.push({ practiceId: pick(rand, practices), patientId: `namesake-${n}`, person: `namesake-${n}`, identity: { ...p, birthDate: dob, ssn: otherSsn(rand, p.ssn) } });
    let given = p.firstName;
    while (given === p.firstName) given = pick(rand, givenNames);
    const twin: IdentityFields = { ...p, firstName: given, sex: rand() < 0.5 ? p.sex : p.sex === 'F' ? 'M' : 'F', ssn: otherSsn(rand, p.ssn) };
    for (const r of own) out.push({ practiceId: r.practiceId, patientId: `twin-${n}-${r.practiceId}`, person: `twin-${n}`, identity: twin });
  }
  return out;
}

/** Person tokens of `records`, through the vault's own match keys and resolution (no earlier tokens). */
export function resolveRecords(records: readonly PatientRecord[], key: Buffer, config: LinkageConfig): string[] {
  const ids = records.map((r) => JSON.stringify([r.practiceId, r.patientId]));
  const link = records.map((r, i) => linkRecordOf(key, ids[i]!, r.identity, config));
  const { tokens } = resolvePersons(link, { maxKeyHolders: config.maxKeyHolders, previous: new Map(), newToken: (members, attempt) => newPersonToken(key, members, attempt) });
  return ids.map((id) => tokens.get(id)!);
}

export interface LinkageFigures {
  records: number;
  persons: number;
  tokens: number;
  persons_multi_practice: number;
  linked_single_token: number;
  recall: number;
  /** Tokens shared by records of two or more different persons. */
  false_merges: number;
}

/** Multi-practice persons left with several tokens, counted by the perturbation their record got. */
export function missedByKind(records: readonly PatientRecord[], tokens: readonly string[], kindOf: ReadonlyMap<string, Perturbation>): Record<string, number> {
  const tokensOf = new Map<string, Set<string>>();
  records.forEach((r, i) => (tokensOf.get(r.person) ?? tokensOf.set(r.person, new Set()).get(r.person)!).add(tokens[i]!));
  const out: Record<string, number> = {};
  for (const person of multiPracticePersons(records)) {
    if (tokensOf.get(person)!.size === 1) continue;
    const kind = kindOf.get(person) ?? 'unperturbed';
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

export function measure(records: readonly PatientRecord[], tokens: readonly string[]): LinkageFigures {
  const tokensOf = new Map<string, Set<string>>();
  const personsOf = new Map<string, Set<string>>();
  records.forEach((r, i) => {
    (tokensOf.get(r.person) ?? tokensOf.set(r.person, new Set()).get(r.person)!).add(tokens[i]!);
    (personsOf.get(tokens[i]!) ?? personsOf.set(tokens[i]!, new Set()).get(tokens[i]!)!).add(r.person);
  });
  const multi = [...multiPracticePersons(records)];
  const linked = multi.filter((p) => tokensOf.get(p)!.size === 1).length;
  return {
    records: records.length,
    persons: tokensOf.size,
    tokens: personsOf.size,
    persons_multi_practice: multi.length,
    linked_single_token: linked,
    recall: multi.length === 0 ? 0 : Math.round((linked / multi.length) * 10_000) / 10_000,
    false_merges: [...personsOf.values()].filter((s) => s.size >= 2).length,
  };
}
