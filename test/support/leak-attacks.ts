import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { nameFloor } from '../../src/security/declared-classes.ts';

/**
 * The leak scan's attack fixture (issue 12, item 8), for any warehouse: a test-only CSV source
 * whose columns are classified harmless (phi: none) although they hold reshaped identifiers.
 * Lineage trusts a source's classification, so only the scan can see them. Built from a copy's
 * own staging rows into its folder; never printed. Several names (`ssn_digits`, `zip_int`) mark
 * an identifier, which compile refuses to see declared `none` (TSF227) unless tsform.yml lists
 * them in privacy.not_identifiers: the fixture lists them there, as a reviewer who was fooled would.
 */

export const ATTACKS = ['first_lower', 'ssn_digits', 'address_upper', 'birth_date_copy', 'zip_int', 'phone_digits', 'name_spaced'];
export const CONTROLS = ['birth_year', 'someone_elses_birth_date', 'common_date', 'visits'];

/** The staging columns the fixture is built from, with `birth_date` as text (YYYY-MM-DD). */
export const EXTRAS_SOURCE_SQL = `SELECT practice_id, patient_id, first_name, last_name, ssn, address, CAST(birth_date AS VARCHAR) AS birth_date, zip
  FROM staging.stg_patients
 WHERE zip IS NOT NULL AND ssn IS NOT NULL AND first_name IS NOT NULL AND address IS NOT NULL
 ORDER BY patient_id`;

/** Writes `data/test/extras.csv` into the project from EXTRAS_SOURCE_SQL's rows; returns how many. */
export function writeExtras(projectDir: string, rows: readonly Record<string, unknown>[]): number {
  const csv = (v: unknown) => `"${String(v ?? '').replaceAll('"', '""')}"`;
  const lines = [
    ['practice_id', 'patient_id', 'phone', ...ATTACKS, ...CONTROLS].join(','),
    ...rows.map((r, i) => {
      const seed = Number.parseInt(createHash('sha256').update(String(r.patient_id)).digest('hex').slice(0, 8), 16) % 10_000_000;
      const digits = `617${String(seed).padStart(7, '0')}`;
      const phone = `(${digits.slice(0, 3)}) ${digits.slice(3, 6)}-${digits.slice(6)}`;
      const other = i > 0 ? String(rows[i - 1]!.birth_date) : '';
      const values = [
        r.practice_id,
        r.patient_id,
        phone,
        String(r.first_name).toLowerCase(),
        String(r.ssn).replaceAll('-', ''),
        String(r.address).toUpperCase(),
        r.birth_date,
        String(Number(r.zip)),
        digits,
        `  ${String(r.first_name).toUpperCase()} ,.  ${r.last_name}!`,
        String(r.birth_date).slice(0, 4),
        other === r.birth_date ? '' : other,
        '2020-01-01',
        String(i % 7),
      ];
      return values.map(csv).join(',');
    }),
  ];
  mkdirSync(join(projectDir, 'data/test'), { recursive: true });
  writeFileSync(join(projectDir, 'data/test/extras.csv'), `${lines.join('\n')}\n`);
  return rows.length;
}

const typed = (c: string) =>
  c === 'birth_date_copy' || c.endsWith('birth_date') || c === 'common_date' ? ', data_type: "DATE"' : c === 'zip_int' || c === 'birth_year' || c === 'visits' ? ', data_type: "INTEGER"' : '';

/** tsform.yml of the project in `dir` with the fixture's identifier-named columns listed as not identifiers. */
function allowingLeakyNames(dir: string, columns: readonly string[]): string {
  const doc = parseDocument(readFileSync(join(dir, 'tsform.yml'), 'utf8'));
  const listed = (doc.getIn(['privacy', 'not_identifiers']) as { toJSON(): string[] } | undefined)?.toJSON() ?? [];
  const named = (keys: readonly string[], prefix: string) => keys.filter((c) => nameFloor(c) !== undefined).map((c) => `${prefix}.${c}`);
  doc.setIn(['privacy', 'not_identifiers'], [...listed, ...named([...ATTACKS, ...CONTROLS], 'test.extras'), ...named(columns, 'sc_leaky_pseudo')]);
  return doc.toString();
}

/** The project files of the fixture for the project in `dir`: the source, a pseudonymized model carrying every column, its yml, tsform.yml. */
export function leakyFiles(dir: string, columns: readonly string[] = [...ATTACKS, ...CONTROLS]): Record<string, string> {
  return {
    'tsform.yml': allowingLeakyNames(dir, columns),
    'models/sources_test.yml': `sources:
  - name: test
    schema: raw
    scope: tenant
    loader:
      csv: data/test/{table}.csv
    tables:
      - name: extras
        columns:
          - { name: practice_id, phi: none }
          - { name: patient_id, phi: direct }
          - { name: phone, phi: direct }
${[...ATTACKS, ...CONTROLS].map((c) => `          - { name: ${c}, phi: none${typed(c)} }`).join('\n')}
`,
    'models/research/sc_leaky_pseudo.sql': `-- Test model: pseudonymized rows that carry the reshaped identifiers.
select x.practice_id, v.person_token, ${columns.map((c) => `x.${c}`).join(', ')}
from {{source "test" "extras"}} x
join {{ref "vault_person_tokens"}} v on v.practice_id = x.practice_id and v.patient_id = x.patient_id
`,
    'models/research/_sc_leaky_pseudo.yml': `models:
  - name: sc_leaky_pseudo
    columns:
      - { name: practice_id, phi: none }
      - { name: person_token, phi: none }
${columns.map((c) => `      - { name: ${c}, phi: none }`).join('\n')}
`,
  };
}
