import { describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { partitionName } from '../../src/sql/partition-names.ts';
import { compileModel, shown } from '../support/model-probe.ts';

/**
 * A model may not take the name of a partition of a tenant-scoped model's table (PostgreSQL,
 * partition_by_practice, which a target can turn on at any time). Red-team, 2026-12-07: a shared
 * table named `practice_daily_activity__rest` dropped the default partition, 5 of 6 practices'
 * rows with it, and the run said success; a view named `provider_panel__h1` dropped a hash
 * partition. The check is on names alone, so it holds whether partitioning is on or not.
 */

const SHARED = `{{config scope="shared"}}\nselect encounter_class from {{ref "encounter_classes"}}\n`;
const TENANT_VIEW = `{{config materialized="view"}}\nselect practice_id, patient_id from {{ref "stg_patients"}}\n`;
const TENANT_TABLE = `select practice_id, patient_id from {{ref "stg_patients"}}\n`;
const NONE = {} as const;

const refusal = (name: string, table: string) =>
  new RegExp(`^${name}: its relation marts\\.${name} is the name of a partition of model ${table}'s table when it is partitioned by practice`);

describe("a model named like a partition of another model's table", () => {
  for (const [name, sql, table] of [
    ['practice_daily_activity__rest', SHARED, 'practice_daily_activity'],
    ['provider_panel__h1', TENANT_VIEW, 'provider_panel'],
    ['provider_panel__h12', TENANT_TABLE, 'provider_panel'],
    ['provider_panel__p3', TENANT_TABLE, 'provider_panel'],
    ['Provider_Panel__REST', TENANT_TABLE, 'provider_panel'],
  ] as const) {
    it(`refuses ${name} (TSF205 at its file)`, () => {
      const errors = compileModel(`models/marts/${name}.sql`, sql, NONE).filter((e) => e.code === Codes.invalidConfig);
      expect(errors.map((e) => e.file), shown(errors)).toEqual([`models/marts/${name}.sql`]);
      expect(errors[0]!.message).toMatch(refusal(name, table));
    });
  }

  it('refuses the hashed form of a long table name', () => {
    const long = `wide_${'x'.repeat(58)}`;
    const partition = partitionName(long, '__h0');
    expect(partition).not.toBe(`${long}__h0`);
    const errors = compileModel(`models/marts/${partition}.sql`, TENANT_TABLE, NONE, [{ file: `models/marts/${long}.sql`, sql: TENANT_TABLE }]).filter((e) => e.code === Codes.invalidConfig);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(refusal(partition, long))]);
  });

  it("refuses a model named like a partition of a captured source's raw table, and a seed like one of a model's", () => {
    const raw = compileModel('models/marts/patients__rest.sql', `{{config schema="raw"}}\n${TENANT_TABLE}`, NONE).filter((e) => e.code === Codes.invalidConfig);
    expect(raw.map((e) => e.message)).toEqual([expect.stringMatching(/^patients__rest: its relation raw\.patients__rest is the name of a partition of the table of source ehr\.patients when/)]);
    const seed = compileModel('models/marts/lookup.sql', `{{config schema="ref"}}\n${TENANT_TABLE}`, NONE, [], [{ name: 'lookup__h0', rows: [['code'], ['a']] }]).filter((e) => e.code === Codes.invalidConfig);
    expect(seed.map((e) => ({ file: e.file, message: e.message }))).toEqual([
      { file: 'seeds/lookup__h0.csv', message: expect.stringMatching(/^lookup__h0: its relation ref\.lookup__h0 is the name of a partition of model lookup's table when .*; rename the seed$/) },
    ]);
  });

  it('accepts such a suffix without a tenant-scoped model of that name in the schema', () => {
    for (const [name, sql] of [
      ['daily_totals__rest', TENANT_TABLE],
      ['provider_panel__history', TENANT_TABLE],
      // Names no partition has: __p counts from 1, and no number has a leading zero.
      ['provider_panel__p0', TENANT_TABLE],
      ['provider_panel__h01', TENANT_TABLE],
    ] as const) {
      expect(compileModel(`models/marts/${name}.sql`, sql, NONE).filter((e) => e.code === Codes.invalidConfig)).toEqual([]);
    }
    // The same name in another schema is another relation.
    const other = compileModel('models/marts/provider_panel__h1.sql', `{{config schema="ops"}}\n${TENANT_TABLE}`, NONE).filter((e) => e.code === Codes.invalidConfig);
    expect(shown(other)).toBe('(compiles)');
  });
});
