import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { compileWorkspace, runWorkspace } from '../../src/cli/api.ts';
import { TsformError } from '../../src/errors.ts';
import { initVault } from '../../src/execute/vault.ts';
import { systemClock } from '../../src/clock.ts';
import { keyFingerprint, parseKey } from '../../src/security/pseudonymize.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { cli, failuresOf, FINGERPRINT, resultsOf, targetFiles, VAULT_NODE, withDuckFile, withEnv } from '../support/research-fixture.ts';

/**
 * Issue 15, item 5: a run before `tsform vault init`. On DuckDB (the embedded default) the first
 * run creates the key itself and says so once, with its fingerprint; on PostgreSQL a run without
 * a key stops before any node, with one TSF413 naming `tsform vault init`.
 */

/** The identifiable path up to the first pseudonymized model: the vault node and what it reads. */
const SELECT = ['+pseudo_conditions'];
const twoSmall = (ids: string[]) => [...ids].sort().slice(0, 2);

const keysOf = (dir: string) =>
  withDuckFile(targetFiles(dir).vault, (q) => q(`SELECT fingerprint, key_hex FROM keys`)).then((rows) =>
    rows.map((r) => ({ fingerprint: String(r.fingerprint), keyHex: r.key_hex === null ? null : String(r.key_hex) })),
  );

describe('the first run on DuckDB, before `tsform vault init`', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: twoSmall });
  });
  afterAll(() => demo?.remove());

  it('creates the key itself, prints its fingerprint once (never the key), and builds the vault and research inputs', async () => {
    const first = await withEnv({ TSFORM_VAULT_KEY: undefined }, () =>
      cli(['run', '--project-dir', demo.dir, '--select', ...SELECT, '--log-format', 'text']),
    );
    const keys = await keysOf(demo.dir);
    expect(keys).toHaveLength(1);
    const [key] = keys;
    expect(key!.keyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(key!.fingerprint).toBe(keyFingerprint(Buffer.from(key!.keyHex!, 'hex')));
    const text = first.lines.join('\n');
    expect(text).not.toContain(key!.keyHex!);
    expect(text.match(new RegExp(FINGERPRINT.source, 'g'))).toEqual([key!.fingerprint]);
    expect(first.lines.filter((l) => l.includes('vault key'))).toHaveLength(1);
    expect(text).not.toContain('TSF413');
    expect(first.code).toBe(0);
  });

  it('a second run reuses the key: no new key, no notice, every practice tokenized', async () => {
    const before = await keysOf(demo.dir);
    const again = await withEnv({ TSFORM_VAULT_KEY: undefined }, () => runWorkspace({ projectDir: demo.dir, command: 'run', select: SELECT }));
    expect(failuresOf(again)).toEqual([]);
    expect(resultsOf(again, VAULT_NODE).map((r) => r.tenant).sort()).toEqual([...demo.tenantIds].sort());
    expect((again.notices ?? []).filter((n) => n.includes('vault key'))).toEqual([]);
    expect(await keysOf(demo.dir)).toEqual(before);
  });

  it('`tsform vault init` afterwards still works, and changes nothing', async () => {
    const [key] = await keysOf(demo.dir);
    const r = await withEnv({ TSFORM_VAULT_KEY: undefined }, () => cli(['vault', 'init', '--project-dir', demo.dir]));
    expect(r).toEqual({ code: 0, lines: [`vault already has key ${key!.fingerprint}; nothing changed`] });
  });
});

describe('a run on PostgreSQL without a vault key', () => {
  let pgServer: ThrowawayPostgres;
  let demo: DemoCopy;
  beforeAll(async () => {
    pgServer = await startThrowawayPostgres();
    demo = copyDemoProject({ tenants: twoSmall });
  });
  afterAll(async () => {
    demo?.remove();
    await pgServer?.stop();
  });

  it('stops before any node with one TSF413 naming `tsform vault init`', async () => {
    let nodes = 0;
    let planned = 0;
    const run = runWorkspace({
      projectDir: demo.dir,
      command: 'run',
      target: 'postgres',
      env: { TSFORM_PG_URL: pgServer.url },
      onPlan: () => planned++,
      onTaskEnd: (_s, results) => (nodes += results.length),
    });
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe('TSF413');
    expect((err as TsformError).message).toMatch(/the vault has no key: a vault steward runs `tsform vault init --target postgres` first/);
    expect({ planned, nodes }).toEqual({ planned: 0, nodes: 0 });
    expect(existsSync(join(demo.dir, 'target/run_results.json'))).toBe(false);
    const pg = await createPostgresAdapter({ url: pgServer.url, poolSize: 1 });
    try {
      const { rows } = await pg.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_schema IN ('staging', 'marts', 'vault', 'pseudo', 'research')`);
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      await pg.close();
    }
  });

  // Distributed workers settle the key at once (CI caught a duplicate-key failure on `keys`).
  it('processes settling the key at once leave one key in the vault, and all of them use it', async () => {
    const { privacy: maybePrivacy, schemas } = compileWorkspace(demo.dir).project.config;
    const privacy = maybePrivacy!;
    const at = await pgServer.createDatabase();
    const adapters = await Promise.all(Array.from({ length: 6 }, () => createPostgresAdapter({ url: at.url, poolSize: 2 })));
    try {
      const settle = (env: Record<string, string | undefined>) =>
        Promise.all(adapters.map((adapter) => initVault({ adapter, vaultSchema: schemas.vault, privacy, env, clock: systemClock })));
      const vaultRows = async () => (await adapters[0]!.query(`SELECT fingerprint, key_hex IS NULL AS from_env FROM ${schemas.vault}.keys`)).rows;
      const env = { [privacy.keyEnv]: process.env.TSFORM_VAULT_KEY };
      const supplied = keyFingerprint(parseKey(process.env.TSFORM_VAULT_KEY!));
      // Several rounds, each from nothing, so that the schema, the table and the key are all
      // created by racing processes. The catalog collision CI met ("relation keys already
      // exists") needs a narrow window that an idle machine does not hit: 30 rounds passed on
      // the code that had it, so this test guards the outcome, not that window.
      for (const round of Array.from({ length: 8 }, (_, i) => i + 1)) {
        await adapters[0]!.query(`DROP SCHEMA IF EXISTS ${schemas.vault} CASCADE`);
        const fromEnv = round % 2 === 0;
        const settled = await settle(fromEnv ? env : {});
        const rows = await vaultRows();
        expect({ round, keys: rows.length, fromEnv: rows.map((r) => Boolean(r.from_env)) }).toEqual({ round, keys: 1, fromEnv: [fromEnv] });
        const fingerprint = String(rows[0]!.fingerprint);
        if (fromEnv) expect(fingerprint).toBe(supplied);
        expect(settled.map((g) => g.fingerprint)).toEqual(adapters.map(() => fingerprint));
        expect(settled.filter((g) => g.created)).toHaveLength(1);
      }
    } finally {
      await Promise.all(adapters.map((a) => a.close()));
      await at.drop();
    }
  });
});
