import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { vi } from 'vitest';
import type { VerifyInput } from '../../src/adapters/postgres/policy-verifier.ts';
import { compileWorkspace, policyContext, runWorkspace } from '../../src/cli/api.ts';
import { runCli } from '../../src/cli/program.ts';
import { verifyInputOf } from '../../src/cli/policies.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from './demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from './postgres.ts';

/** Role that builds and owns every relation, as in policies/policies.yml. */
export const OWNER = 'tsform_owner';

/**
 * A throwaway PostgreSQL with the demo project built by a non-superuser owner (CREATEROLE,
 * CREATE on the database) and `tsform policies apply` run once: the warehouse of DESIGN §5.
 */
export interface RlsWarehouse {
  server: ThrowawayPostgres;
  demo: DemoCopy;
  /** Superuser URL: what `policies verify` connects with. */
  superUrl: string;
  /** The owner's URL: what `build` and `policies apply` connect with. */
  ownerUrl: string;
  /** What `tsform policies apply` printed. */
  applied: string;
  stop(): Promise<void>;
}

export async function startRlsWarehouse(opts: {
  tenants: number;
  policies?: (yml: string) => string;
  /** Rewrites the copy's tsform.yml (e.g. a target option) before the build. */
  tsformYml?: (yml: string, tenantIds: string[]) => string;
  /** Files written into the copy (project-relative path → text), e.g. a policies/<template>.hbs. */
  files?: Record<string, string>;
  /** Run as the superuser once the owner role exists, before the build (e.g. objects another role plants). */
  beforeBuild?: (superUrl: string) => Promise<void>;
}): Promise<RlsWarehouse> {
  const server = await startThrowawayPostgres();
  const demo = copyDemoProject({ tenants: sampleTenants(opts.tenants), files: opts.files });
  const policiesFile = join(demo.dir, 'policies/policies.yml');
  if (!existsSync(policiesFile)) cpSync(join(REPO_ROOT, 'policies'), join(demo.dir, 'policies'), { recursive: true });
  if (opts.policies) writeFileSync(policiesFile, opts.policies(readFileSync(policiesFile, 'utf8')));
  const configFile = join(demo.dir, 'tsform.yml');
  if (opts.tsformYml) writeFileSync(configFile, opts.tsformYml(readFileSync(configFile, 'utf8'), demo.tenantIds));
  const stop = async () => {
    demo.remove();
    await server.stop();
  };
  try {
    const password = randomBytes(12).toString('hex');
    await asSuperuser(server.url, async (c) => {
      await c.query(`CREATE ROLE ${quoteIdent(OWNER)} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS`);
      // CREATE ROLE takes no parameters: the server quotes the password into the statement.
      const { rows } = await c.query('SELECT format($3::text, $1::text, $2::text) AS sql', [OWNER, password, 'ALTER ROLE %I PASSWORD %L']);
      await c.query(String(rows[0]?.sql));
      const db = await c.query('SELECT current_database() AS name');
      await c.query(`GRANT CREATE ON DATABASE ${quoteIdent(String(db.rows[0]?.name))} TO ${quoteIdent(OWNER)}`);
    });
    const ownerUrl = urlAs(server.url, OWNER, password);
    await opts.beforeBuild?.(server.url);
    await buildAs(demo.dir, ownerUrl);
    const applied = await cli(['policies', 'apply', '--project-dir', demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: ownerUrl });
    if (applied.code !== 0) throw new Error(`policies apply exited ${applied.code}:\n${applied.stderr}`);
    return { server, demo, superUrl: server.url, ownerUrl, applied: applied.stdout, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * `tsform build` on PostgreSQL. Two batches of one model may race to create its table
 * (`CREATE TABLE IF NOT EXISTS` is not safe across concurrent transactions: 42710 on pg_type);
 * that runner bug is not what these tests are about, so such a build is run once more.
 */
async function buildAs(projectDir: string, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const built = await withEnv({ TSFORM_PG_URL: url }, () => runWorkspace({ projectDir, command: 'build', target: 'postgres' }));
    const failed = built.results.filter((r) => r.status === 'error').map((r) => `${r.node}: ${r.message}`);
    if (failed.length === 0) return;
    const raced = failed.every((f) => /42710|23505|already exists/.test(f));
    if (!raced || attempt === 2) throw new Error(`building the demo as ${OWNER} failed:\n${failed.slice(0, 10).join('\n')}`);
    console.warn(`build raced on table creation, building again:\n${failed.join('\n')}`);
  }
}

export function urlAs(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export async function asSuperuser<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Sets environment variables for the duration of `run` (test files run in their own process). */
export async function withEnv<T>(vars: Record<string, string | undefined>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const assign = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  assign(vars);
  try {
    return await run();
  } finally {
    assign(saved);
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `tsform <args>` in process: stdout through runCli's `out`, stderr captured from the process. */
export async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const lines: string[] = [];
  const errors: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    errors.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  try {
    const code = await withEnv(env, () => runCli(['node', 'tsform', ...args], (l) => lines.push(l)));
    return { code, stdout: lines.join('\n'), stderr: errors.join('') };
  } finally {
    spy.mockRestore();
  }
}

/** The input `tsform policies verify` builds (src/cli/policies.ts), for calling the verifier directly. */
export function verifyInputFor(projectDir: string, url: string): VerifyInput {
  const ws = compileWorkspace(projectDir, { write: false });
  const ctx = policyContext(ws);
  if (!ctx) throw new Error(`${projectDir} has no policies/policies.yml`);
  return verifyInputOf(ws, ctx, url);
}

export interface VerifyRow {
  passed: number;
  failed: number;
}

/** The relation × check table of `policies verify` output, keyed `relation check`. */
export function parseVerifyTable(stdout: string): Map<string, VerifyRow> {
  const rows = new Map<string, VerifyRow>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+(\w+)\s+(\d+)\s+(\d+)(\s+FAILED)?$/.exec(line.trimEnd());
    if (m) rows.set(`${m[1]} ${m[2]}`, { passed: Number(m[3]), failed: Number(m[4]) });
  }
  return rows;
}

/** `relation check` pairs with at least one failure. */
export function failedPairs(stdout: string): string[] {
  return [...parseVerifyTable(stdout)].filter(([, r]) => r.failed > 0).map(([k]) => k).sort();
}
