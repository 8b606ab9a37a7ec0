import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { practiceRole } from '../../src/security/render-rls.ts';
import { compileWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ServerLogCapture, type ThrowawayPostgres } from '../support/postgres.ts';
import { asSuperuser, cli, OWNER, parseVerifyTable, urlAs } from '../support/rls-fixture.ts';
import { waitFor } from '../support/wait-for.ts';

/**
 * Issue 12, items 4 and 10, on a real server: a re-identification cannot be rolled back out of
 * the audit (the identity needs a ticket committed by an earlier transaction), the audit cannot
 * be truncated, and `tsform vault init` never sends the key as a (logged) bind parameter.
 */

const TOKEN = `pt_${'1a'.repeat(32)}`;
const LONELY_TOKEN = `pt_${'2b'.repeat(32)}`;
const REASON = 'audit test: patient asked for a record review';
const STEWARD = 'vault_steward';
const SECOND_STEWARD = 'vault_steward_two';

let server: ThrowawayPostgres;
let demo: DemoCopy;
let ownerUrl: string;
const passwords = new Map<string, string>();
let initLog = '';
let initRun: { code: number; stdout: string; stderr: string };

const urlOf = (role: string) => urlAs(server.url, role, passwords.get(role)!);
const sql = (text: string, values: unknown[] = []) => asSuperuser(server.url, (c) => c.query(text, values));
const as = <T>(role: string, run: (c: pg.Client) => Promise<T>) => asSuperuser(urlOf(role), run);

async function setPassword(c: pg.Client, role: string): Promise<void> {
  const password = randomBytes(12).toString('hex');
  passwords.set(role, password);
  const { rows } = await c.query('SELECT format($3::text, $1::text, $2::text) AS sql', [role, password, 'ALTER ROLE %I PASSWORD %L']);
  await c.query(String(rows[0]?.sql));
}

/** The log lines the server wrote so far, once `until` shows up (stderr is a pipe: it comes a moment later). */
async function logUntil(capture: ServerLogCapture, until: RegExp): Promise<string> {
  await waitFor(`${until} in the server log`, () => until.test(capture.text()), { withinMs: 5_000 }).catch(() => undefined);
  return capture.text();
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function sqlstateOf(run: Promise<unknown>): Promise<string> {
  return run.then(
    () => 'ok',
    (err: { code?: string }) => err.code ?? String(err),
  );
}

const auditRows = async (token: string) =>
  (await sql(`SELECT ticket::text AS ticket, actor::text AS actor, reason, records_found FROM vault.reidentification_audit WHERE token = $1 ORDER BY ticket`, [token])).rows;

beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(2) });
  await asSuperuser(server.url, async (c) => {
    await c.query(`CREATE ROLE ${quoteIdent(OWNER)} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS`);
    await setPassword(c, OWNER);
    const db = await c.query('SELECT current_database() AS name');
    await c.query(`GRANT CREATE ON DATABASE ${quoteIdent(String(db.rows[0]?.name))} TO ${quoteIdent(OWNER)}`);
    // Every statement of the owner's sessions goes to the server log, with its bind parameters.
    await c.query(`ALTER ROLE ${quoteIdent(OWNER)} SET log_statement = 'all'`);
  });
  ownerUrl = urlOf(OWNER);
  // An audit table from before tickets, with one row: apply must upgrade it in place.
  await as(OWNER, async (c) => {
    await c.query('CREATE SCHEMA vault');
    await c.query('CREATE TABLE vault.reidentification_audit (actor name NOT NULL, at timestamptz NOT NULL DEFAULT now(), reason text NOT NULL, token text NOT NULL, records_found integer NOT NULL)');
    await c.query(`INSERT INTO vault.reidentification_audit (actor, reason, token, records_found) VALUES ('vault_steward', 'an old re-identification', $1, 2)`, [TOKEN]);
  });

  const capture = server.captureLog?.();
  // No key in the environment: vault init makes one and keeps it in vault.keys.
  initRun = await cli(['vault', 'init', '--project-dir', demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: ownerUrl, TSFORM_VAULT_KEY: undefined });
  if (capture) {
    initLog = await logUntil(capture, /COPY "?vault"?\."?keys"?/);
    capture.stop();
  }
  await sql(`ALTER ROLE ${quoteIdent(OWNER)} RESET log_statement`);

  const applied = await cli(['policies', 'apply', '--project-dir', demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: ownerUrl });
  if (applied.code !== 0) throw new Error(`policies apply exited ${applied.code}:\n${applied.stderr}\n${applied.stdout}`);
  // The token map as the vault node would leave it (the demo is not built here: only the vault matters).
  await as(OWNER, async (c) => {
    await c.query(`CREATE TABLE vault.person_tokens (practice_id varchar NOT NULL, patient_id varchar NOT NULL, person_token varchar NOT NULL,
      practice_token varchar NOT NULL, date_shift_days integer NOT NULL, key_fingerprint varchar NOT NULL)`);
    await c.query(`INSERT INTO vault.person_tokens VALUES ('p_a', 'patient-1', $1, 'pr_a', 3, 'kf'), ('p_b', 'patient-9', $1, 'pr_b', -2, 'kf'), ('p_a', 'patient-2', $2, 'pr_a', 1, 'kf')`, [TOKEN, LONELY_TOKEN]);
  });
  await asSuperuser(server.url, async (c) => {
    await c.query(`CREATE ROLE ${quoteIdent(SECOND_STEWARD)} LOGIN IN ROLE ${quoteIdent(STEWARD)}`);
    const practice = practiceRole(compileWorkspace(demo.dir, { write: false }).project.policies!, demo.tenantIds[0]!);
    for (const role of [STEWARD, SECOND_STEWARD, 'research_reader', practice]) await setPassword(c, role);
    practiceRoleName = practice;
  });
}, 300_000);

