import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { brief, compileDir, fixtureDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/** 1-based line of the first line of `file` (under `dir`) that contains `needle`. */
function lineOf(dir: string, file: string, needle: string): number {
  const i = readFileSync(join(dir, file), 'utf8').split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`'${needle}' not in ${file}`);
  return i + 1;
}

describe('malformed YAML', () => {
  const dir = fixtureDir('bad-yaml');

  it('reports TSF101 with the line, in tenants.yml and in a models/*.yml, from one call', () => {
    const { diagnostics } = compileDir(dir);
    expect(brief(diagnostics)).toEqual([
      { code: Codes.yamlSyntax, file: 'tenants.yml', line: lineOf(dir, 'tenants.yml', 'name: Beta: Clinic') },
      { code: Codes.yamlSyntax, file: 'models/props.yml', line: lineOf(dir, 'models/props.yml', '     phi: none') },
    ]);
    for (const d of diagnostics) expect(d.message).toMatch(/^invalid YAML: /);
  });

  it('keeps reading the rest of the project after a broken YAML file', () => {
    const project = loadProject(dir);
    expect(project.models.map((m) => m.name)).toEqual(['ok']);
    expect(project.tenants).toEqual([]);
  });

  it('reports a repeated key as TSF101 on the repeated line', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'tenants.yml': 'tenants:\n  - id: acme\n    name: Acme\n    name: Again\n    timezone: UTC\n',
    });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code: Codes.yamlSyntax, file: 'tenants.yml', line: 4 }]);
  });
});

describe('duplicate model names', () => {
  it('reports TSF104 naming both files', () => {
    const { diagnostics } = compileDir(fixtureDir('duplicate-model'));
    expect(diagnostics).toHaveLength(1);
    const d = diagnostics[0]!;
    expect(d.code).toBe(Codes.duplicateModel);
    expect(d.line).toBe(1);
    const named = [d.file, d.message].join(' ');
    expect(named).toContain('models/finance/orders.sql');
    expect(named).toContain('models/sales/orders.sql');
    expect(d.message).toContain("'orders'");
  });

  it('also refuses a seed and a model with one name', () => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'models/codes.sql': 'select 1 as practice_id\n', 'seeds/codes.csv': 'code\nA\n' });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => x.code)).toEqual([Codes.duplicateModel]);
    expect(`${diagnostics[0]!.file} ${diagnostics[0]!.message}`).toMatch(/models\/codes\.sql.*seeds\/codes\.csv|seeds\/codes\.csv.*models\/codes\.sql/);
  });
});

