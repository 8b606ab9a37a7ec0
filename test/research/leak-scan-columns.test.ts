import { beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import type { Manifest } from '../../src/artifacts/manifest.ts';
import { scanRelations } from '../../src/execute/leak-scan.ts';
import type { PrivacyConfig } from '../../src/project/types.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { twoEngines } from '../support/two-engines.ts';

/**
 * Which values the leak scan takes as identifiers, whatever the columns are called: it reads each
 * identifier relation once and unpivots its columns (leak-scan.ts), so a column named like one of
 * the scan's own aliases (`r`, `x`, `v`, `t`, `patient_id`) must still be read as itself. Every
 * `direct` column is an identifier; a quasi-identifier only on its own person's row; a batch's
 * scan takes its own practices' identifiers only. Values shaped like an SSN, a phone number or an
 * email address are findings by their shape alone. Counts only: no value is printed.
 */

const IDENTITY = 'people';
// Column names chosen to collide with the aliases of the scan's SQL.
const columns = {
  practice_id: { phi: 'none' },
  r: { phi: 'direct' }, // the patient id
  x: { phi: 'direct' }, // a name
  t: { phi: 'direct' }, // an MRN
  v: { phi: 'quasi' }, // a ZIP: per person only
} as const;

function node(name: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { name, schema: 'src', identifier: name, scope: 'tenant', materialized: 'table', depends_on: [], columns: {}, ...extra };
}

const manifest = {
  tenant_column: 'practice_id',
  sources: {},
  seeds: {},
  tests: {},
  tenants: ['p_a', 'p_b'],
  models: {
    [IDENTITY]: node(IDENTITY, { kind: 'model', pseudonymized: false, columns }),
    pseudo_out: node('pseudo_out', { kind: 'model', pseudonymized: true, depends_on: [IDENTITY] }),
  },
  builtins: { vault: node('tokens', { kind: 'vault', schema: 'vlt', identity_model: IDENTITY }) },
} as unknown as Manifest;

const privacy = {
  k: 5,
  identityModel: IDENTITY,
  identity: { patientId: 'r', firstName: 'x', lastName: 'x', birthDate: 'v', sex: 'x', linkage: {} },
} as unknown as PrivacyConfig;

// Two persons at p_a, one at p_b; every value distinct and long enough to be compared.
const people = [
  { practice: 'p_a', id: 'PID-100234', name: 'Zebediah', mrn: 'MRN-551-872', zip: '02139', token: 'pt_aaaa0001' },
  { practice: 'p_a', id: 'PID-100777', name: 'Philippa', mrn: 'MRN-551-999', zip: '94110', token: 'pt_aaaa0002' },
  { practice: 'p_b', id: 'PID-200999', name: 'Quentinus', mrn: 'MRN-662-001', zip: '60614', token: 'pt_bbbb0001' },
];

describe.each(twoEngines('leak-columns'))('leak scan identifiers on $name', (engine) => {
  const a = (): Adapter => engine.adapter();

  beforeAll(async () => {
    await a().ensureSchema('src');
    await a().ensureSchema('vlt');
    await a().query(`CREATE TABLE src.${IDENTITY} (practice_id VARCHAR, r VARCHAR, x VARCHAR, t VARCHAR, v VARCHAR)`);
    await a().query('CREATE TABLE vlt.tokens (practice_id VARCHAR, patient_id VARCHAR, person_token VARCHAR)');
    for (const p of people) {
      await a().query(`INSERT INTO src.${IDENTITY} VALUES ($1, $2, $3, $4, $5)`, [p.practice, p.id, p.name, p.mrn, p.zip]);
      await a().query('INSERT INTO vlt.tokens VALUES ($1, $2, $3)', [p.practice, p.id, p.token]);
    }
  });

  /** Findings for one staged row per (token, published value), scanned as a batch of `tenants`. */
  async function scan(rows: [token: string, published: string][], tenants?: string[]): Promise<Record<string, number>> {
    return a().transaction(async (s) => {
      await s.createTempTableAs('staged', `SELECT CAST(NULL AS VARCHAR) AS person_token, CAST(NULL AS VARCHAR) AS published WHERE 1 = 0`, []);
      for (const [token, published] of rows) await s.query(`INSERT INTO ${quoteIdent('staged')} VALUES ($1, $2)`, [token, published]);
      const findings = await scanRelations(s, manifest, privacy, [manifest.models.pseudo_out!], [{ name: 'staged', relationSql: quoteIdent('staged'), columns: ['person_token', 'published'] }], tenants);
      await s.query(`DROP TABLE ${quoteIdent('staged')}`);
      return Object.fromEntries(findings.map((f) => [f.column, f.rows]));
    });
  }

  it('every direct column is an identifier, whatever it is called', async () => {
    const [zeb] = people;
    expect(await scan([[zeb!.token, `seen ${zeb!.name.toUpperCase()} today`]])).toEqual({ published: 1 });
    expect(await scan([[zeb!.token, zeb!.mrn.replace(/-/g, '')]])).toEqual({ published: 1 });
    expect(await scan([[zeb!.token, zeb!.id.toLowerCase()]])).toEqual({ published: 1 });
    expect(await scan([[zeb!.token, 'routine visit']])).toEqual({});
  });

  it('a quasi-identifier is a finding on its own person row only', async () => {
    const [zeb, phil] = people;
    expect(await scan([[zeb!.token, zeb!.zip]])).toEqual({ published: 1 });
    expect(await scan([[phil!.token, zeb!.zip]])).toEqual({});
  });

  // A new source column declared `none` holds identifiers no declared column has: their shape
  // alone is a finding. Separators are required, so numbers, dates, codes and tokens are not.
  it.each([
    ['an SSN of nobody here', '999-12-3456'],
    ['an SSN inside text', 'ssn 123-45-6789 noted'],
    ['a phone number (area code in parentheses)', 'call (617) 555-0123'],
    ['a phone number with dashes', '617-555-0123'],
    ['a phone number with dots', '617.555.0123'],
    ['an email address', 'Jane.Doe+x@Example.org'],
  ])('a value shaped like an identifier is a finding whoever it belongs to: %s', async (_what, value) => {
    expect(await scan([['pt_nobody', value]])).toEqual({ published: 1 });
  });

  it('numbers, dates, codes, ranges and tokens are not identifier shapes', async () => {
    const controls = ['2020-01-15', '2020-01', '1999-12-31 00:00:00', '-1234.56', '1234567890', '123-4567', '840544004', '42.3601', '-71.0589', 'Body mass index 30.0-39.9', '12-345-6789', '555.12.3456', 'ab@c', 'E11.9', `pt_${'0123456789abcdef'.repeat(4)}`];
    expect(await scan(controls.map((c) => ['pt_nobody', c]))).toEqual({});
  });

  it("a batch's scan holds its own practices' identifiers, and every practice's without a batch", async () => {
    const quentin = people[2]!;
    expect(await scan([[quentin.token, quentin.name]], ['p_a'])).toEqual({});
    expect(await scan([[quentin.token, quentin.name]], ['p_b'])).toEqual({ published: 1 });
    expect(await scan([[quentin.token, quentin.name]])).toEqual({ published: 1 });
    expect(await scan([[quentin.token, quentin.zip]], ['p_b'])).toEqual({ published: 1 });
  });

  // The scan computes its values' forms once for every target (leak-scan.ts stageValueForms):
  // each target must still be matched on its own values and its own rows' persons only.
  it('several targets in one scan: each is matched on its own values and rows', async () => {
    const [zeb, phil] = people;
    const findings = await a().transaction(async (s) => {
      const tables: Record<string, [string, string][]> = { clean: [[zeb!.token, phil!.zip], [phil!.token, 'routine visit']], leaking: [[zeb!.token, zeb!.zip], [phil!.token, 'routine visit'], [phil!.token, `seen ${phil!.name}`]] };
      for (const [name, rows] of Object.entries(tables)) {
        await s.createTempTableAs(name, `SELECT CAST(NULL AS VARCHAR) AS person_token, CAST(NULL AS VARCHAR) AS published WHERE 1 = 0`, []);
        for (const [token, published] of rows) await s.query(`INSERT INTO ${quoteIdent(name)} VALUES ($1, $2)`, [token, published]);
      }
      const targets = Object.keys(tables).map((name) => ({ name, relationSql: quoteIdent(name), columns: ['person_token', 'published'] }));
      const out = await scanRelations(s, manifest, privacy, [manifest.models.pseudo_out!], targets);
      for (const name of Object.keys(tables)) await s.query(`DROP TABLE ${quoteIdent(name)}`);
      return out;
    });
    expect(findings).toEqual([{ relation: 'leaking', column: 'published', rows: 2, kind: 'identifier' }]);
  });
});
