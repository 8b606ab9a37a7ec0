import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT_INTERNAL_ERROR } from '../../src/cli/program.ts';
import { REPO_ROOT } from '../fixtures/project-fixture.ts';
import { cli } from '../support/cli.ts';

/** The CLI surface (issue 15, item 9): options where they apply, validated values, exit codes. */

const ROOT = resolve(REPO_ROOT);
const scratch = mkdtempSync(join(tmpdir(), 'tsform-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));


const RUN_ONLY = ['--threads', '--full-refresh', '--fan-in', '--node-timeout', '--defer', '--defer-database'];

describe('options only on the commands they apply to', () => {
  it.each(['ls', 'compile', 'docs generate', 'freshness', 'purge', 'vault init', 'policies render', 'privacy check', 'show', 'debug', 'clean'])(
    '`tsform %s --help` offers no run-only option',
    async (command) => {
      const help = await cli(...command.split(' '), '--help');
      expect(help.code).toBe(0);
      const text = help.out.join('\n');
      expect(text).toContain('--project-dir');
      for (const option of RUN_ONLY) expect(text, option).not.toMatch(new RegExp(`${option}\\b(?!-)`));
    },
  );

  it.each(['run', 'seed', 'test', 'build'])('`tsform %s --help` offers every run option', async (command) => {
    const text = (await cli(command, '--help')).out.join('\n');
    for (const option of RUN_ONLY) expect(text, option).toContain(option);
  });

  it('retry offers the run options but not what it reads from run_results.json (--select, --tenant, --state) nor --defer', async () => {
    const text = (await cli('retry', '--help')).out.join('\n');
    for (const option of ['--threads', '--fail-fast', '--target-path', '--log-format']) expect(text, option).toContain(option);
    for (const option of ['--select', '--exclude', '--tenant', '--state', '--defer']) expect(text, option).not.toMatch(new RegExp(`^\\s*(-\\w, )?${option}\\b`, 'm'));
  });

  it('backfill offers --select but not --exclude, which it does not read', async () => {
    const text = (await cli('backfill', '--help')).out.join('\n');
    expect(text).toContain('--select');
    expect(text).not.toContain('--exclude');
  });

  it('refuses --resume without --distributed (exit 2), before anything is compiled or run', async () => {
    const r = await cli('run', '--project-dir', ROOT, '--resume', '00000000-0000-4000-8000-000000000000');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/TSF408.*--resume <run id> resumes a distributed run: add --distributed/);
  });

  it('refuses a run-only option on ls as unknown (exit 2)', async () => {
    const r = await cli('ls', '--project-dir', ROOT, '--full-refresh');
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option '--full-refresh'");
  });
});

describe('--threads', () => {
  it.each(['abc', '0', '-1', '2.5'])('--threads %s is a commander error naming the value, before any database', async (value) => {
    const r = await cli('run', '--project-dir', ROOT, '--threads', value);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`option '--threads <n>' argument '${value}' is invalid. expected a whole number of at least 1`);
    expect(r.err).not.toContain('Failed to set config');
    expect(r.out).toEqual([]);
  });
});

describe('--version', () => {
  it("prints package.json's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await cli(flag);
      expect(r.code).toBe(0);
      expect(r.out).toEqual([version]);
    }
  });
});

describe('exit codes', () => {
  it('an internal error exits 3 (not 1, which means a node failed) and says it is a bug in tsform', async () => {
    const broken = join(scratch, 'broken');
    mkdirSync(join(broken, 'tsform.yml'), { recursive: true }); // a folder where a file belongs: EISDIR
    const r = await cli('ls', '--project-dir', broken);
    expect(r.code).toBe(EXIT_INTERNAL_ERROR);
    expect(EXIT_INTERNAL_ERROR).toBe(3);
    expect(r.err).toMatch(/^internal error \(a bug in tsform/m);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toMatch(/Exit codes:[\s\S]{0,300}3 an internal error/);
  });
});

describe('tsform source freshness (dbt spelling)', () => {
  it('is the freshness command, with its options', async () => {
    const alias = await cli('source', 'freshness', '--help');
    const plain = await cli('freshness', '--help');
    expect(alias.code).toBe(0);
    expect(alias.err).not.toContain('did you mean');
    const options = (lines: string[]) => lines.join('\n').split('Options:')[1];
    expect(options(alias.out)).toBe(options(plain.out));
    expect(options(alias.out)).toContain('--alert');
  });
});

describe('the project folder', () => {
  afterEach(() => vi.restoreAllMocks());

  it('without --project-dir, is the nearest folder up from the working directory holding tsform.yml, and is named', async () => {
    vi.spyOn(process, 'cwd').mockReturnValue(join(ROOT, 'models', 'marts'));
    const r = await cli('ls', '--select', 'stg_claims', '--tenant', 'tag:ci-sample');
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe('stg_claims\tmodel\ttenant\ttable\t5 practices');
    expect(r.err).toContain(`using the project in ${ROOT}`);
  });

  it('in the project folder itself, says nothing about it', async () => {
    vi.spyOn(process, 'cwd').mockReturnValue(ROOT);
    const r = await cli('ls', '--select', 'stg_claims', '--tenant', 'tag:ci-sample');
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('using the project');
  });
});
