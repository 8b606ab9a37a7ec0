import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ManifestNode } from '../../src/artifacts/manifest.ts';
import { TsformError } from '../../src/errors.ts';
import { buildVaultTokens } from '../../src/execute/vault.ts';
import { linkageNotes, retokenizeLinkage } from '../../src/execute/vault-linkage.ts';
import { DEFAULT_LINKAGE } from '../../src/project/linkage-config.ts';
import type { PrivacyConfig } from '../../src/project/types.ts';
import { dateShiftDays, keyFingerprint } from '../../src/security/pseudonymize.ts';
import { twoEngines } from '../support/two-engines.ts';

/**
 * The vault's linkage on both engines (issue 17): a person spans practices; a corrected identity
 * heals a split with the larger side's token; near-empty identities stay alone; a change of the
 * linkage settings is refused (TSF421) until `tsform vault retokenize`. Identities are synthetic;
 * assertions compare token equality and counts.
 */

const KEY = createHash('sha256').update('tsform linkage vault test key').digest();
const VAULT_KEY = { key: KEY, fingerprint: keyFingerprint(KEY) };
const TOKENS = { schema: 'vault', identifier: 'person_tokens' } as ManifestNode;
const IDENTITY = { schema: 'staging', identifier: 'stg_patients' } as ManifestNode;
const privacyWith = (linkage = DEFAULT_LINKAGE): PrivacyConfig => ({
  k: 11,
  identityModel: 'stg_patients',
  identity: { patientId: 'patient_id', firstName: 'first_name', lastName: 'last_name', birthDate: 'birth_date', sex: 'sex', ssn: 'ssn', linkage },
  keyEnv: 'TSFORM_VAULT_KEY',
  generalizers: {},
  notIdentifiers: [],
});

type Row = [practice: string, patient: string, first: string | null, last: string | null, dob: string | null, sex: string | null, ssn: string | null];
const ROWS: Row[] = [
  ['p1', 'a1', 'William', 'Hartmann', '1968-11-23', 'M', null],
  ['p2', 'b1', 'Xilliam', 'Hatrmann', '1968-11-23', 'M', null], // two typos: another person until corrected
  ['p3', 'c1', 'Bill', 'HARTMANN', '1968-11-23', 'M', null],
  ['p1', 'e1', null, null, null, 'F', null],
  ['p2', 'e2', null, null, null, 'F', null],
];

const engines = twoEngines('linkage');

describe.each(engines)('vault linkage on $name', (engine) => {
  const db = () => engine.adapter();
  const build = (tenants: string[], privacy = privacyWith()) =>
    db().transaction((s) => buildVaultTokens(s, TOKENS, IDENTITY, tenants, 'practice_id', privacy, VAULT_KEY));
  const tokens = async (): Promise<Map<string, string>> => {
    const { rows } = await db().query('SELECT patient_id, person_token FROM vault.person_tokens');
    return new Map(rows.map((r) => [String(r.patient_id), String(r.person_token)]));
  };

  beforeAll(async () => {
    await db().ensureSchema('staging');
    await db().ensureSchema('vault');
    await db().query('CREATE TABLE staging.stg_patients (practice_id VARCHAR, patient_id VARCHAR, first_name VARCHAR, last_name VARCHAR, birth_date VARCHAR, sex VARCHAR, ssn VARCHAR)');
    for (const r of ROWS) await db().query('INSERT INTO staging.stg_patients VALUES ($1, $2, $3, $4, $5, $6, $7)', r);
  });

  it('one person across practices: a record joining does not change the token; a near-empty identity stays alone', async () => {
    await build(['p1']);
    const first = await tokens();
    await build(['p2']);
    const { linkage } = await build(['p3']);
    const t = await tokens();
    expect(t.get('c1')).toBe(first.get('a1'));
    expect(t.get('a1')).toBe(first.get('a1'));
    expect(t.get('b1')).not.toBe(t.get('a1'));
    expect(t.get('e1')).not.toBe(t.get('e2'));
    expect(linkage).toMatchObject({ records: 5, persons: 4, sparse: 2, merges: 0 });
    expect(linkageNotes(linkage)[0]).toMatch(/2 near-empty identit\(ies\) kept as persons of their own/);
    // nothing changed: the last resolution holds and is not repeated
    const again = await build(['p1']);
    expect(again.linkage.resolved).toBe(false);
    expect(await tokens()).toEqual(t);
  });

  it('a corrected identity is re-keyed and heals the split; the larger side keeps its token, the date shift follows', async () => {
    const before = await tokens();
    await db().query("UPDATE staging.stg_patients SET first_name = 'William', last_name = 'Hartmann' WHERE patient_id = 'b1'");
    const { linkage } = await build(['p2']);
    const after = await tokens();
    expect(after.get('b1')).toBe(before.get('a1'));
    expect(after.get('a1')).toBe(before.get('a1'));
    expect(after.get('c1')).toBe(before.get('a1'));
    expect(linkage).toMatchObject({ rekeyed: 1, merges: 1, retokenized: 1 });
    const { rows } = await db().query('SELECT person_token, date_shift_days FROM vault.person_tokens');
    for (const r of rows) expect(Number(r.date_shift_days)).toBe(dateShiftDays(KEY, String(r.person_token)));
    const events = await db().query('SELECT sum(merges) AS merges FROM vault.linkage_events');
    expect(Number(events.rows[0]!.merges)).toBe(1);
  });

  it('refuses changed linkage settings (TSF421) until re-tokenized; tokens survive re-tokenization', async () => {
    const before = await tokens();
    const changed = privacyWith({ ...DEFAULT_LINKAGE, birthDateTolerance: 'exact' });
    const err = await build(['p1'], changed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe('TSF421');
    expect((err as TsformError).message).toMatch(/tsform vault retokenize/);
    expect(await tokens()).toEqual(before);
    const { records } = await retokenizeLinkage(db(), 'vault');
    expect(records).toBe(5);
    await build(['p1', 'p2', 'p3'], changed);
    expect(await tokens()).toEqual(before);
  });
});
