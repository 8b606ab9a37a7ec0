import type pg from 'pg';
import { quoteIdent } from '../../sql/quote.ts';
import { count, DENIED, Impersonation, type Outcome } from './impersonation.ts';
import { sessionChecks } from './session-checks.ts';
import type { Catalog, Relation } from './verify-catalog.ts';
import type { ProbedRole, VerifyCheck, VerifyInput } from './verify-types.ts';

/** Its own connection per role: the session authorization and every probe's writes end with its ROLLBACK. */
export async function probeRole(pool: pg.Pool, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    // pg_catalog first and nothing a role could plant functions in; a stuck lock fails the probe
    await client.query("SELECT set_config('search_path', 'pg_catalog, pg_temp', true), set_config('lock_timeout', '10s', true), set_config('statement_timeout', '120s', true)");
    await client.query(`SET SESSION AUTHORIZATION ${quoteIdent(role.role)}`);
    await client.query('SAVEPOINT tsform_probe');
    const s = new Impersonation(client);
    return role.kind === 'research' ? await sessionChecks(s, input, cat, role, all) : await probePracticeRole(s, input, cat, role, all);
  } catch (err) {
    broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    await client.query('ROLLBACK').catch((e: Error) => (broken ??= e));
    await client.query('RESET SESSION AUTHORIZATION').catch((e: Error) => (broken ??= e));
    client.off('error', onError);
    client.release(broken);
  }
}

async function privileges(s: Impersonation, oids: number[]): Promise<Map<number, { read: boolean; insert: boolean; update: boolean; del: boolean }>> {
  const o = await s.run(
    `SELECT o::int8 AS oid, has_schema_privilege(c.relnamespace, 'USAGE') AS usage, has_table_privilege(o, 'SELECT') AS sel,
            has_table_privilege(o, 'INSERT') AS ins, has_table_privilege(o, 'UPDATE') AS upd, has_table_privilege(o, 'DELETE') AS del
       FROM unnest($1::oid[]) AS o JOIN pg_class c ON c.oid = o`,
    [oids.map(String)],
  );
  if (!o.ok) throw new Error(`reading privileges failed: ${o.code} ${o.message}`);
  return new Map(o.rows.map((r) => [Number(r.oid), { read: r.usage === true && r.sel === true, insert: r.ins === true, update: r.upd === true, del: r.del === true }]));
}

