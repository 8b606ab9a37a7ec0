import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { auditedActor } from '../../src/cli/privacy.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, targetFiles, withDuckFile, withEnv } from '../support/research-fixture.ts';

/**
 * Issue 12 item 5 on DuckDB: the files tsform creates hold PHI (warehouse), the key and token map
 * (vault) or what a researcher receives (research): each is 0600 in a 0700 folder, a looser one is
 * tightened when tsform opens it, and the research file holds nothing of the vault. Nothing read
 * from the files is printed: the key is compared as bytes, relations by name.
 */

const mode = (path: string) => statSync(path).mode & 0o777;
const WAL = '.wal';

let demo: DemoCopy;
let target: string;

beforeAll(async () => {
  demo = copyDemoProject({ tenants: sampleTenants(2) });
  target = join(demo.dir, 'target');
  // A key made by the vault (not supplied by the environment), so that it is in vault.duckdb.
  await withEnv({ TSFORM_VAULT_KEY: undefined }, async () => {
    const init = await cli(['vault', 'init', '--project-dir', demo.dir]);
    expect(init.code).toBe(0);
    await runWorkspace({ projectDir: demo.dir, command: 'build' });
  });
}, 600_000);

afterAll(() => demo?.remove());

describe('DuckDB files are private to their owner', () => {
  it('creates target/ 0700 and the warehouse, research and vault files (and any log) 0600', () => {
    expect(mode(target).toString(8)).toBe('700');
    for (const [name, file] of Object.entries(targetFiles(demo.dir))) {
      expect(existsSync(file), name).toBe(true);
      expect(mode(file).toString(8), name).toBe('600');
      if (existsSync(file + WAL)) expect(mode(file + WAL).toString(8), `${name}${WAL}`).toBe('600');
    }
  });

  it('tightens a folder and files left looser when tsform opens them', async () => {
    const files = targetFiles(demo.dir);
    chmodSync(target, 0o755);
    for (const f of Object.values(files)) chmodSync(f, 0o644);
    // DuckDB's spill folder, as an earlier run under a looser umask would have left it.
    mkdirSync(`${files.vault}.tmp`, { mode: 0o755 });
    chmodSync(`${files.vault}.tmp`, 0o755);
    await withEnv({ TSFORM_VAULT_KEY: undefined }, async () => {
      expect((await cli(['vault', 'init', '--project-dir', demo.dir])).code).toBe(0);
    });
    expect(mode(target).toString(8)).toBe('700');
    for (const [name, file] of Object.entries(files)) expect(mode(file).toString(8), name).toBe('600');
    expect(mode(`${files.vault}.tmp`).toString(8)).toBe('700');
  });

  it('creates a missing folder 0700 and a new database and its log 0600', async () => {
    const file = join(demo.dir, 'elsewhere/deeper/new.duckdb');
    const db = await DuckDBAdapter.open({ path: file, connections: 1 });
    try {
      await db.query('CREATE TABLE t AS SELECT 1 AS a');
      expect(mode(join(demo.dir, 'elsewhere')).toString(8)).toBe('700');
      expect(mode(join(demo.dir, 'elsewhere/deeper')).toString(8)).toBe('700');
      expect(mode(file).toString(8)).toBe('600');
    } finally {
      await db.close();
    }
    expect(mode(file).toString(8)).toBe('600');
    if (existsSync(file + WAL)) expect(mode(file + WAL).toString(8)).toBe('600');
  });
});

