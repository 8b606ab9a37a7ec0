import { describe, expect, it } from 'vitest';
import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { Project } from '../../src/project/types.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * Issue 12, fail closed: the gate analyses a rendering where `ref`, `source` and `this` are
 * reserved names, and the run executes one where they are the real relations. A template that
 * could read that text could choose a harmless column for the analysis and the SSN for the run:
 * `{{#if (lookup this (lookup (ref "encounter_classes") 1))}}1{{else}}p.ssn{{/if}}` compiled
 * clean and executed `p.ssn`. Each variant below must either be refused or execute exactly what
 * was analysed.
 */
const base = loadProject(REPO_ROOT);

type Outcome = { refused: string[] } | { sql: string[] };

function compileAttack(macroBody: string, modelSql: string): Outcome {
  const project: Project = structuredClone(base);
  project.macros.push({ name: 'pick', body: macroBody, file: 'macros/pick.hbs', line: 1 });
  project.models.push({ name: 'x_attack', file: 'models/research/x_attack.sql', line: 1, sql: modelSql });
  try {
    const { manifest } = compileLoadedProject(project, { write: false });
    const node = manifest.models.x_attack!;
    return { sql: [node.compiled_sql, node.compiled_incremental_sql ?? ''] };
  } catch (err) {
    if (err instanceof DiagnosticsError) return { refused: err.diagnostics.map((d) => `${d.code} ${d.message}`) };
    throw err;
  }
}

const SEED = '{{ref "encounter_classes"}}';
const model = (pick: string) => `select p.practice_id, ${pick} as v from {{ref "stg_patients"}} p cross join (select count(*) as c from ${SEED}) s`;

/** [what, macro body, the model's pick expression] */
const variants: [string, string, string][] = [
  ['lookup of a character of ref as a key', `{{#if (lookup this (lookup (ref "encounter_classes") 1))}}1{{else}}p.ssn{{/if}}`, '{{pick _=1}}'],
  ['a character of ref through with', `{{#with (ref "encounter_classes")}}{{#if [27]}}1{{else}}p.ssn{{/if}}{{/with}}`, '{{pick}}'],
  ['each over ref', `{{#each (ref "encounter_classes")}}{{#if @last}}{{#if @index}}1{{/if}}{{/if}}{{else}}p.ssn{{/each}}`, '{{pick}}'],
  ['a character of ref through a nested with', `{{#with (ref "encounter_classes")}}{{#with [27]}}1{{else}}p.ssn{{/with}}{{/with}}`, '{{pick}}'],
  // zip3 "p.zip" renders to 189 characters for the run and 210 for the lineage analysis (wrapped in tsf_generalized(…), the seed under its reserved name)
  ['a character of a generalizer\'s output', `{{#with (zip3 "p.zip")}}{{#if [200]}}1{{else}}p.ssn{{/if}}{{/with}}`, '{{pick}}'],
  ['ref passed to a macro as an argument', `{{#with rel}}{{#if [27]}}1{{else}}p.ssn{{/if}}{{/with}}`, `{{pick rel=(ref "encounter_classes")}}`],
];

describe('a template cannot tell the analysed rendering from the executed one', () => {
  it.each(variants)('%s', (_what, macro, pick) => {
    const out = compileAttack(macro, model(pick));
    if ('refused' in out) {
      expect(out.refused.length).toBeGreaterThan(0);
    } else {
      // What compiled clean is what was analysed: the harmless branch, in every rendering.
      for (const sql of out.sql) expect(sql).not.toMatch(/ssn/);
    }
  });

  it('the model root: this, its characters and its toString', () => {
    for (const pick of ['{{#with this}}{{#if [20]}}1{{else}}p.ssn{{/if}}{{/with}}', '{{#with this.toString}}{{#if [20]}}1{{else}}p.ssn{{/if}}{{/with}}', '{{#if this.length}}1{{else}}p.ssn{{/if}}']) {
      const out = compileAttack('1', `select p.practice_id, ${pick} as v from {{ref "stg_patients"}} p cross join (select count(*) as c from ${SEED}) s`);
      if ('sql' in out) for (const sql of out.sql) expect(sql).not.toMatch(/ssn/);
    }
  });

  it('lookup is refused with a message that says why', () => {
    const out = compileAttack(`{{lookup this "x"}}`, model('{{pick}}'));
    expect('refused' in out && out.refused.join('\n')).toMatch(/TSF211.*lookup helper is not available/);
  });

  it('ref, source and this still render to their relations', () => {
    const out = compileAttack('{{ref "encounter_classes"}}', `select p.practice_id, 1 as v from {{ref "stg_patients"}} p cross join (select count(*) as c from {{pick}}) s`);
    expect('sql' in out && out.sql[0]).toMatch(/"encounter_classes"/);
  });
});
