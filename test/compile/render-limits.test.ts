import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import type { Project } from '../../src/project/types.ts';
import { compileModel } from '../support/model-probe.ts';

/**
 * Red-team, 2026-12-07: macros b0…b9, each calling the one below ten times, hung compile with no
 * output (killed after 300 s); at six levels the SQL parser dumped its memory report; a macro
 * calling itself ended in "Maximum call stack size exceeded" at line 1, naming no macro; errors
 * raised while rendering (a missing helper, a `--vars` value that is no SQL literal) were all
 * reported at line 1.
 */
const MART = 'models/marts/x_render.sql';

function withMacros(macros: Record<string, string>): (p: Project) => void {
  return (p) => {
    for (const [name, body] of Object.entries(macros)) p.macros.push({ name, body, file: `macros/${name}.hbs`, line: 1 });
  };
}

function compile(sql: string, macros: Record<string, string>, edit?: (p: Project) => void): Diagnostic[] {
  return compileModel(MART, sql, { practice_id: 'none', x: 'none' }, [], [], (p) => {
    withMacros(macros)(p);
    edit?.(p);
  });
}

const tenfold = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`b${i}`, i === 0 ? '{{!-- params: value --}}\n{{value}}' : `{{!-- params: value --}}\n(${Array.from({ length: 10 }, () => `{{b${i - 1} value}}`).join(' + ')})`]));

describe('rendering limits and where rendering errors are', () => {
  it('a macro expansion of 10^9 calls stops at the limit with TSF211 naming a macro, at its line', () => {
    const started = performance.now();
    const errors = compile(`select e.practice_id,\n  {{b9 "1"}} as x\nfrom {{ref "stg_encounters"}} e`, tenfold);
    expect(errors.map((e) => e.code)).toEqual(['TSF211']);
    expect(errors[0]!.message).toMatch(/macro b\d: more than 10000 macro calls/);
    expect(errors[0]!.line).toBe(2);
    // not a timing assertion: a hang would never reach this line
    expect(performance.now() - started).toBeGreaterThan(0);
  });

  it.each([
    ['as a helper', '{{!-- params: value --}}\n{{rec value}}', '{{rec "1"}}'],
    ['as a partial', '{{> rec value=value}}', '{{> rec value="1"}}'],
  ])('a macro calling itself (%s) is TSF211 naming it, at its line', (_how, body, call) => {
    const errors = compile(`select e.practice_id,\n\n  ${call} as x\nfrom {{ref "stg_encounters"}} e`, { rec: body });
    expect(errors.map((e) => e.code)).toEqual(['TSF211']);
    expect(errors[0]!.message).toMatch(/macro rec: macros nested more than 32 deep \(does rec call itself\?\)/);
    expect(errors[0]!.line).toBe(3);
  });

  it('a missing helper is reported at its line', () => {
    const errors = compile(`select e.practice_id,\n  e.encounter_id,\n\n  {{nosuchhelper "a"}} as x\nfrom {{ref "stg_encounters"}} e`, {});
    expect(errors.map((e) => [e.code, e.line])).toEqual([['TSF211', 4]]);
  });

  it('a var that is no SQL literal names the var, at its line', () => {
    const errors = compile(`select e.practice_id,\n  {{var "x_list"}} as x\nfrom {{ref "stg_encounters"}} e`, {}, (p) => {
      p.config.vars = { ...p.config.vars, x_list: [1] };
    });
    expect(errors.map((e) => [e.code, e.line])).toEqual([['TSF211', 2]]);
    expect(errors[0]!.message).toContain("var 'x_list': a object cannot be a SQL literal");
  });
});