describe('tenants.yml', () => {
  const dir = fixtureDir('bad-tenants');
  const file = 'tenants.yml';

  it('reports every bad practice entry, each with its code and line', () => {
    const { diagnostics } = compileDir(dir);
    expect(brief(diagnostics)).toEqual([
      { code: Codes.invalidTenantId, file, line: lineOf(dir, file, 'id: Bad-Id') },
      { code: Codes.duplicateTenant, file, line: lineOf(dir, file, 'name: Repeated') - 1 },
      { code: Codes.invalidTenantId, file, line: lineOf(dir, file, 'DROP TABLE') },
      { code: Codes.invalidTenantId, file, line: lineOf(dir, file, 'id: "evil') },
      { code: Codes.invalidTimezone, file, line: lineOf(dir, file, 'Mars/Olympus_Mons') },
      { code: Codes.invalidSla, file, line: lineOf(dir, file, '"25:00"') },
    ]);
  });

  it('keeps only the valid practices', () => {
    // bad_zone and bad_sla have valid ids: they are kept (their errors already fail the compile).
    expect(loadProject(dir).tenants.map((t) => t.id)).toEqual(['good_one', 'bad_zone', 'bad_sla']);
  });

  it('names the first line of a repeated id', () => {
    const d = loadProject(dir).diagnostics.find((x) => x.code === Codes.duplicateTenant)!;
    expect(d.message).toContain(`'good_one'`);
    expect(d.message).toContain(`first at line ${lineOf(dir, file, 'id: good_one')}`);
  });

  it('shows a hostile id quoted and escaped, never as raw SQL or a raw newline', () => {
    const bad = loadProject(dir).diagnostics.filter((x) => x.code === Codes.invalidTenantId);
    expect(bad).toHaveLength(3);
    for (const d of bad) {
      expect(d.message).not.toMatch(/[\n\r\u001b]/);
    }
    const sql = bad.find((d) => d.message.includes('DROP TABLE'))!;
    expect(sql.message).toContain(JSON.stringify("x'; DROP TABLE marts.foo; --"));
    const newline = bad.find((d) => d.message.includes('evil'))!;
    expect(newline.message).toContain('"evil\\nline\\u001b[31m"');
  });

  it('clips a very long id in the message', () => {
    const long = `a${'-'.repeat(5000)}`;
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'tenants.yml': `tenants:\n  - id: "${long}"\n    name: Long\n    timezone: UTC\n` });
    const [diag] = loadProject(d).diagnostics;
    expect(diag?.code).toBe(Codes.invalidTenantId);
    expect(diag!.message.length).toBeLessThan(200);
  });

  it('accepts UTC and real IANA zones, refuses abbreviations', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'tenants.yml': [
        'tenants:',
        '  - { id: a, name: A, timezone: UTC }',
        '  - { id: b, name: B, timezone: Europe/Berlin }',
        '  - { id: c, name: C, timezone: EST }',
        '',
      ].join('\n'),
    });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code: Codes.invalidTimezone, file: 'tenants.yml', line: 4 }]);
  });

  it('never changes a practice id: an unquoted 0042 or 1e3 is not silently read as 42 or 1000', () => {
    // YAML reads `id: 0042` as the number 42. The rows of practice '0042' would then belong to
    // no tenant; the id must stay as written, or be refused with a request to quote it.
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'tenants.yml': 'tenants:\n  - { id: 0042, name: A, timezone: UTC }\n  - { id: 1e3, name: B, timezone: UTC }\n',
    });
    const project = loadProject(d);
    const ids = project.tenants.map((t) => t.id);
    expect(ids).not.toContain('42');
    expect(ids).not.toContain('1000');
    for (const [written, line] of [['0042', 2], ['1e3', 3]] as const) {
      const kept = ids.includes(written);
      const refused = project.diagnostics.some((x) => x.code === Codes.invalidTenantId && x.line === line);
      expect(kept || refused, `id ${written} (line ${line}): kept as written or refused with TSF105`).toBe(true);
    }
  });

  it('defaults ready_by to 07:00 and the pool to steady', () => {
    const [t] = loadProject(writeTempProject(MINIMAL_PROJECT)).tenants;
    expect(t).toMatchObject({ id: 'acme', readyBy: '07:00', pool: 'steady', tags: [], file: 'tenants.yml', line: 2 });
  });
});

describe('seed CSV', () => {
  it('reports a ragged row as TSF109 with the CSV line number', () => {
    const dir = fixtureDir('ragged-seed');
    const { diagnostics } = compileDir(dir);
    expect(brief(diagnostics)).toEqual([{ code: Codes.raggedCsv, file: 'seeds/visit_types.csv', line: lineOf(dir, 'seeds/visit_types.csv', 'INP') }]);
  });

  it('does not quote the ragged row in the message (it could be PHI)', () => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'seeds/people.csv': 'id,name\n1,Ann\nJane Doe 123-45-6789\n' });
    const [diag] = loadProject(d).diagnostics;
    expect(diag).toMatchObject({ code: Codes.raggedCsv, file: 'seeds/people.csv', line: 3 });
    expect(diag!.message).not.toContain('Jane');
    expect(diag!.message).not.toContain('6789');
  });

  it('counts physical lines when a quoted field spans two lines', () => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'seeds/notes.csv': 'id,note\n1,"two\nlines"\n2\n' });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code: Codes.raggedCsv, file: 'seeds/notes.csv', line: 4 }]);
  });

  it('counts a CRLF inside a quoted field as one line break, as an editor does', () => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'seeds/notes.csv': 'id,note\r\n1,"two\r\nlines"\r\n2\r\n' });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code: Codes.raggedCsv, file: 'seeds/notes.csv', line: 4 }]);
  });
});

describe('all mistakes of a project are reported together', () => {
  it('three mistakes in three files → three diagnostics from one compileProject(loadProject(dir))', () => {
    const dir = fixtureDir('three-mistakes');
    const { diagnostics } = compileDir(dir);
    expect(brief(diagnostics)).toEqual([
      { code: Codes.invalidTimezone, file: 'tenants.yml', line: lineOf(dir, 'tenants.yml', 'Europe/Nowhere') },
      { code: Codes.raggedCsv, file: 'seeds/codes.csv', line: 3 },
      { code: Codes.unknownRef, file: 'models/report.sql', line: lineOf(dir, 'models/report.sql', 'repot_base') },
    ]);
    expect(diagnostics.every((d) => d.severity === 'error')).toBe(true);
  });

  it('never throws on a missing project: TSF103 for tsform.yml', () => {
    const d = writeTempProject({});
    const { diagnostics } = compileDir(d);
    expect(brief(diagnostics)).toEqual([{ code: Codes.missingFile, file: 'tsform.yml', line: undefined }]);
  });
});
