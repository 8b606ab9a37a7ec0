import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Red-team, 2026-12-08: `{{config}}` values were read in silence — `pseudonymized="yes"` and
 * `pseudonymized=1` as false, `tags="a,b" tags="c"` as c, and `materialized=view` (unquoted) got
 * "needs literal arguments" without saying to quote it. Each is now an error at the line.
 */
afterAll(removeTempProjects);

function errors(config: string, extra: Record<string, string> = {}) {
  const dir = writeTempProject({
    ...MINIMAL_PROJECT,
    'models/base.sql': 'select 1 as practice_id, 2 as visits\n',
    'models/m.sql': `select practice_id, visits\nfrom {{ref "base"}}\n${config}\n`,
    ...extra,
  });
  return compileDir(dir)
    .diagnostics.filter((d) => d.severity === 'error')
    .map((d) => ({ code: d.code, file: d.file, line: d.line, message: d.message }));
}

describe('{{config}} values are what their keys take', () => {
  it.each([
    ['pseudonymized="yes"', /pseudonymized is true or false, not "yes" \(pseudonymized=true\)/],
    ['pseudonymized=1', /pseudonymized is true or false, not 1/],
    ['batch_incremental="on"', /batch_incremental is true or false, not "on"/],
    ['materialized=1', /materialized takes quoted text, not 1 \(materialized="…"\)/],
  ])('%s is TSF205 at the line', (pair, message) => {
    const found = errors(`{{config ${pair}}}`);
    expect(found.map((f) => [f.code, f.file, f.line])).toEqual([[Codes.invalidConfig, 'models/m.sql', 3]]);
    expect(found[0]!.message).toMatch(message);
  });

  it('a key given twice, in one {{config}} or in two, is TSF205 at the second', () => {
    const once = errors('{{config tags="a,b" tags="c"}}');
    expect(once.map((f) => [f.code, f.line])).toEqual([[Codes.invalidConfig, 3]]);
    expect(once[0]!.message).toContain(`config key 'tags' is given twice; give it once (a list is one value: tags="a,b")`);
    const twice = errors('{{config materialized="view"}}\n{{config materialized="table"}}');
    expect(twice.map((f) => [f.code, f.line])).toEqual([[Codes.invalidConfig, 4]]);
  });

  it('an unquoted value says to quote it (TSF204), for config and ref alike', () => {
    const found = errors('{{config materialized=view}}');
    expect(found.map((f) => [f.code, f.line])).toEqual([[Codes.dynamicArgument, 3]]);
    expect(found[0]!.message).toContain('quote the value, "view"');
    const ref = errors('', { 'models/r.sql': 'select practice_id from {{ref base}}\n' });
    expect(ref.map((f) => [f.code, f.file])).toEqual([[Codes.dynamicArgument, 'models/r.sql']]);
    expect(ref[0]!.message).toContain('quote the value, "base"');
  });

  it('k_anonymity_count outside the published research schema is TSF205 (nothing would suppress small cells)', () => {
    const found = errors('{{config k_anonymity_count="visits"}}');
    expect(found.map((f) => [f.code, f.line])).toEqual([[Codes.invalidConfig, 3]]);
    expect(found[0]!.message).toMatch(/k_anonymity_count is for published aggregates \(schema 'research'.*in schema 'marts' nothing reads it/);
  });

  it('a misspelt key gets the closest one', () => {
    expect(errors('{{config materialised="view"}}')[0]!.message).toContain("unknown config key 'materialised' (did you mean 'materialized'?)");
  });

  it('true, false and their quoted forms, and a quoted view, still compile', () => {
    expect(errors('{{config materialized="view" batch_incremental=false}}')).toEqual([]);
    expect(errors('{{config tags="a,b" pseudonymized="false" batch_incremental="true"}}')).toEqual([]);
  });
});
