import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsformVersion } from '../../src/cli/package-root.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/** Issue 15: `tsform debug` checks project files, target, vault and prints versions; a failed check exits 2 and says which. */

const line = (out: string[], name: string) => out.find((l) => new RegExp(`^(ok  |FAIL) ${name} `).test(l)) ?? '';

describe('tsform debug', () => {
  let demo: DemoCopy;
  let pg: ThrowawayPostgres | undefined;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2) });
  });
  afterAll(async () => {
    delete process.env.TSFORM_PG_URL;
    demo.remove();
    await pg?.stop();
  });

  it('a fresh project: versions, every check ok, and no warehouse created', async () => {
    const r = await cli('debug', '--project-dir', demo.dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out[0]).toContain(`tsform ${tsformVersion()} · node ${process.versions.node} · @duckdb/node-api `);
    expect(line(r.out, 'project')).toMatch(/^ok +project +.*: \d+ models, .* 2 practices$/);
    expect(line(r.out, 'target')).toContain('does not exist yet; the first run creates it');
    expect(line(r.out, 'vault')).toContain('no key yet');
    expect(r.out).toContain('all checks passed');
    expect(existsSync(join(demo.dir, 'target/tsform.duckdb'))).toBe(false);
  });

  it('after a run: connected to DuckDB, and the vault key the first run created', async () => {
    expect((await cli('build', '--project-dir', demo.dir, '--log-format', 'json')).code).toBe(0);
    const r = await cli('debug', '--project-dir', demo.dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out[0]).toMatch(/ · engine DuckDB v\d/);
    expect(line(r.out, 'target')).toMatch(/^ok +target +duckdb \(duckdb: target\/tsform.duckdb\): connected$/);
    expect(line(r.out, 'vault')).toMatch(/^ok +vault +key kf_[0-9a-f]{8,}/);
  });

  it('a broken model, a bad target path, an unknown target, an unset URL: FAIL lines, exit 2, TSF309', async () => {
    writeFileSync(join(demo.dir, 'models/marts/broken.sql'), 'select practice_id from {{ref "no_such_model"}}\n');
    try {
      const r = await cli('debug', '--project-dir', demo.dir, '--target-path', '.');
      expect(r.code).toBe(2);
      expect(line(r.out, 'project')).toMatch(/^FAIL project +1 error\(s\): models\/marts\/broken.sql:1.*TSF202/);
      expect(line(r.out, 'artifacts')).toContain('TSF306');
      // The connection is still checked: tsform.yml reads.
      expect(line(r.out, 'target')).toMatch(/^ok /);
      expect(r.err).toContain('TSF309: 2 check(s) failed: project, artifacts');
    } finally {
      writeFileSync(join(demo.dir, 'models/marts/broken.sql'), 'select practice_id from {{ref "stg_providers"}}\n');
    }
    const unknown = await cli('debug', '--project-dir', demo.dir, '--target', 'snowflake');
    expect(unknown.code).toBe(2);
    expect(line(unknown.out, 'target')).toContain("unknown target 'snowflake'");
    delete process.env.TSFORM_PG_URL;
    const unset = await cli('debug', '--project-dir', demo.dir, '--target', 'postgres');
    expect(unset.code).toBe(2);
    expect(line(unset.out, 'target')).toContain('$TSFORM_PG_URL, which is not set');
  });

  it('PostgreSQL: connected, and a vault without a key is a failed check naming vault init', async () => {
    pg = await startThrowawayPostgres();
    process.env.TSFORM_PG_URL = pg.url;
    // With $TSFORM_VAULT_KEY set (vitest.config.ts sets a test key), the next run records it: ok.
    const withKey = await cli('debug', '--project-dir', demo.dir, '--target', 'postgres');
    expect(withKey.code, withKey.err).toBe(0);
    expect(line(withKey.out, 'vault')).toContain("the next run records $TSFORM_VAULT_KEY's fingerprint");
    const key = process.env.TSFORM_VAULT_KEY;
    delete process.env.TSFORM_VAULT_KEY;
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli('debug', '--project-dir', demo.dir, '--target', 'postgres');
    } finally {
      process.env.TSFORM_VAULT_KEY = key;
    }
    expect(r.out[0]).toMatch(/ · engine PostgreSQL \d+/);
    expect(line(r.out, 'target')).toMatch(/^ok +target +postgres \(postgres: \$TSFORM_PG_URL\): connected; functions by name from pg_catalog$/);
    expect(line(r.out, 'vault')).toContain('tsform vault init --target postgres');
    expect(r.code).toBe(2);
    expect(r.err).toContain('TSF309: 1 check(s) failed: vault');
    // The URL (it may hold a password) is never printed.
    expect(r.out.join('\n') + r.err).not.toContain(pg.url);
  }, 120_000);
});
