import { manifestNodes, type Manifest } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ColumnSpec, PhiClass, PrivacyConfig, Project } from '../project/types.ts';
import { phiRank } from './phi-lineage-info.ts';

/**
 * A yml's `phi:` class is the root of every privacy gate: lineage and the leak scan trust what
 * sources and models declare. So a pull request that re-declares `ssn: none` would switch both
 * off for that column. This check puts a floor under declarations that cannot be lowered from a
 * models/ yml:
 *
 * - **by role**: the identity model's identity columns (tsform.yml `privacy.identity`), which the
 *   vault reads to make person tokens, are `direct` (patient id, names, SSN) or `quasi` (birth
 *   date, sex), whatever their names;
 * - **by name**: a column whose name says it is one of the HIPAA identifiers (names, SSN, MRN,
 *   contact details, street address, licence and passport numbers; birth and death dates and ZIP
 *   codes as quasi-identifiers).
 *
 * A column that truly holds no identifier despite its name (a provider's office address) is
 * listed in tsform.yml `privacy.not_identifiers` — the reviewed file, like the approved
 * generalizers — as `<source>.<table>.<column>` or `<model>.<column>`. A role cannot be listed away.
 * A name that marks nothing (`encounter_id`) has no floor here; slim CI (`--state`) compares
 * every declaration with production's manifest instead (classesLoweredSince).
 */

interface NameFloor {
  floor: Exclude<PhiClass, 'none'>;
  /** What the name says the column is, for the message. */
  what: string;
}

/** Patterns over the name as `_word_word_` (lower case, camelCase split, any separator as `_`). */
const NAME_FLOORS: readonly { pattern: RegExp; floor: NameFloor }[] = [
  { pattern: /_(ssn[0-9]*|social_security(_number)?|socsec)_/, floor: { floor: 'direct', what: 'a social security number' } },
  { pattern: /_(mrn|medical_record(_number|_no)?|patient_id|patient_number)_/, floor: { floor: 'direct', what: 'a medical record number' } },
  { pattern: /_(first|last|middle|maiden|given|family|full|patient|birth)_name_|_(surname|forename|firstname|lastname)_/, floor: { floor: 'direct', what: "a person's name" } },
  { pattern: /_(e_?mail)_/, floor: { floor: 'direct', what: 'an email address' } },
  { pattern: /_(phone|telephone|fax|mobile_number|cell_phone)_/, floor: { floor: 'direct', what: 'a telephone or fax number' } },
  { pattern: /_(address|street|address_line_?\d*)_/, floor: { floor: 'direct', what: 'an address' } },
  { pattern: /_(passport|drivers?_licen[cs]e|licen[cs]e_number)_/, floor: { floor: 'direct', what: 'a licence or passport number' } },
  { pattern: /_(birth_date|date_of_birth|dob|birthdate|birthday)_/, floor: { floor: 'quasi', what: 'a birth date' } },
  { pattern: /_(death_date|date_of_death|deathdate)_/, floor: { floor: 'quasi', what: 'a death date' } },
  { pattern: /_(zip|zipcode|zip_code|postal_code|postcode)_/, floor: { floor: 'quasi', what: 'a ZIP code' } },
];

/** `firstName`, `First-Name`, `first name`, `ｆｉｒｓｔ＿ｎａｍｅ` → `_first_name_`. */
function nameWords(column: string): string {
  const words = column
    .normalize('NFKC')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
  return `_${words.join('_')}_`;
}

/** The class a column's name alone demands, or undefined when the name says nothing. */
export function nameFloor(column: string): NameFloor | undefined {
  const words = nameWords(column);
  return NAME_FLOORS.find((f) => f.pattern.test(words))?.floor;
}

/** The identity model's columns by role: what the vault reads them as. */
function roleFloors(privacy: PrivacyConfig): Map<string, NameFloor> {
  const id = privacy.identity;
  const roles = new Map<string, NameFloor>();
  const set = (column: string | undefined, floor: NameFloor['floor'], key: string) => {
    if (column !== undefined) roles.set(column, { floor, what: `the vault's identity column (tsform.yml privacy.identity.${key})` });
  };
  set(id.patientId, 'direct', 'patient_id');
  set(id.firstName, 'direct', 'first_name');
  set(id.lastName, 'direct', 'last_name');
  set(id.ssn, 'direct', 'ssn');
  set(id.birthDate, 'quasi', 'birth_date');
  set(id.sex, 'quasi', 'sex');
  return roles;
}

