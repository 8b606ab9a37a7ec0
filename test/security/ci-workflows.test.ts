import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../fixtures/project-fixture.ts';

/**
 * What the shipped workflows publish. An artifact can be downloaded by anyone who can read the
 * repository, and a pull request's workflow runs the pull request's code with a token that lists
 * and downloads artifacts: a warehouse file published there is every practice's identifiable
 * rows handed to every contributor. Only files tsform writes without row data may be uploaded.
 */
const WORKFLOWS = join(REPO_ROOT, '.github/workflows');
/** Row-free outputs: the manifest, run results (counts and keys), diagnostics, the docs site, the suite's screenshots. */
const ALLOWED = new Set(['target/manifest.json', 'target/run_results.json', 'target/compile-diagnostics.json', 'target/docs/', 'test-output/']);

interface Step {
  name?: string;
  uses?: string;
  with?: Record<string, unknown>;
}

function uploads(): { workflow: string; step: string; paths: string[] }[] {
  const out: { workflow: string; step: string; paths: string[] }[] = [];
  for (const file of readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f))) {
    const doc = parse(readFileSync(join(WORKFLOWS, file), 'utf8')) as { jobs: Record<string, { steps?: Step[] }> };
    for (const job of Object.values(doc.jobs)) {
      for (const step of job.steps ?? []) {
        if (!step.uses?.startsWith('actions/upload-artifact')) continue;
        const paths = String(step.with?.path ?? '')
          .split('\n')
          .map((p) => p.trim())
          .filter(Boolean);
        out.push({ workflow: file, step: step.name ?? step.uses, paths });
      }
    }
  }
  return out;
}

describe('CI workflows never publish row data', () => {
  it('every uploaded path is a row-free output (no warehouse, vault, research file, WAL or whole folder)', () => {
    const all = uploads();
    expect(all.map((u) => u.workflow).sort()).toEqual(['models.yml', 'production.yml']);
    for (const u of all) {
      for (const p of u.paths) expect(ALLOWED.has(p) ? p : `${u.workflow} "${u.step}" uploads ${p}`).toBe(p);
    }
  });

  it("production's state is the manifest alone, downloaded into a fresh folder; a pull request's --defer builds its upstream from the project's data", () => {
    const prod = uploads().find((u) => u.workflow === 'production.yml')!;
    expect(prod.paths).toEqual(['target/manifest.json']);
    const models = readFileSync(join(WORKFLOWS, 'models.yml'), 'utf8');
    expect(models).toContain('--defer --state prod-artifacts/ --tenant tag:ci-sample');
    // The state compared against is production's, never a prod-artifacts/ the pull request brings.
    expect(models.indexOf('rm -rf prod-artifacts')).toBeGreaterThan(-1);
    expect(models.indexOf('rm -rf prod-artifacts')).toBeLessThan(models.indexOf('gh run download'));
  });
});
