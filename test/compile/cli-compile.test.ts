import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compileWorkspace } from '../../src/cli/api.ts';
import { runCli } from '../../src/cli/program.ts';
import { Codes, DiagnosticsError, formatDiagnostic } from '../../src/errors.ts';
import { compileDir, fixtureDir } from '../fixtures/project-fixture.ts';

let stderr: string[];
beforeEach(() => {
  stderr = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

function caught(fn: () => unknown): DiagnosticsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DiagnosticsError);
    return e as DiagnosticsError;
  }
  throw new Error('expected a DiagnosticsError');
}

describe('compileWorkspace on a broken project', () => {
  it('throws one DiagnosticsError holding every diagnostic, and writes nothing', () => {
    const dir = fixtureDir('compile-errors');
    const e = caught(() => compileWorkspace(dir));
    expect(e.diagnostics).toEqual(compileDir(dir).diagnostics);
    expect(e.diagnostics).toHaveLength(6);
    expect(existsSync(join(dir, 'target'))).toBe(false);
  });

  it('reports a cycle from the DAG stage the same way', () => {
    const dir = fixtureDir('cycle');
    const e = caught(() => compileWorkspace(dir));
    expect(e.diagnostics.map((d) => d.code)).toEqual([Codes.cycle]);
    expect(existsSync(join(dir, 'target'))).toBe(false);
  });
});

describe('tsform compile (CLI) on a broken project', () => {
  const compile = (dir: string, out: string[] = []) => runCli(['node', 'tsform', 'compile', '--project-dir', dir], (l) => out.push(l));

  it('returns exit code 2 and prints every diagnostic on stderr', async () => {
    const dir = fixtureDir('compile-errors');
    const out: string[] = [];
    expect(await compile(dir, out)).toBe(2);
    expect(out).toEqual([]);
    const text = stderr.join('');
    const expected = compileDir(dir).diagnostics;
    for (const d of expected) expect(text).toContain(formatDiagnostic(d));
    expect(text).toContain(`${expected.length} error(s); nothing was run`);
    expect(text).toMatch(/^models\/bad_ref\.sql:4: error TSF202: unknown ref 'custmers'/m);
    expect(text).not.toMatch(/\n\s+at /);
  });

  it('prints project-file and compile diagnostics together (three files, three lines)', async () => {
    expect(await compile(fixtureDir('three-mistakes'))).toBe(2);
    const lines = stderr.join('').split('\n').filter((l) => / error TSF\d{3}: /.test(l));
    expect(lines.map((l) => l.split(':')[0])).toEqual(['tenants.yml', 'seeds/codes.csv', 'models/report.sql']);
  });

  it('returns 2 for a cycle and for malformed YAML', async () => {
    expect(await compile(fixtureDir('cycle'))).toBe(2);
    expect(stderr.join('')).toMatch(/error TSF207: dependency cycle: /);
    stderr.length = 0;
    expect(await compile(fixtureDir('bad-yaml'))).toBe(2);
    expect(stderr.join('').match(/TSF101/g)).toHaveLength(2);
  });

  it('returns 2 for a directory that is not a project', async () => {
    expect(await compile(join(fixtureDir('cycle'), 'models'))).toBe(2);
    expect(stderr.join('')).toContain(Codes.missingFile);
  });
});
