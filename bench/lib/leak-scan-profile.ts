/**
 * `tsx bench/lib/leak-scan-profile.ts <projectDir> [model] [practices]`: the leak scan of one
 * batch of a built DuckDB project (or, with PROFILE_PG_URL, of that PostgreSQL warehouse) (the first `practices`, default 50, of the model's pseudonymized
 * relation, staged as the runner stages a batch), timed per statement. Prints JSON. For finding
 * what a batch's scan costs (bench:nightly names the scan among its costs); no value is printed.
 */
import { join } from 'node:path';
import type { Session } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { compileWorkspace } from '../../src/cli/api.ts';
import { scanRelations } from '../../src/execute/leak-scan.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';

const [projectDir, model = 'pseudo_encounters', practices = '50'] = process.argv.slice(2);
if (!projectDir) throw new Error('usage: leak-scan-profile.ts <projectDir> [model] [practices]');
const ws = compileWorkspace(projectDir);
const root = ws.manifest.models[model];
if (!root) throw new Error(`no model ${model}`);
const t = join(projectDir, 'target');
const pgUrl = process.env.PROFILE_PG_URL;
const adapter = pgUrl ? await createPostgresAdapter({ url: pgUrl, poolSize: 1 }) : await DuckDBAdapter.open({ path: join(t, 'tsform.duckdb'), connections: 1, attach: { research: join(t, 'research.duckdb'), vault: join(t, 'vault.duckdb') } });
try {
  const rel = quoteRelation(root.schema, root.identifier);
  const tc = quoteIdent(ws.manifest.tenant_column);
  const tenants = (await adapter.query(`SELECT DISTINCT ${tc} AS t FROM ${rel} ORDER BY 1 LIMIT ${Number(practices)}`)).rows.map((r) => String(r.t));
  const out = await adapter.transaction(async (s) => {
    await s.createTempTableAs('__profile_staged', `SELECT * FROM ${rel} WHERE ${tc} = ANY($1::VARCHAR[])`, [tenants]);
    const columns = (await s.query(`SELECT * FROM ${quoteIdent('__profile_staged')} LIMIT 0`)).columns;
    const statements: { what: string; ms: number }[] = [];
    const timed: Session = {
      ...s,
      async createTempTableAs(name, sql, params) {
        const t0 = performance.now();
        await s.createTempTableAs(name, sql, params);
        statements.push({ what: `temp table ${name}`, ms: Math.round(performance.now() - t0) });
      },
      async query(sql, params) {
        const t0 = performance.now();
        const r = await s.query(sql, params);
        statements.push({ what: sql.slice(0, 48).replace(/\s+/g, ' '), ms: Math.round(performance.now() - t0) });
        return r;
      },
    };
    const t0 = performance.now();
    const findings = await scanRelations(timed, ws.manifest, ws.project.config.privacy!, [root], [{ name: model, relationSql: quoteIdent('__profile_staged'), columns }], tenants);
    const rows = Number((await s.query(`SELECT count(*) AS n FROM ${quoteIdent('__profile_staged')}`)).rows[0]!.n);
    return { model, practices: tenants.length, rows, scan_ms: Math.round(performance.now() - t0), findings: findings.length, statements: statements.filter((x) => x.ms >= 5) };
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await adapter.close();
}