describe('a shared folder', () => {
  // Run as root, tsform could chmod /tmp itself: it must refuse instead (a stray bench once left
  // /tmp 0700 here, and every other user's throwaway PostgreSQL then failed).
  it.each([0o1777, 0o777, 0o1770])('is refused, never tightened (mode %o)', async (shared) => {
    const folder = join(demo.dir, `shared-${shared.toString(8)}`);
    mkdirSync(folder);
    chmodSync(folder, shared);
    const err = await DuckDBAdapter.open({ path: join(folder, 'x.duckdb'), connections: 1 }).then(
      async (db) => {
        await db.close();
        return undefined;
      },
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('TSF409');
    expect(err?.message).toMatch(/is shared \(mode \d+\); keep database files in a folder of their own/);
    expect((statSync(folder).mode & 0o7777).toString(8)).toBe(shared.toString(8));
    expect(existsSync(join(folder, 'x.duckdb'))).toBe(false);
  });
});

describe('the research file alone', () => {
  it('holds no vault schema, table, column or view, and attaches nothing', async () => {
    const names = await withDuckFile(targetFiles(demo.dir).research, async (q) => {
      const databases = (await q('SELECT database_name AS n FROM duckdb_databases() WHERE NOT internal')).map((r) => String(r.n));
      const schemas = (await q('SELECT DISTINCT schema_name AS n FROM duckdb_schemas() WHERE NOT internal')).map((r) => String(r.n));
      const tables = (await q('SELECT table_name AS n FROM duckdb_tables()')).map((r) => String(r.n));
      const columns = (await q('SELECT DISTINCT column_name AS n FROM duckdb_columns() WHERE NOT internal')).map((r) => String(r.n));
      const viewSql = (await q('SELECT coalesce(sql, \'\') AS s FROM duckdb_views() WHERE NOT internal')).map((r) => String(r.s));
      return { databases, schemas, tables, columns, viewSql };
    });
    expect(names.tables.length).toBeGreaterThan(0);
    expect(names.databases).toEqual(['research']);
    expect(names.schemas.filter((s) => /vault/i.test(s))).toEqual([]);
    expect(names.tables.filter((t) => /^(keys|person_tokens|reidentification_audit)$|vault/i.test(t))).toEqual([]);
    expect(names.columns.filter((c) => /key_hex|patient_id|date_shift_days/i.test(c))).toEqual([]);
    expect(names.viewSql.filter((s) => /vault/i.test(s)).length).toBe(0);
  });

  it('does not contain the vault key, as text or as bytes', async () => {
    const keyHex = await withDuckFile(targetFiles(demo.dir).vault, async (q) => String((await q('SELECT key_hex FROM keys'))[0]?.key_hex ?? ''));
    expect(keyHex).toMatch(/^[0-9a-f]{64}$/);
    const research = readFileSync(targetFiles(demo.dir).research);
    expect(research.includes(Buffer.from(keyHex, 'utf8'))).toBe(false);
    expect(research.includes(Buffer.from(keyHex, 'hex'))).toBe(false);
    // The vault does hold it: the search above can find what it looks for.
    expect(readFileSync(targetFiles(demo.dir).vault).includes(Buffer.from(keyHex, 'utf8'))).toBe(true);
  });
});

describe('the audited actor on DuckDB', () => {
  const me = userInfo().username;

  it('is the operating-system user; $TSFORM_ACTOR is only a claim beside it, never instead', () => {
    expect(auditedActor(undefined)).toBe(me);
    expect(auditedActor('')).toBe(me);
    expect(auditedActor(me)).toBe(me);
    expect(auditedActor('dr-somebody-else')).toBe(`${me} (claims "dr-somebody-else")`);
    // Control characters cannot forge a second audit line.
    expect(auditedActor('x\nroot')).toBe(`${me} (claims "xroot")`);
  });

  it('is what the audit row of a re-identification records', async () => {
    const unknown = `pt_${'0'.repeat(64)}`;
    const { code, lines } = await withEnv({ TSFORM_ACTOR: 'root', TSFORM_VAULT_KEY: undefined }, () =>
      cli(['reidentify', '--project-dir', demo.dir, '--token', unknown, '--reason', 'file-modes test: actor']),
    );
    expect(code).toBe(1);
    const expected = me === 'root' ? 'root' : `${me} (claims "root")`;
    expect(lines.at(-1)?.endsWith(`audited as ${expected}`)).toBe(true);
    const actors = await withDuckFile(targetFiles(demo.dir).vault, async (q) =>
      (await q(`SELECT actor FROM reidentification_audit WHERE reason = 'file-modes test: actor'`)).map((r) => String(r.actor)),
    );
    expect(actors).toEqual([expected]);
  });
});
