import { describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';

/**
 * A macro is registered as a Handlebars helper after the built-in ones, so before this check a
 * `macros/ref.hbs` replaced `{{ref}}` in every model (what a model reads), `macros/each.hbs`,
 * `with.hbs`, `this.hbs` or `is_incremental.hbs` compiled clean and changed what every check
 * renders through. And a model named `__tsf_ref_<model>` took a name of the renderings the
 * lineage analysis reads (CTEs of that prefix were already refused).
 */

const errorsOf = (files: Record<string, string>) => demoCopyErrors(files);

const brief = (ds: Diagnostic[]) => ds.map((d) => ({ code: d.code, file: d.file, line: d.line }));

describe('macro names that would replace a built-in helper or template field', () => {
  for (const name of ['ref', 'source', 'config', 'var', 'this', 'is_incremental', 'args', 'if', 'unless', 'each', 'with', 'lookup', 'log', 'helperMissing', 'blockHelperMissing']) {
    it(`macros/${name}.hbs is TSF104 at the file`, () => {
      const errors = errorsOf({ [`macros/${name}.hbs`]: '{{!-- params: a --}}\n{{a}}' });
      expect(brief(errors)).toEqual([{ code: Codes.duplicateModel, file: `macros/${name}.hbs`, line: 1 }]);
      expect(errors[0]!.message).toContain('is reserved');
    });
  }

  it('a macro whose name only resembles one (Handlebars names are case-sensitive) is a macro', () => {
    expect(errorsOf({ 'macros/Each.hbs': '{{!-- params: a --}}\n{{a}}', 'macros/refs.hbs': '{{!-- params: a --}}\n{{a}}' })).toEqual([]);
  });
});

describe('names with the prefix of the analysed renderings', () => {
  it('a model named __tsf_ref_stg_patients is TSF104', () => {
    expect(brief(errorsOf({ 'models/marts/__tsf_ref_stg_patients.sql': 'select 1 as a' }))).toEqual([
      { code: Codes.duplicateModel, file: 'models/marts/__tsf_ref_stg_patients.sql', line: 1 },
    ]);
  });

  it('a seed named __TSF_src_ehr__patients is TSF104', () => {
    expect(brief(errorsOf({ 'seeds/__TSF_src_ehr__patients.csv': 'a\n1\n' }))).toEqual([{ code: Codes.duplicateModel, file: 'seeds/__TSF_src_ehr__patients.csv', line: 1 }]);
  });
});
