import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * tenants.yml is the platform's customer list. Before this check a global or shared model in
 * marts built from `{{ref "tenants"}}` compiled clean, and every practice role read every
 * practice's name, time zone, SLA and tags there.
 */
const brief = (files: Record<string, string>) => demoCopyErrors(files).map((d) => ({ code: d.code, file: d.file, line: d.line }));

describe("the list of practices never lands where practice roles read", () => {
  it('a global model in marts reading tenants: TSF208 at the ref', () => {
    const errors = demoCopyErrors({ 'models/marts/all_practices.sql': `{{config scope="global"}}\nselect t.practice_id, t.name\nfrom {{ref "tenants"}} t\n` });
    expect(errors.map((d) => ({ code: d.code, file: d.file, line: d.line }))).toEqual([{ code: Codes.globalReadsIdentifiable, file: 'models/marts/all_practices.sql', line: 3 }]);
    expect(errors[0]!.message).toContain("lands in schema 'marts', which practice roles read");
  });

  it('an aggregate of it too (how many practices the platform has)', () => {
    expect(brief({ 'models/marts/practice_count.sql': `{{config scope="global"}}\nselect count(*) as practices from {{ref "tenants"}} t\n` })).toEqual([
      { code: Codes.globalReadsIdentifiable, file: 'models/marts/practice_count.sql', line: 2 },
    ]);
  });

  it('a shared model in marts', () => {
    expect(brief({ 'models/marts/zones.sql': `{{config scope="shared"}}\nselect distinct t.timezone from {{ref "tenants"}} t\n` })).toEqual([
      { code: Codes.globalReadsIdentifiable, file: 'models/marts/zones.sql', line: 2 },
    ]);
  });

  it('through a shared model kept elsewhere', () => {
    const errors = demoCopyErrors({
      'models/staging/practice_list.sql': `{{config scope="shared" schema="ops_internal"}}\nselect t.practice_id, t.name from {{ref "tenants"}} t\n`,
      'models/marts/practice_names.sql': `{{config scope="global"}}\nselect p.name\nfrom {{ref "practice_list"}} p\n`,
    });
    expect(errors.map((d) => ({ code: d.code, file: d.file, line: d.line }))).toEqual([{ code: Codes.globalReadsIdentifiable, file: 'models/marts/practice_names.sql', line: 3 }]);
    expect(errors[0]!.message).toContain("through 'practice_list'");
  });

  it('in any schema policies.yml grants to practice roles (the demo grants staging too)', () => {
    expect(brief({ 'models/staging/practice_list.sql': `{{config scope="shared"}}\nselect t.practice_id from {{ref "tenants"}} t\n` })).toEqual([
      { code: Codes.globalReadsIdentifiable, file: 'models/staging/practice_list.sql', line: 2 },
    ]);
    const policies = readFileSync(join(REPO_ROOT, 'policies/policies.yml'), 'utf8');
    const granted = policies.includes('practice_roles:') ? policies.replace(/practice_roles: \[[^\]]*\]/, 'practice_roles: [marts, reporting]') : `${policies}\ngrants:\n  practice_roles: [marts, reporting]\n`;
    expect(granted).toContain('reporting');
    expect(
      brief({
        'policies/policies.yml': granted,
        'models/marts/all_practices.sql': `{{config scope="global" schema="reporting"}}\nselect t.practice_id, t.name from {{ref "tenants"}} t\n`,
      }),
    ).toEqual([{ code: Codes.globalReadsIdentifiable, file: 'models/marts/all_practices.sql', line: 2 }]);
  });

  it('a tenant-scoped model reads its own practice row, and a global model where practice roles do not read compiles', () => {
    expect(
      brief({
        'models/marts/my_practice.sql': `select t.practice_id, t.name, t.timezone from {{ref "tenants"}} t\n`,
        'models/marts/ops_practice_list.sql': `{{config scope="global" schema="ops_internal"}}\nselect t.practice_id, t.name from {{ref "tenants"}} t\n`,
      }),
    ).toEqual([]);
  });

  // red-team, 2026-12-07: one model further, each practice's marts slice held every other
  // practice's id and name (5 slices, 20 of 25 rows another practice's), in batches and alone
  it('a tenant-scoped model reading a global or shared model built from tenants, kept where practice roles do not read: TSF231 at the ref', () => {
    for (const scope of ['global', 'shared']) {
      const errors = demoCopyErrors({
        'models/marts/ops_all_practices.sql': `{{config scope="${scope}" schema="ops"}}\nselect t.practice_id as pid, t.name, t.timezone, t.tags from {{ref "tenants"}} t\n`,
        'models/marts/x_names.sql': `select t.practice_id, a.pid as other_id, a.name as other_name\nfrom {{ref "tenants"}} t\ncross join {{ref "ops_all_practices"}} a\n`,
      });
      expect(errors.map((d) => ({ code: d.code, file: d.file, line: d.line })), scope).toEqual([{ code: Codes.batchMixesPractices, file: 'models/marts/x_names.sql', line: 3 }]);
      expect(errors[0]!.message).toContain(`reads 'ops_all_practices', a ${scope} relation built from every practice's rows (tenants.yml's relation)`);
    }
  });

  it('through two global models, read beside a staging model', () => {
    const files = {
      'models/marts/ops_all_practices.sql': `{{config scope="global" schema="ops"}}\nselect t.practice_id as pid, t.name from {{ref "tenants"}} t\n`,
      'models/marts/ops_practice_names.sql': `{{config scope="global" schema="ops"}}\nselect a.name from {{ref "ops_all_practices"}} a\n`,
      'models/marts/x_names.sql': `select p.practice_id, n.name from {{ref "stg_patients"}} p cross join {{ref "ops_practice_names"}} n\n`,
    };
    expect(brief(files)).toEqual([{ code: Codes.batchMixesPractices, file: 'models/marts/x_names.sql', line: 1 }]);
  });
});

describe('what a tenant-scoped model may read beside its own rows', () => {
  it('a global relation built from seeds alone', () => {
    expect(
      brief({
        'models/marts/class_labels.sql': `{{config scope="global"}}\nselect c.encounter_class, upper(c.encounter_class) as label from {{ref "encounter_classes"}} c\n`,
        'models/marts/x_labelled.sql': `select e.practice_id, e.encounter_id, l.label\nfrom {{ref "stg_encounters"}} e join {{ref "class_labels"}} l on l.encounter_class = e.encounter_class\n`,
      }),
    ).toEqual([]);
  });
});
