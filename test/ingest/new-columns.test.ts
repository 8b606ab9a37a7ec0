import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { runCli } from '../../src/cli/program.ts';
import type { OltpFixture, OltpTemplate } from './support/capture-fixture.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, templateOfFirstPractices, withWarehouse } from './support/capture-project.ts';

/**
 * Issue 14: a column added to an OLTP table with a value for its existing rows. PostgreSQL keeps
 * a constant default without touching the rows (and without bumping updated_at), so capture fills
 * raw's earlier rows with it; a volatile default rewrote every row with values capture cannot know
 * without reading them again, so the run says which backfill to run and exits 1.
 */
describe('columns added to the OLTP with values for existing rows', () => {
  let template: OltpTemplate;
  let oltp: OltpFixture;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    ({ template, tenants } = await templateOfFirstPractices(3));
  });
  afterAll(async () => {
    await template?.stop();
  });
  beforeEach(async () => {
    oltp = await template.fresh();
    project = copyCaptureProject(tenants);
  });
  afterEach(async () => {
    project?.remove();
    await oltp?.stop();
  });

  const run = (): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.url) });
  const rawEqual = () => withWarehouse(project.dir, (wh) => rawDiffers(oltp.admin, wh, 'encounters', tenants));

  it('a constant default (NOT NULL or not) fills the rows raw already had: raw equals the OLTP, nothing to do', async () => {
    expect((await run()).results.filter((r) => r.status !== 'success')).toEqual([]);
    await oltp.admin.query(`ALTER TABLE oltp.encounters ADD COLUMN active boolean NOT NULL DEFAULT true, ADD COLUMN tier text DEFAULT 'basic, "plus"', ADD COLUMN seen date NOT NULL DEFAULT '2024-02-29'`);
    const second = await run();
    expect(second.results.filter((r) => r.status !== 'success')).toEqual([]);
    expect(second.needs_action).toBeUndefined();
    expect(await rawEqual()).toEqual([]);
  });

  it('a volatile default: the run names the backfill and exits 1; the backfill makes raw equal the OLTP', async () => {
    expect((await run()).results.filter((r) => r.status !== 'success')).toEqual([]);
    await oltp.admin.query(`ALTER TABLE oltp.encounters ADD COLUMN checked_at timestamptz NOT NULL DEFAULT clock_timestamp()`);
    process.env.TSFORM_OLTP_URL = oltp.url;
    try {
      const lines: string[] = [];
      expect(await runCli(['node', 'tsform', 'run', '--project-dir', project.dir], (l) => lines.push(l))).toBe(1);
      // not a TTY: one JSON event per line, the summary last
      const summary = JSON.parse(lines.at(-1)!) as { needs_action?: string[] };
      expect(summary.needs_action).toEqual([expect.stringContaining('tsform backfill --select source:ehr.encounters --all-tenants')]);
      expect(await rawEqual()).not.toEqual([]);
      expect(await runCli(['node', 'tsform', 'backfill', '--project-dir', project.dir, '--select', 'source:ehr.encounters', '--all-tenants'], () => undefined)).toBe(0);
      expect(await rawEqual()).toEqual([]);
      expect(await runCli(['node', 'tsform', 'backfill', '--project-dir', project.dir, '--all-tenants', '--tenant', tenants[0]!], () => undefined)).toBe(2);
    } finally {
      delete process.env.TSFORM_OLTP_URL;
    }
  });
});
