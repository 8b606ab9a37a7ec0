import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * Issue 15, item 1: the README's "Adding a model" walk-through, literally, on a fresh copy of
 * the project with no target/ and nothing beside it: the model and yml are taken from the
 * README's own code blocks, and the commands are the pull-request workflow's.
 */

/** The README's fenced block whose first line names `path` (`-- path` or `# path`). */
function readmeBlock(path: string): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```(?:sql|yaml)\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.split('\n')[0]!.replace(/^(--|#)\s*/, '').trim() === path);
  if (!block) throw new Error(`README.md has no code block for ${path}`);
  return block;
}


/** The JSON lines of a `--log-format json` run: node results and the summary. */
function events(out: string[]): { event: string; node?: string; status?: string; message?: string | null; notices?: string[] }[] {
  return out.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

describe("the README's Adding a model, on a fresh copy", () => {
  const MODEL = 'models/marts/practice_monthly_encounters.sql';
  const YML = 'models/marts/practice_monthly_encounters.yml';
  let prod: DemoCopy;
  let pr: DemoCopy;
  let state: string;

  beforeAll(async () => {
    // A state folder with the manifest and a database (production.yml publishes the manifest only; a
    // developer's synthetic copy may carry the database, which --defer then reads).
    prod = copyDemoProject({ tenants: sampleTenants(3) });
    const built = await cli('build', '--project-dir', prod.dir, '--log-format', 'json');
    expect(built.code, built.err).toBe(0);
    state = join(prod.dir, 'prod-artifacts');
    mkdirSync(state);
    copyFileSync(join(prod.dir, 'target/manifest.json'), join(state, 'manifest.json'));
    copyFileSync(join(prod.dir, 'target/tsform.duckdb'), join(state, 'tsform.duckdb'));

    pr = copyDemoProject({ tenants: sampleTenants(3) });
    expect(existsSync(join(pr.dir, 'target'))).toBe(false);
    writeFileSync(join(pr.dir, MODEL), readmeBlock(MODEL));
    writeFileSync(join(pr.dir, YML), readmeBlock(YML));
  }, 300_000);
  afterAll(() => {
    prod?.remove();
    pr?.remove();
  });

  it('compile --strict passes with no diagnostic', async () => {
    const r = await cli('compile', '--project-dir', pr.dir, '--strict', '--format', 'json');
    expect(r.code, r.out.join('\n')).toBe(0);
  });

  it('slim CI builds and tests only the new model for the sample practices, reading the seed its relationships test needs from production', async () => {
    const r = await cli('build', '--project-dir', pr.dir, '--select', 'state:modified+', '--defer', '--state', state, '--tenant', 'tag:ci-sample', '--log-format', 'json');
    const results = events(r.out).filter((e) => e.event === 'node');
    expect(results.filter((e) => e.status !== 'success').map((e) => `${e.node}: ${e.status} ${e.message ?? ''}`)).toEqual([]);
    expect(r.code).toBe(0);
    expect(new Set(results.map((e) => e.node!.split('@')[0]))).toEqual(
      new Set(['practice_monthly_encounters', ...['not_null', 'not_null', 'relationships', 'not_null'].map((k, i) => `test:${k}_practice_monthly_encounters_${['practice_id', 'activity_month', 'encounter_class', 'encounters'][i]}`)]),
    );
    const manifest = JSON.parse(readFileSync(join(pr.dir, 'target/manifest.json'), 'utf8')) as { tests: Record<string, { sql: string }> };
    expect(manifest.tests.relationships_practice_monthly_encounters_encounter_class!.sql).toContain('"prod"."ref"."encounter_classes"');
  });

  it('a state folder with only the manifest: the same command builds the upstream here instead, and says so once', async () => {
    const manifestOnly = join(prod.dir, 'manifest-only');
    mkdirSync(manifestOnly, { recursive: true });
    copyFileSync(join(state, 'manifest.json'), join(manifestOnly, 'manifest.json'));
    const fresh = copyDemoProject({ tenants: sampleTenants(3), files: { [MODEL]: readmeBlock(MODEL), [YML]: readmeBlock(YML) } });
    try {
      const r = await cli('build', '--project-dir', fresh.dir, '--select', 'state:modified+', '--defer', '--state', manifestOnly, '--tenant', 'tag:ci-sample', '--log-format', 'json');
      const all = events(r.out);
      expect(all.filter((e) => e.event === 'node' && e.status !== 'success').map((e) => `${e.node}: ${e.message ?? ''}`)).toEqual([]);
      expect(r.code).toBe(0);
      const notices = all.flatMap((e) => e.notices ?? []).filter((n) => n.startsWith('--defer'));
      expect(notices).toEqual([expect.stringContaining('has no production database (tsform.duckdb), so nothing is read from production')]);
      expect(all.some((e) => e.node?.startsWith('encounter_classes'))).toBe(true);
    } finally {
      fresh.remove();
    }
  });
});
