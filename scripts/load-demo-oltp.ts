/**
 * Loads the demo EHR extracts (data/ehr/*.csv.gz) into a PostgreSQL OLTP schema `oltp`:
 *   TSFORM_OLTP_URL=postgres://... npx tsx scripts/load-demo-oltp.ts [--schema oltp]
 * Drops and re-creates the tables. Prints row counts only.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createPostgresAdapter } from '../src/adapters/postgres/postgres-adapter.ts';
import { demoTablesFrom, loadDemoOltp } from '../src/ingest/demo-oltp.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function demoTables() {
  const doc = parse(readFileSync(join(root, 'models/sources.yml'), 'utf8')) as { sources: { name: string; tables: { name: string; columns?: { name: string; data_type?: string }[] }[] }[] };
  return demoTablesFrom(doc.sources.find((s) => s.name === 'ehr')!.tables);
}

async function main(): Promise<void> {
  const url = process.env.TSFORM_OLTP_URL;
  if (!url) {
    console.error('set TSFORM_OLTP_URL to the OLTP database (postgres://user@host:port/db)');
    process.exitCode = 2;
    return;
  }
  const i = process.argv.indexOf('--schema');
  const schema = i > 0 ? process.argv[i + 1] : 'oltp';
  const oltp = await createPostgresAdapter({ url, applicationName: 'tsform-demo-oltp' });
  try {
    const counts = await loadDemoOltp(oltp, { dataDir: join(root, 'data/ehr'), tables: demoTables(), schema });
    for (const [table, n] of counts) console.log(`${schema}.${table}: ${n} rows`);
  } finally {
    await oltp.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