async function probePracticeRole(s: Impersonation, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const add = (relation: string, check: string, passed: boolean, detail: string) => out.push({ relation, check, role: role.role, passed, detail });
  const own = role.practices;
  const rels = cat.relations.filter((r) => r.oid !== undefined && r.hasTenantColumn);
  const privs = await privileges(s, rels.map((r) => r.oid!));
  const expected = (r: Relation) => own.reduce((n, p) => n + (r.rowsByPractice.get(p) ?? 0), 0);
  const victim = (r: Relation) =>
    [...r.rowsByPractice.entries()].filter(([p]) => !own.includes(p)).sort((a, b) => b[1] - a[1])[0]?.[0] ?? cat.practicesByRows.find((p) => !own.includes(p)) ?? 'p_nobody';
  const readable: Relation[] = [];

  for (const r of rels) {
    const priv = privs.get(r.oid!)!;
    const want = expected(r);
    const got = await s.run(r.sql.counts, [own]);
    if (!priv.read) {
      const denied = !got.ok && got.code === DENIED;
      add(r.label, 'no_access', denied, denied ? 'SELECT refused (42501)' : got.ok ? `read ${count(got)} rows without a SELECT grant` : `refused with ${got.code}, not 42501`);
    } else if (!got.ok) {
      add(r.label, 'own_rows', false, `SELECT is granted but fails: ${got.code} ${got.message}`);
    } else {
      readable.push(r);
      const total = count(got);
      const mine = count(got, 'own');
      add(r.label, 'own_rows', mine === want && total === want, `saw ${mine} own rows of ${want}`);
      add(r.label, 'other_rows', total - mine === 0, `${total - mine} rows of other practices`);
      const q = await s.copyLines(r.sql.copyQuery);
      const t = r.kind === 'table' ? await s.copyLines(r.sql.copyTable) : undefined;
      // Under row-level security PostgreSQL rewrites `COPY table TO` as a SELECT FROM ONLY that
      // table; a partitioned table's parent holds no rows of its own (partition_by_practice).
      const tableWant = r.relkind === 'p' ? 0 : want;
      const copyOk = q.ok && q.lines === want && (t === undefined || (t.ok && t.lines === tableWant));
      add(r.label, 'copy_out', copyOk, `COPY (SELECT …) ${q.ok ? `${q.lines} lines` : q.code}${t ? `, COPY table ${t.ok ? `${t.lines} lines` : t.code}` : ''}, expected ${want}${tableWant !== want ? ` (COPY table: ${tableWant}, a partitioned table)` : ''}`);
    }
    out.push(await writeOther(s, r, role.role, own, victim(r), priv));
  }

  // Spoofing: session settings set to another practice's id, and row_security off.
  for (const r of readable) {
    const want = expected(r);
    const v = victim(r);
    const spoofed = await spoofCounts(s, input.settingsToSpoof, v, r, own);
    const same = (o: Outcome) => o.ok && count(o) === want && count(o, 'own') === want;
    let detail = `${input.settingsToSpoof.length} settings set to another practice: ${spoofed.ok ? `${count(spoofed, 'own')} own, ${count(spoofed) - count(spoofed, 'own')} other rows` : spoofed.code}`;
    let passed = same(spoofed);
    if (!passed) {
      const culprits: string[] = [];
      for (const name of input.settingsToSpoof) if (!same(await spoofCounts(s, [name], v, r, own))) culprits.push(name);
      detail += `; leaks through ${culprits.join(', ') || 'their combination'}`;
    }
    const off = await s.run("SELECT set_config('row_security', 'off', false)");
    const offCounts = off.ok ? await s.run(r.sql.counts, [own]) : off;
    const offOk = !offCounts.ok ? offCounts.code === DENIED : same(offCounts);
    if (offCounts.ok) await s.undo();
    passed &&= offOk;
    add(r.label, 'spoof_setting', passed, `${detail}; row_security=off ${offCounts.ok ? `${count(offCounts)} rows` : `refused (${offCounts.code})`}`);
  }

  // SET ROLE to the groups this role belongs to, then RESET ROLE.
  const groups = cat.roles.get(role.role)?.member_of ?? [];
  const setRole = new Map<string, string[]>();
  const setRoleFail = new Set<string>();
  for (const g of groups) {
    const set = await s.run(`SET ROLE ${quoteIdent(g)}`);
    for (const r of rels) {
      if (!set.ok) {
        setRole.set(r.label, [...(setRole.get(r.label) ?? []), `SET ROLE ${g} refused`]);
        continue;
      }
      const o = await s.run(r.sql.counts, [own]);
      const other = o.ok ? count(o) - count(o, 'own') : 0;
      if (other !== 0) setRoleFail.add(r.label);
      setRole.set(r.label, [...(setRole.get(r.label) ?? []), `as ${g}: ${o.ok ? `${count(o)} rows, ${other} of other practices` : `refused (${o.code})`}`]);
      if (!o.ok) await s.run(`SET ROLE ${quoteIdent(g)}`);
    }
    if (set.ok) {
      await s.run('RESET ROLE');
      for (const r of readable) {
        const o = await s.run(r.sql.counts, [own]);
        if (!(o.ok && count(o) === expected(r) && count(o, 'own') === expected(r))) setRoleFail.add(r.label);
      }
      await s.undo();
    }
  }
  for (const r of rels) add(r.label, 'set_role', !setRoleFail.has(r.label), groups.length === 0 ? 'member of no group' : (setRole.get(r.label) ?? []).join('; '));

  out.push(...(await sessionChecks(s, input, cat, role, all)));
  return out;
}

async function spoofCounts(s: Impersonation, names: readonly string[], victim: string, r: Relation, own: string[]): Promise<Outcome> {
  const set = await s.run(`SELECT ${names.map((_, i) => `set_config($${i + 2}, $1, false)`).join(', ')}`, [victim, ...names]);
  if (!set.ok) return set;
  const o = await s.run(r.sql.counts, [own]);
  if (o.ok) await s.undo();
  return o;
}

/**
 * INSERT a row of another practice, move own rows to it, touch other practices' rows. Passes
 * when nothing is written; an error other than 42501 passes only without the privilege, since
 * with it the row-level check may not have been reached (a NOT NULL column, say).
 */
async function writeOther(s: Impersonation, r: Relation, role: string, own: string[], victim: string, priv: { insert: boolean; update: boolean; del: boolean }): Promise<VerifyCheck> {
  const notes: string[] = [];
  const verdicts: boolean[] = [];
  let wrote = false;
  // every probe runs, also after a failed one, so the detail names each outcome
  const judge = (what: string, o: Outcome, allowed: boolean): void => {
    if (o.ok) {
      wrote ||= o.rowCount > 0;
      notes.push(`${what}: ${o.rowCount} rows`);
      verdicts.push(o.rowCount === 0);
    } else {
      notes.push(`${what}: ${o.code}`);
      verdicts.push(o.code === DENIED || !allowed);
    }
  };
  const ins = await s.run(r.sql.insertValues, [victim]);
  if (!ins.ok && ins.code !== DENIED && priv.insert) {
    // The one-column row failed on another constraint: copy an own row with the id replaced.
    notes.push(`insert one column: ${ins.code}`);
    judge('insert copied row', await s.run(r.sql.insertFromOwn, [victim]), true);
  } else {
    judge('insert', ins, priv.insert);
  }
  judge('update to other', await s.run(r.sql.updateMove, [victim]), priv.update);
  judge('update others', await s.run(r.sql.updateOthers, [own]), priv.update);
  judge('delete others', await s.run(r.sql.deleteOthers, [own]), priv.del);
  const passed = verdicts.every(Boolean);
  if (wrote) await s.undo();
  return { relation: r.label, check: 'write_other', role, passed, detail: notes.join(', ') };
}
