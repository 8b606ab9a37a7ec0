import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Query } from './research-fixture.ts';

/**
 * Three made-up records of one person: at practice A without an SSN, at practice X with A's name
 * and birth date and an SSN, at B under another name with X's SSN and birth date. A and B link
 * only through X (name and birth date; SSN and birth date), so a vault without X must hold them
 * as two persons.
 */
const BRIDGE = [
  { at: 'a', patient_id: 'bridge-a', first_name: 'Quillon', last_name: 'Vexmarch', ssn: '' },
  { at: 'x', patient_id: 'bridge-x', first_name: 'Quillon', last_name: 'Vexmarch', ssn: '412-67-3391' },
  { at: 'b', patient_id: 'bridge-b', first_name: 'Orrin', last_name: 'Talbessy', ssn: '412-67-3391' },
] as const;

/** Adds the BRIDGE records (each a copy of a record of its practice, with the identity replaced) to the copy's patients extract. */
export function addBridge(dir: string, practices: { a: string; x: string; b: string }, withX: boolean): void {
  const file = join(dir, 'data/ehr/patients.csv.gz');
  const rows = parseCsv(gunzipSync(readFileSync(file)), { columns: true }) as Record<string, string>[];
  const header = Object.keys(rows[0]!);
  const added = BRIDGE.filter((r) => withX || r.at !== 'x').map((r) => {
    const template = rows.find((t) => t.practice_id === practices[r.at])!;
    return { ...template, patient_id: r.patient_id, mrn: r.patient_id, first_name: r.first_name, last_name: r.last_name, ssn: r.ssn, birth_date: '1931-07-19', sex: 'M', death_date: '' };
  });
  const line = (r: Record<string, string>) => header.map((h) => `"${(r[h] ?? '').replaceAll('"', '""')}"`).join(',');
  writeFileSync(file, gzipSync([header.join(','), ...[...rows, ...added].map(line)].join('\n') + '\n'));
}

/** Distinct person tokens of the bridge records in the vault: 1 while X links them, 2 once it does not. */
export const bridgePersons = async (q: Query): Promise<number> =>
  Number((await q(`SELECT count(DISTINCT person_token) AS n FROM vault.person_tokens WHERE patient_id LIKE 'bridge-%'`))[0]!.n);

/** Two condition rows for each bridge record (copies of two of its practice's), so that research slices hold the bridge person. */
export function addBridgeConditions(dir: string, practices: { a: string; x: string; b: string }): void {
  const file = join(dir, 'data/ehr/conditions.csv.gz');
  const rows = parseCsv(gunzipSync(readFileSync(file)), { columns: true }) as Record<string, string>[];
  const header = Object.keys(rows[0]!);
  const added = (['a', 'x', 'b'] as const).flatMap((at) =>
    rows
      .filter((r) => r.practice_id === practices[at])
      .slice(0, 2)
      .map((t, i) => ({ ...t, condition_id: `bridge-c-${at}-${i}`, patient_id: `bridge-${at}` })),
  );
  const line = (r: Record<string, string>) => header.map((h) => `"${(r[h] ?? '').replaceAll('"', '""')}"`).join(',');
  writeFileSync(file, gzipSync([header.join(','), ...[...rows, ...added].map(line)].join('\n') + '\n'));
}
