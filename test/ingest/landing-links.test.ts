import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { listLandingFiles, openLandingFile } from '../../src/ingest/landing-files.ts';
import { removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { withWarehouse } from './support/capture-project.ts';

/**
 * A practice's landing folder is often its own upload area, so whoever uploads there can make
 * links. The folder names the practice whose rows a file holds: a link to another practice's
 * file or folder would load that practice's rows as this one's. Only regular files directly in
 * a practice's own folder are read.
 */
const PROJECT = {
  'tsform.yml': 'name: landing_links\n',
  'tenants.yml': ['acme', 'bravo', 'carol'].map((id) => `  - { id: ${id}, name: ${id}, timezone: UTC }`).join('\n').replace(/^/, 'tenants:\n'),
  'models/sources.yml': `sources:
  - name: clinic
    loader:
      csv_landing: { path: "landing/{table}", layout: folder_per_practice }
    tables:
      - name: visits
        key: [visit_id]
  - name: billing
    loader:
      csv_landing: { path: "shared/{table}", layout: practice_column }
    tables:
      - name: invoices
        key: invoice_id
`,
  'models/visit_counts.sql': 'select practice_id, count(*) as visits from {{source "clinic" "visits"}} group by practice_id\n',
  'landing/visits/acme/a.csv': 'visit_id\nv1\n',
  'landing/visits/bravo/b.csv': 'visit_id\nb1\nb2\n',
  'shared/invoices/2024-01.csv': 'practice_id,invoice_id\nacme,i1\nbravo,i2\n',
};

describe('landing folders: links and other non-files are never read', () => {
  let dir: string;
  const outside: string[] = [];
  beforeEach(() => {
    dir = writeTempProject(PROJECT);
  });
  afterAll(() => {
    removeTempProjects();
    for (const d of outside) rmSync(d, { recursive: true, force: true });
  });
  const run = () => runWorkspace({ projectDir: dir, command: 'run' });
  const node = (r: RunResults, id: string): NodeResult => r.results.find((x) => x.node === id)!;
  const visits = () =>
    withWarehouse(dir, async (wh) => (await wh.query('SELECT practice_id, visit_id FROM raw.visits ORDER BY 1, 2')).rows.map((r) => `${r.practice_id}|${r.visit_id}`));

  it("a link in a practice's folder to another practice's file is not loaded; the run says so, once", async () => {
    symlinkSync(join(dir, 'landing/visits/bravo/b.csv'), join(dir, 'landing/visits/acme/stolen.csv'));
    mkdirSync(join(dir, 'landing/visits/carol'));
    symlinkSync('../bravo/b.csv', join(dir, 'landing/visits/carol/relative.csv'));
    const r = await run();
    expect(await visits()).toEqual(['acme|v1', 'bravo|b1', 'bravo|b2']);
    expect(node(r, 'source:clinic.visits@acme')).toMatchObject({ status: 'success', rows: 1 });
    expect(node(r, 'source:clinic.visits@acme').notes).toContain(
      'landing/visits/acme/stolen.csv: a symbolic link; not loaded (landing files are regular files in the folder)',
    );
    expect(node(r, 'source:clinic.visits@carol')).toMatchObject({ status: 'success', rows: 0 });
    expect(r.notices).toContain(
      "source:clinic.visits: 2 entries in landing folders not loaded (symbolic links or not regular files; each named in its practice's notes)",
    );
  });

  it('a link to a file outside the project, or to a file of the same folder, is not read either', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tsform-elsewhere-'));
    outside.push(elsewhere);
    writeFileSync(join(elsewhere, 'secret.csv'), 'visit_id\nsecret1\n');
    symlinkSync(join(elsewhere, 'secret.csv'), join(dir, 'landing/visits/acme/secret.csv'));
    symlinkSync('a.csv', join(dir, 'landing/visits/acme/latest.csv'));
    const r = await run();
    expect(await visits()).toEqual(['acme|v1', 'bravo|b1', 'bravo|b2']);
    expect((node(r, 'source:clinic.visits@acme').notes ?? []).filter((n) => n.includes('symbolic link'))).toHaveLength(2);
  });

  it("a practice folder that is a link to another practice's folder fails that practice with TSF121; the others load", async () => {
    symlinkSync(join(dir, 'landing/visits/bravo'), join(dir, 'landing/visits/carol'));
    const r = await run();
    expect(node(r, 'source:clinic.visits@carol')).toMatchObject({ status: 'error', code: 'TSF121' });
    expect(node(r, 'source:clinic.visits@carol').message).toContain('landing/visits/carol is a symbolic link');
    expect(node(r, 'visit_counts@carol')).toMatchObject({ status: 'skipped' });
    expect(r.tenants.acme!.status).toBe('success');
    expect(r.tenants.bravo!.status).toBe('success');
    expect(await visits()).toEqual(['acme|v1', 'bravo|b1', 'bravo|b2']);
  });

  it('a practice "folder" that is a file is TSF121 too', async () => {
    writeFileSync(join(dir, 'landing/visits/carol'), 'visit_id\nc1\n');
    const r = await run();
    expect(node(r, 'source:clinic.visits@carol')).toMatchObject({ status: 'error', code: 'TSF121' });
    expect(node(r, 'source:clinic.visits@carol').message).toContain('landing/visits/carol is not a directory');
  });

  it('a link among shared files (practice_column) is not read, and is counted once for the run', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tsform-elsewhere-'));
    outside.push(elsewhere);
    writeFileSync(join(elsewhere, 'other.csv'), 'practice_id,invoice_id\nacme,x1\nbravo,x2\n');
    symlinkSync(join(elsewhere, 'other.csv'), join(dir, 'shared/invoices/2024-02.csv'));
    const r = await run();
    const ids = await withWarehouse(dir, async (wh) => (await wh.query('SELECT invoice_id FROM raw.invoices ORDER BY 1')).rows.map((x) => String(x.invoice_id)));
    expect(ids).toEqual(['i1', 'i2']);
    expect(r.notices).toContain(
      "source:billing.invoices: 1 entry in landing folders not loaded (symbolic links or not regular files; each named in its practice's notes)",
    );
  });

  it('a FIFO or a folder named like a CSV is named and skipped; the run does not wait on it', async () => {
    execFileSync('mkfifo', [join(dir, 'landing/visits/acme/pipe.csv')]);
    mkdirSync(join(dir, 'landing/visits/acme/folder.csv'));
    const r = await run();
    expect(node(r, 'source:clinic.visits@acme')).toMatchObject({ status: 'success', rows: 1 });
    expect(node(r, 'source:clinic.visits@acme').notes).toEqual(
      expect.arrayContaining([
        'landing/visits/acme/folder.csv: not a regular file; not loaded (landing files are regular files in the folder)',
        'landing/visits/acme/pipe.csv: not a regular file; not loaded (landing files are regular files in the folder)',
      ]),
    );
  });

  it('a landing path that is itself a link (a mounted drop volume) is read, and .CSV.GZ in capitals is unzipped', async () => {
    const volume = mkdtempSync(join(tmpdir(), 'tsform-volume-'));
    outside.push(volume);
    mkdirSync(join(volume, 'acme'));
    writeFileSync(join(volume, 'acme', 'a.csv'), 'visit_id\nv1\n');
    writeFileSync(join(volume, 'acme', 'B.CSV.GZ'), gzipSync('visit_id\nv2\n'));
    rmSync(join(dir, 'landing/visits'), { recursive: true });
    symlinkSync(volume, join(dir, 'landing/visits'));
    const r = await run();
    expect(r.results.filter((x) => x.status !== 'success')).toEqual([]);
    expect(await visits()).toEqual(['acme|v1', 'acme|v2']);
  });

  it('a file name or header a practice wrote is printed with its control characters escaped, and loads once', async () => {
    const name = 'x\u001b[2J\r\n2026-12-06T00:00:00.000Z [info] all good\u202e.csv';
    const texts = (r: RunResults) => [...r.results.flatMap((x) => [x.message ?? '', ...(x.notes ?? [])]), ...(r.notices ?? [])];
    const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202e]/;
    writeFileSync(join(dir, 'landing/visits/acme', name), 'visit_id\nv2,ragged\n');
    const failed = await run();
    expect(node(failed, 'source:clinic.visits@acme')).toMatchObject({ status: 'error', code: 'TSF109' });
    expect(node(failed, 'source:clinic.visits@acme').message).toContain('landing/visits/acme/x\\u001b[2J\\u000d\\u000a2026-12-06T00:00:00.000Z [info] all good\\u202e.csv:2');
    expect(texts(failed).filter((t) => CONTROL.test(t))).toEqual([]);
    writeFileSync(join(dir, 'landing/visits/acme', name), 'visit_id,note\u001b]0;owned\u0007\u009b\nv2,hello\n');
    const fixed = await run();
    expect(node(fixed, 'source:clinic.visits@acme')).toMatchObject({ status: 'success', rows: 1 });
    expect(node(fixed, 'source:clinic.visits@acme').notes).toContain('new landing column "note\\u001b]0;owned\\u0007\\u009b" added to raw.visits');
    expect(texts(fixed).filter((t) => CONTROL.test(t))).toEqual([]);
    // The file's record is kept under its own name: the next run does not load it again.
    expect(node(await run(), 'source:clinic.visits@acme').rows).toBe(0);
  });

  it('a file swapped for a link, or for another file, after the folder was listed is not opened', async () => {
    const folder = join(dir, 'landing/visits/acme');
    const listed = listLandingFiles(dir, 'landing/visits/acme', true).files;
    expect(listed.map((f) => f.display)).toEqual(['landing/visits/acme/a.csv']);
    renameSync(join(folder, 'a.csv'), join(folder, 'a.old'));
    symlinkSync(join(dir, 'landing/visits/bravo/b.csv'), join(folder, 'a.csv'));
    expect(await openLandingFile(listed[0]!)).toEqual({ refused: 'landing/visits/acme/a.csv: replaced while the run read the folder; not loaded (the next run reads it)' });
    rmSync(join(folder, 'a.csv'));
    writeFileSync(join(folder, 'a.csv'), 'visit_id\nv1\n');
    expect(await openLandingFile(listed[0]!)).toEqual({ refused: 'landing/visits/acme/a.csv: replaced while the run read the folder; not loaded (the next run reads it)' });
    const again = listLandingFiles(dir, 'landing/visits/acme', true).files;
    const opened = await openLandingFile(again[0]!);
    expect('handle' in opened).toBe(true);
    if ('handle' in opened) await opened.handle.close();
  });
});