interface Declared {
  /** `<source>.<table>.<column>` or `<model>.<column>`. */
  key: string;
  column: ColumnSpec;
  model?: string;
}

/**
 * Every column declaration of the project, duplicates included: a second yml entry for a model,
 * or a column listed twice, is not an error elsewhere, and either could be the one that counts.
 */
function declaredColumns(project: Project): Declared[] {
  const out: Declared[] = [];
  for (const s of project.sources) for (const c of s.columns) out.push({ key: `${s.source}.${s.name}.${c.name}`, column: c });
  for (const p of project.properties) for (const c of p.columns) out.push({ key: `${p.name}.${c.name}`, column: c, model: p.name });
  return out;
}

/**
 * TSF227 for each declared column whose class is below its floor, and a warning for each
 * `privacy.not_identifiers` entry that names no declared column (a stale or mistyped entry
 * should not sit there unnoticed). Nothing is checked without a `privacy:` block: such a
 * project has no research layer to protect.
 */
export function checkDeclaredClasses(project: Project): Diagnostic[] {
  const privacy = project.config.privacy;
  if (!privacy) return [];
  const allowed = new Set(privacy.notIdentifiers);
  const roles = roleFloors(privacy);
  const declared = declaredColumns(project);
  const out: Diagnostic[] = [];
  for (const { key, column: c, model } of declared) {
    const role = model === privacy.identityModel ? roles.get(c.name) : undefined;
    const byName = allowed.has(key) ? undefined : nameFloor(c.name);
    // The stronger of the two; the role when they are equal (its message cannot be listed away).
    const floor = role && (!byName || phiRank(role.floor) >= phiRank(byName.floor)) ? role : byName;
    if (!floor || phiRank(c.phi) >= phiRank(floor.floor)) continue;
    const what = c.phiExplicit ? `is declared phi: ${c.phi}` : `has no phi class (${c.phi} by default)`;
    const escape = floor === role ? 'a role cannot be declared away' : `or, if it truly holds no identifier, list '${key}' under privacy.not_identifiers in tsform.yml (a reviewed change)`;
    out.push(diagnostic(Codes.identifierDeclassified, `column '${key}' ${what}, but it is ${floor.what}: declare it phi: ${floor.floor}; ${escape}`, { file: c.file, line: c.line ?? 1 }));
  }
  const keys = new Set(declared.map((d) => d.key));
  for (const key of privacy.notIdentifiers) {
    if (keys.has(key)) continue;
    out.push(
      diagnostic(Codes.identifierDeclassified, `privacy.not_identifiers lists '${key}', which names no declared column: remove it`, { file: 'tsform.yml', line: privacy.notIdentifiersLine }, 'warning'),
    );
  }
  return out;
}

/**
 * Slim CI's review of declarations (`--state`, TSF228): every source or model column that
 * production's manifest classifies `direct` or `quasi` and that this project declares lower, or
 * no longer declares while its relation remains. Each is an error unless tsform.yml
 * `privacy.not_identifiers` lists it, so a pull request cannot lower a class without touching
 * the reviewed file, whatever the column is called.
 */
export function classesLoweredSince(project: Project, current: Manifest, production: Manifest): Diagnostic[] {
  const allowed = new Set(project.config.privacy?.notIdentifiers ?? []);
  const declared = new Map(declaredColumns(project).map((d) => [d.key, d]));
  const now = manifestNodes(current);
  const out: Diagnostic[] = [];
  for (const before of [...Object.values(production.sources), ...Object.values(production.models)]) {
    const after = now[before.name];
    if (!after) continue;
    const relation = before.name.replace(/^source:/, '');
    for (const [name, was] of Object.entries(before.columns)) {
      const key = `${relation}.${name}`;
      const is = after.columns[name];
      if (was.phi === 'none' || allowed.has(key) || (is && phiRank(is.phi) >= phiRank(was.phi))) continue;
      const spec = declared.get(key)?.column;
      const change = is ? `is declared phi: ${is.phi}` : 'is no longer declared';
      out.push(
        diagnostic(
          Codes.classLowered,
          `column '${key}' ${change}; production's manifest has it phi: ${was.phi}. Keep phi: ${was.phi}, or list '${key}' under privacy.not_identifiers in tsform.yml (a reviewed change)`,
          { file: spec?.file ?? after.path, line: spec?.line ?? 1 },
        ),
      );
    }
  }
  return out;
}
