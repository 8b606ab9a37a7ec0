import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { Codes } from '../../src/errors.ts';
import { scaffoldProject } from '../../src/init/scaffold-project.ts';

/**
 * Red-team, in a `tsform init` project: a unique_key naming a column the model does not output
 * passed `compile --strict`, its first build passed, and every later run failed every practice
 * with the engine's binder error about tsform's alias `st`; `{{this}}` in a table model compiled
 * and failed at run time with "Table … does not exist". Both are compile errors now (TSF205),
 * through the command CI runs (`tsform compile [--strict] --format json`).
 */

interface Found {
  file: string | null;
  line: number | null;
  code: string;
  severity: string;
  message: string;
}

const base = mkdtempSync(join(tmpdir(), 'tsform-ukey-compile-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeEach(() => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

let n = 0;
function project(files: Record<string, string>): string {
  const dir = join(base, `p${n++}`);
  scaffoldProject(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

async function compile(dir: string, ...flags: string[]): Promise<{ code: number; found: Found[] }> {
  const out: string[] = [];
  const code = await runCli(['node', 'tsform', 'compile', '--project-dir', dir, '--format', 'json', ...flags], (l) => out.push(l));
  const json = out.find((l) => l.startsWith('['));
  return { code, found: json ? (JSON.parse(json) as Found[]) : [] };
}

const errors = (f: Found[], code: string) => f.filter((d) => d.code === code && d.severity === 'error').map((d) => ({ at: `${d.file}:${d.line}`, message: d.message }));

const incremental = (key: string) => `-- one row per practice, day and visit type
{{config materialized="incremental" unique_key="${key}"}}
select practice_id, clinic_day, visit_type, visits, updated_at
from {{source "clinic" "daily_visits"}}
{{#if is_incremental}}
where updated_at >= (select max(updated_at) from {{this}})
{{/if}}
`;
const FILE = 'models/staging/stg_inc.sql';

describe('unique_key names output columns (compile --strict)', () => {
  it('a unique_key the SQL does not output is TSF205 at the {{config}} line, naming the column and the output columns', async () => {
    const { code, found } = await compile(project({ [FILE]: incremental('clinic_day,visit_kind') }), '--strict');
    expect(code).toBe(2);
    expect(errors(found, Codes.invalidConfig)).toEqual([
      {
        at: `${FILE}:2`,
        message: "stg_inc: unique_key 'visit_kind' is not an output column of the model's SQL (it outputs 'practice_id', 'clinic_day', 'visit_type', 'visits', 'updated_at'): a merge matches rows on it",
      },
    ]);
  });

  it('output columns pass, also one named by an alias', async () => {
    const sql = incremental('clinic_day,kind').replace('visit_type, visits', 'visit_type as kind, visits');
    const { found } = await compile(project({ [FILE]: sql }), '--strict');
    expect(errors(found, Codes.invalidConfig)).toEqual([]);
  });
});

describe('{{this}} outside an incremental model (compile)', () => {
  it.each([
    ['table', 'materialized="table"'],
    ['view', 'materialized="view"'],
    ['ephemeral', 'materialized="ephemeral"'],
  ])('a %s model reading {{this}} is TSF205 at the line of {{this}}', async (kind, config) => {
    const sql = `{{config ${config}}}\nselect practice_id, clinic_day\nfrom {{source "clinic" "daily_visits"}}\nwhere clinic_day > (select max(clinic_day) from {{this}})\n`;
    const { code, found } = await compile(project({ 'models/staging/stg_self.sql': sql }));
    expect(code).toBe(2);
    expect(errors(found, Codes.invalidConfig)).toEqual([
      { at: 'models/staging/stg_self.sql:4', message: expect.stringMatching(new RegExp(`^stg_self: \\{\\{this\\}\\} \\(the model's own relation\\) is for incremental models.*; an? ${kind} model`)) },
    ]);
  });

  // Red-team, 2026-12-07: only `{{this}}` was recognized; these render the same relation.
  it.each(['{{@root}}', '{{this.this}}', '{{./this}}', '{{[this]}}', '{{.}}'])('%s in a table model is the same TSF205', async (spelling) => {
    const sql = `select practice_id, clinic_day\nfrom {{source "clinic" "daily_visits"}}\nwhere clinic_day > (select max(clinic_day) from ${spelling})\n`;
    const { code, found } = await compile(project({ 'models/staging/stg_self2.sql': sql }));
    expect(code).toBe(2);
    expect(errors(found, Codes.invalidConfig).map((e) => e.at)).toEqual(['models/staging/stg_self2.sql:3']);
  });

  it('{{config}} inside a block is TSF205: it applied whatever the condition', async () => {
    const sql = `{{#if is_incremental}}{{config materialized="view"}}{{/if}}\nselect practice_id, clinic_day from {{source "clinic" "daily_visits"}}\n`;
    const { code, found } = await compile(project({ 'models/staging/stg_cfg.sql': sql }));
    expect(code).toBe(2);
    expect(errors(found, Codes.invalidConfig)).toEqual([{ at: 'models/staging/stg_cfg.sql:1', message: expect.stringMatching(/\{\{config\}\} inside a \{\{#…\}\} block is read whatever the block decides/) }]);
  });

  it('an incremental model reads {{this}}', async () => {
    const { code, found } = await compile(project({ [FILE]: incremental('clinic_day,visit_type') }));
    expect(errors(found, Codes.invalidConfig)).toEqual([]);
    expect(code).toBe(0);
  });
});