let practiceRoleName = '';

afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

describe('tsform vault init on PostgreSQL (log_statement = all)', () => {
  it('stores the key without sending it as a bind parameter: the statement is logged, the key is not', async (ctx) => {
    expect(initRun.code, initRun.stderr).toBe(0);
    if (!server.captureLog) ctx.skip('the server log is readable only on the harness\'s own cluster (TSFORM_TEST_PG_URL is set)');
    const { rows } = await sql('SELECT fingerprint, key_hex FROM vault.keys');
    expect(rows).toHaveLength(1);
    const keyHex = String(rows[0]!.key_hex);
    expect(keyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(initLog.toLowerCase()).not.toContain(keyHex);
    expect(initLog.toLowerCase()).not.toContain(keyHex.slice(0, 16));
    // Logging was on for this session: the statements of vault init are there, COPY included.
    expect(initLog).toMatch(/LOG: {2}(statement|execute [^:]*): CREATE TABLE IF NOT EXISTS "?vault"?\."?keys"?/);
    expect(initLog).toMatch(/LOG: {2}(statement|execute [^:]*): COPY "?vault"?\."?keys"? \("?fingerprint"?, "?key_hex"?, "?created_at"?\) FROM STDIN/);
    expect(initRun.stdout).not.toContain(keyHex);
  });

  it('would have caught a bound key: a parameter of a logged statement is in the log', async (ctx) => {
    const capture = server.captureLog?.();
    if (!capture) return ctx.skip('the server log is readable only on the harness\'s own cluster (TSFORM_TEST_PG_URL is set)');
    const marker = randomBytes(16).toString('hex');
    await sql(`ALTER ROLE ${quoteIdent(OWNER)} SET log_statement = 'all'`);
    try {
      await as(OWNER, (c) => c.query('SELECT $1::text AS probe', [marker]));
      expect(await logUntil(capture, new RegExp(marker))).toContain(marker);
    } finally {
      capture.stop();
      await sql(`ALTER ROLE ${quoteIdent(OWNER)} RESET log_statement`);
    }
  });
});

describe('re-identification on PostgreSQL', () => {
  it('tsform reidentify: two transactions, the records, an audit row and a lookup row', async () => {
    const run = await cli(['reidentify', '--project-dir', demo.dir, '--target', 'postgres', '--token', TOKEN, '--reason', REASON], { TSFORM_PG_URL: urlOf(STEWARD) });
    expect(run.code, run.stderr).toBe(0);
    const ticket = /\(ticket (\d+)\)$/.exec(run.stdout.trim())?.[1];
    expect(run.stdout.split('\n')).toEqual(['p_a\tpatient-1', 'p_b\tpatient-9', `2 record(s); audited as vault_steward (ticket ${ticket})`]);
    const audit = (await auditRows(TOKEN)).filter((r) => r.ticket === ticket);
    expect(audit).toEqual([{ ticket, actor: STEWARD, reason: REASON, records_found: 2 }]);
    const lookups = await sql('SELECT actor::text AS actor, records_returned FROM vault.reidentification_lookups WHERE ticket = $1', [audit[0]!.ticket]);
    expect(lookups.rows).toEqual([{ actor: STEWARD, records_returned: 2 }]);
  });

  it('tsform reidentify as a role that is not vault_steward: TSF415, nothing audited, no record', async () => {
    const before = await auditRows(TOKEN);
    const run = await cli(['reidentify', '--project-dir', demo.dir, '--target', 'postgres', '--token', TOKEN, '--reason', REASON], { TSFORM_PG_URL: urlOf('research_reader') });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/error TSF415: re-identification refused: 42501: permission denied for schema vault/);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/patient-/);
    expect(await auditRows(TOKEN)).toEqual(before);
  });

  it('an unknown token is audited too, and the CLI says so (exit 1)', async () => {
    const unknown = `pt_${'9f'.repeat(32)}`;
    const run = await cli(['reidentify', '--project-dir', demo.dir, '--target', 'postgres', '--token', unknown, '--reason', REASON], { TSFORM_PG_URL: urlOf(STEWARD) });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^no person has token pt_(9f){32}; the attempt was audited as vault_steward \(ticket \d+\)$/);
    expect(await auditRows(unknown)).toEqual([{ ticket: expect.any(String), actor: STEWARD, reason: REASON, records_found: 0 }]);
  });

  it('BEGIN; request; reidentify; ROLLBACK returns no identity (the ticket is not committed yet)', async () => {
    const before = await auditRows(LONELY_TOKEN);
    await as(STEWARD, async (c) => {
      await c.query('BEGIN');
      const { rows } = await c.query('SELECT vault.request_reidentification($1, $2) AS ticket', [LONELY_TOKEN, REASON]);
      const err = await c.query('SELECT * FROM vault.reidentify($1)', [rows[0]!.ticket]).then(
        () => undefined,
        (e: { code?: string; message: string }) => e,
      );
      expect(err?.code).toBe('55000');
      expect(err?.message).toMatch(/is not committed yet/);
      await c.query('ROLLBACK');
    });
    expect(await auditRows(LONELY_TOKEN)).toEqual(before);
  });

  it('a savepoint does not help: ROLLBACK TO and RELEASE still leave the ticket uncommitted', async () => {
    await as(STEWARD, async (c) => {
      await c.query('BEGIN');
      await c.query('SAVEPOINT s1');
      const { rows } = await c.query('SELECT vault.request_reidentification($1, $2) AS ticket', [LONELY_TOKEN, REASON]);
      await c.query('RELEASE SAVEPOINT s1');
      await c.query('SAVEPOINT s2');
      expect(await sqlstateOf(c.query('SELECT * FROM vault.reidentify($1)', [rows[0]!.ticket]))).toBe('55000');
      await c.query('ROLLBACK TO SAVEPOINT s2');
      expect(await sqlstateOf(c.query('SELECT * FROM vault.reidentify($1)', [rows[0]!.ticket]))).toBe('55000');
      await c.query('ROLLBACK');
    });
  });

  it('BEGIN; reidentify(committed ticket); ROLLBACK: the identity was returned, and the audit row stays', async () => {
    const ticket = await as(STEWARD, async (c) => (await c.query('SELECT vault.request_reidentification($1, $2) AS ticket', [LONELY_TOKEN, REASON])).rows[0]!.ticket as string);
    const returned = await as(STEWARD, async (c) => {
      await c.query('BEGIN');
      const { rows } = await c.query('SELECT practice_id, patient_id, audited_as::text AS audited_as FROM vault.reidentify($1)', [ticket]);
      await c.query('ROLLBACK');
      return rows;
    });
    expect(returned).toEqual([{ practice_id: 'p_a', patient_id: 'patient-2', audited_as: STEWARD }]);
    expect((await auditRows(LONELY_TOKEN)).filter((r) => r.ticket === String(ticket))).toEqual([{ ticket: String(ticket), actor: STEWARD, reason: REASON, records_found: 1 }]);
  });

  it('a ticket serves once, and only the steward who requested it', async () => {
    const ticket = await as(STEWARD, async (c) => (await c.query('SELECT vault.request_reidentification($1, $2) AS ticket', [TOKEN, REASON])).rows[0]!.ticket as string);
    // another steward (a member of vault_steward) may not use it, and learns nothing from trying
    const stranger = await as(SECOND_STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1)', [ticket]).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`));
    expect(stranger).toBe(`42501 re-identification ticket ${ticket} is not a ticket of ${SECOND_STEWARD}`);
    const missing = await as(SECOND_STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1)', ['987654321']).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`));
    expect(missing).toBe(`42501 re-identification ticket 987654321 is not a ticket of ${SECOND_STEWARD}`);
    expect((await as(STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1)', [ticket]))).rows).toHaveLength(2);
    const again = await as(STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1)', [ticket]).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`));
    expect(again).toBe(`55000 re-identification ticket ${ticket} was used already: request a new one`);
    expect((await sql('SELECT count(*)::int AS n FROM vault.reidentification_lookups WHERE ticket = $1', [ticket])).rows[0]!.n).toBe(1);
  });

  it('a reason is required; the one-step reidentify(token, reason) is gone', async () => {
    expect(await sqlstateOf(as(STEWARD, (c) => c.query('SELECT vault.request_reidentification($1, $2)', [TOKEN, ' short  '])))).toBe('22023');
    expect(await sqlstateOf(as(STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1::text, $2::text)', [TOKEN, REASON])))).toBe('42883');
  });

  it('an audit row from before tickets was kept, numbered, and cannot be used to look up', async () => {
    const old = (await auditRows(TOKEN)).filter((r) => r.reason === 'an old re-identification');
    expect(old).toEqual([{ ticket: expect.stringMatching(/^\d+$/), actor: STEWARD, reason: 'an old re-identification', records_found: 2 }]);
    expect(await sqlstateOf(as(STEWARD, (c) => c.query('SELECT * FROM vault.reidentify($1)', [old[0]!.ticket])))).toBe('55000');
  });

  it('the owner cannot TRUNCATE the audit tables (refused); its UPDATE and DELETE are recorded; the steward can do none of them', async () => {
    // an audit row of this case's own (a token no other case uses)
    const token = `pt_${'7c'.repeat(32)}`;
    await as(STEWARD, (c) => c.query('SELECT vault.request_reidentification($1, $2)', [token, REASON]));
    const count = async () => Number((await sql('SELECT count(*) AS n FROM vault.reidentification_audit')).rows[0]!.n);
    const before = await count();
    for (const table of ['reidentification_audit', 'reidentification_lookups', 'reidentification_audit_changes']) {
      const err = await as(OWNER, (c) => c.query(`TRUNCATE vault.${table}`).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`));
      expect(err).toBe(`42501 the re-identification audit is append-only: TRUNCATE of ${table} is refused`);
    }
    expect(await count()).toBe(before);
    // the steward who is audited holds no UPDATE, DELETE or TRUNCATE on the audit
    for (const statement of [`UPDATE vault.reidentification_audit SET reason = 'rewritten' WHERE token = $1`, 'DELETE FROM vault.reidentification_audit WHERE token = $1']) {
      expect(await sqlstateOf(as(STEWARD, (c) => c.query(statement, [token]))), statement).toBe('42501');
    }
    expect(await sqlstateOf(as(STEWARD, (c) => c.query('TRUNCATE vault.reidentification_audit')))).toBe('42501');
    expect(await auditRows(token)).toEqual([{ ticket: expect.any(String), actor: STEWARD, reason: REASON, records_found: 0 }]);
    // the owner can change it, and each change keeps the row as it was
    await as(OWNER, (c) => c.query(`UPDATE vault.reidentification_audit SET reason = 'rewritten by the owner' WHERE token = $1`, [token]));
    await as(OWNER, (c) => c.query('DELETE FROM vault.reidentification_audit WHERE token = $1', [token]));
    expect(await auditRows(token)).toEqual([]);
    const changes = await sql(
      `SELECT changed_by::text AS by, operation, table_name::text AS t, old_row->>'reason' AS reason FROM vault.reidentification_audit_changes WHERE old_row->>'token' = $1 ORDER BY at`,
      [token],
    );
    expect(changes.rows).toEqual([
      { by: OWNER, operation: 'UPDATE', t: 'reidentification_audit', reason: REASON },
      { by: OWNER, operation: 'DELETE', t: 'reidentification_audit', reason: 'rewritten by the owner' },
    ]);
  });

  it('research_reader and practice roles cannot request or look up, nor read the audit', async () => {
    for (const role of ['research_reader', practiceRoleName]) {
      expect(await sqlstateOf(as(role, (c) => c.query('SELECT vault.request_reidentification($1, $2)', [TOKEN, REASON]))), role).toBe('42501');
      expect(await sqlstateOf(as(role, (c) => c.query('SELECT * FROM vault.reidentify(1)'))), role).toBe('42501');
      expect(await sqlstateOf(as(role, (c) => c.query('SELECT * FROM vault.reidentification_audit'))), role).toBe('42501');
    }
    // nor could they if they reached the schema: EXECUTE is vault_steward's alone
    const { rows } = await sql(
      `SELECT p.oid::regprocedure::text AS fn, r.rolname::text AS role FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         CROSS JOIN pg_roles r
        WHERE n.nspname = 'vault' AND p.prosecdef AND r.rolname = ANY($1) AND has_function_privilege(r.oid, p.oid, 'EXECUTE') ORDER BY 1, 2`,
      [['research_reader', practiceRoleName, 'tsform_practices', 'tsform_practice_groups', STEWARD]],
    );
    expect(rows).toEqual([
      { fn: 'vault.reidentify(bigint)', role: STEWARD },
      { fn: 'vault.request_reidentification(text,text)', role: STEWARD },
    ]);
  });

  it('policies verify: no probed role may execute a SECURITY DEFINER function', async () => {
    const run = await cli(['policies', 'verify', '--project-dir', demo.dir, '--target', 'postgres'], { TSFORM_PG_ADMIN_URL: server.url, TSFORM_PG_URL: undefined });
    // Nothing is built here, so relation checks fail; the role checks must pass.
    const table = parseVerifyTable(run.stdout);
    expect(table.get('(database) functions'), run.stdout).toMatchObject({ failed: 0 });
    expect(table.get('(database) functions')!.passed).toBeGreaterThan(0);
    expect(table.get('vault.* schema_usage'), run.stdout).toMatchObject({ failed: 0 });
  });
});
