import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';
import { backfillWorkspace } from '../../../src/cli/backfill.ts';
import { Codes } from '../../../src/errors.ts';
import { logicalObjectName } from '../../../src/ingest/logical/slot-setup.ts';
import { brief, compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../../fixtures/project-fixture.ts';
import { openDuckdb, tempDuckdbPath } from '../support/capture-fixture.ts';
import { startSmallOltp, type SmallOltp } from '../support/capture-project.ts';
import { logicalCaptureOf, TABLES } from './support/logical-fixture.ts';

afterAll(() => removeTempProjects());

describe('mode: logical in sources.yml', () => {
  it('is written to the manifest; watermark stays the default and leaves the manifest as before', () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': `sources:
  - name: ehr
    loader:
      postgres: { schema: oltp, url_env: TSFORM_OLTP_URL, mode: logical }
    tables:
      - { name: encounters, key: encounter_id }
  - name: old
    loader:
      postgres: { url_env: TSFORM_OLTP_URL }
    tables:
      - { name: claims, key: claim_id }
`,
    });
    const { manifest, diagnostics } = compileDir(dir);
    expect(diagnostics).toEqual([]);
    expect(manifest.sources['source:ehr.encounters']!.capture).toMatchObject({ kind: 'postgres', mode: 'logical' });
    expect(manifest.sources['source:old.claims']!.capture).not.toHaveProperty('mode');
  });

  it('an unknown mode, or a watermark-only key with mode logical, is TSF120 at its line', () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': `sources:
  - name: ehr
    loader:
      postgres:
        url_env: TSFORM_OLTP_URL
        mode: wal
    tables:
      - { name: encounters, key: encounter_id }
  - name: other
    loader:
      postgres:
        url_env: TSFORM_OLTP_URL
        mode: logical
        chunk_rows: 100
    tables:
      - { name: claims, key: claim_id }
`,
    });
    expect(brief(compileDir(dir).diagnostics)).toEqual([
      { code: Codes.captureMode, file: 'models/sources.yml', line: 6 },
      { code: Codes.captureMode, file: 'models/sources.yml', line: 14 },
    ]);
  });

  it('backfill (updated_at ranges) refuses sources in mode logical, before touching anything', async () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': `sources:
  - name: ehr
    loader:
      postgres: { url_env: TSFORM_OLTP_URL, mode: logical }
    tables:
      - { name: encounters, key: encounter_id }
`,
    });
    await expect(backfillWorkspace({ projectDir: dir, tenants: [], allTenants: true })).rejects.toMatchObject({ code: Codes.badSelector, message: expect.stringContaining('captured in mode logical') });
  });

  it('names the publication and slot from the project and the OLTP: stable, distinct, a valid slot name', () => {
    const a = logicalObjectName('EHR Analytics!', 'TSFORM_OLTP_URL');
    expect(a).toMatch(/^tsform_ehr_analytics_[0-9a-f]{8}$/);
    expect(logicalObjectName('EHR Analytics!', 'TSFORM_OLTP_URL')).toBe(a);
    expect(logicalObjectName('EHR Analytics!', 'OTHER_OLTP')).not.toBe(a);
    expect(logicalObjectName('x'.repeat(200), 'U').length).toBeLessThanOrEqual(63);
  });
});

describe('set-up refuses an OLTP that cannot give a usable slot, saying what to change', () => {
  let file: { path: string; remove(): void };
  afterEach(() => file?.remove());

  const setUpError = async (url: string, tables: readonly string[] = TABLES, project = 'setup'): Promise<{ code?: string; message: string }> => {
    file = tempDuckdbPath();
    const wh = await openDuckdb(file.path);
    const source = await PgOltpSource.open(url);
    try {
      await logicalCaptureOf(wh, source, project, ['p1'], tables).setUp(['p1']);
      return { message: 'no error' };
    } catch (err) {
      return { code: (err as { code?: string }).code, message: (err as Error).message };
    } finally {
      await source.close();
      await wh.close();
    }
  };

  it('wal_level replica: TSF430', async () => {
    const oltp = await startSmallOltp(['encounters']);
    try {
      expect(await setUpError(oltp.server.url, ['encounters'])).toEqual({ code: Codes.logicalUnavailable, message: expect.stringContaining('needs wal_level = logical on the OLTP (it has replica)') });
    } finally {
      await oltp.stop();
    }
  }, 60_000);

  describe('with wal_level logical', () => {
    let oltp: SmallOltp;
    beforeAll(async () => {
      oltp = await startSmallOltp(['encounters', 'procedures'], { logical: {} });
    });
    afterAll(async () => {
      await oltp?.stop();
    });

    it('a table whose replica identity lacks practice_id: TSF431 naming the table; REPLICA IDENTITY FULL is accepted', async () => {
      await oltp.admin.query(`ALTER TABLE oltp.procedures DROP CONSTRAINT procedures_pkey`);
      await oltp.admin.query(`ALTER TABLE oltp.procedures ADD PRIMARY KEY (procedure_id)`);
      const err = await setUpError(oltp.server.url, TABLES, 'ident');
      expect(err.code).toBe(Codes.replicaIdentity);
      expect(err.message).toContain('capture oltp.procedures: its REPLICA IDENTITY (procedure_id) lacks practice_id');
      expect(err.message).toContain('REPLICA IDENTITY FULL');
      await oltp.admin.query(`ALTER TABLE oltp.procedures REPLICA IDENTITY FULL`);
      expect(await setUpError(oltp.server.url, TABLES, 'ident')).toEqual({ message: 'no error' });
    }, 60_000);

    it('a role without REPLICATION: TSF430 with the ALTER ROLE to run', async () => {
      await oltp.admin.query(`CREATE ROLE capture_only LOGIN PASSWORD 'capture-pw'`);
      await oltp.admin.query(`GRANT USAGE ON SCHEMA oltp TO capture_only`);
      await oltp.admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA oltp TO capture_only`);
      const url = new URL(oltp.server.url);
      url.username = 'capture_only';
      url.password = 'capture-pw';
      expect(await setUpError(url.toString(), ['encounters'], 'norole')).toEqual({ code: Codes.logicalUnavailable, message: expect.stringContaining('ALTER ROLE "capture_only" REPLICATION') });
    }, 60_000);

    it("a slot of that name that is not tsform's (another plugin): TSF432, nothing dropped", async () => {
      const name = logicalObjectName('taken', 'TSFORM_OLTP_URL');
      await oltp.admin.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [name]);
      expect(await setUpError(oltp.server.url, ['encounters'], 'taken')).toEqual({ code: Codes.slotConflict, message: expect.stringContaining(`replication slot ${name} exists but is not tsform's`) });
      expect((await oltp.admin.query(`SELECT plugin FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows).toEqual([{ plugin: 'test_decoding' }]);
    }, 60_000);
  });
});
