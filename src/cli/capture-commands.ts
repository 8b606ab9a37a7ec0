import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { Codes, TsformError } from '../errors.ts';
import type { CommandGuard } from './docs-command.ts';
import { positiveInteger, projectOption, selectOption, targetOption, tenantOption } from './option-sets.ts';

interface CaptureCliOptions {
  projectDir: string;
  target?: string;
  select?: string[];
  tenant?: string[];
}

/** `backfill`, `capture`, `purge` and `oltp load-demo`: the operator's side of per-practice capture. */
export function registerCaptureCommands(program: Command, guard: CommandGuard, out: (line: string) => void): void {
  selectOption(tenantOption(targetOption(projectOption(program.command('backfill').description('re-capture practices (or an updated_at range) from the OLTP in the backfill pool, in resumable chunks')))))
    .option('--all-tenants', 'every practice of tenants.yml (instead of --tenant)')
    .option('--from <date>', 'only rows with updated_at at or after this (ISO date or timestamp)')
    .option('--to <date>', 'only rows with updated_at before this')
    .addOption(new Option('--chunk-rows <n>', 'rows per chunk: the longest a backfill holds a practice\'s capture').argParser(positiveInteger))
    .addOption(new Option('--max-chunks <n>', 'stop after this many chunks per table and practice (run again to resume)').argParser(positiveInteger))
    .action(
      guard(async (o) => {
        const opts = o as CaptureCliOptions & { allTenants?: boolean; from?: string; to?: string; chunkRows?: number; maxChunks?: number };
        if (opts.allTenants && opts.tenant?.length) throw new TsformError(Codes.badTenantArgument, 'give --tenant or --all-tenants, not both');
        const { backfillWorkspace } = await import('./backfill.ts');
        // Ctrl-C stops between chunks: what committed stays, the same command resumes.
        const stop = new AbortController();
        const onSigint = () => stop.abort();
        process.once('SIGINT', onSigint);
        try {
          const results = await backfillWorkspace({
            projectDir: opts.projectDir,
            target: opts.target,
            tenants: opts.tenant ?? [],
            allTenants: opts.allTenants === true,
            select: opts.select,
            from: opts.from,
            to: opts.to,
            chunkRows: opts.chunkRows,
            maxChunks: opts.maxChunks,
            signal: stop.signal,
            onProgress: out,
          });
          return results.some((r) => r.failure) ? 1 : 0;
        } finally {
          process.off('SIGINT', onSigint);
        }
      }),
    );

  tenantOption(targetOption(projectOption(program.command('capture').description('log-based capture (sources in mode logical) into raw, without building models'))))
    .option('--follow', 'keep streaming: every practice\'s raw within about a second of the OLTP, until SIGTERM or Ctrl-C')
    .action(
      guard(async (o) => {
        const opts = o as CaptureCliOptions & { follow?: boolean };
        const { captureWorkspace } = await import('./capture-logical.ts');
        // SIGTERM or Ctrl-C: the stream stops between transactions; what it received is committed and applied
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          return await captureWorkspace({ projectDir: opts.projectDir, target: opts.target, tenants: opts.tenant, follow: opts.follow === true, signal: stop.signal, onProgress: out });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );

  tenantOption(targetOption(projectOption(program.command('purge').description('delete an offboarded practice\'s rows from every tenant-scoped relation and its capture state (dry run without --yes)'))))
    .option('--yes', 'really delete (otherwise only count)')
    .action(
      guard(async (o) => {
        const opts = o as CaptureCliOptions & { yes?: boolean };
        const { purgeCommand } = await import('./purge.ts');
        const { counts, notes, incomplete } = await purgeCommand(opts.projectDir, opts.target, opts.tenant ?? [], opts.yes === true);
        const total = counts.reduce((n, c) => n + c.rows, 0);
        for (const c of counts.filter((x) => x.rows > 0)) out(`${c.relation}\t${c.rows}`);
        out(opts.yes ? `purged ${opts.tenant!.join(',')}: ${total} row(s) deleted from ${counts.length} relation(s)` : `dry run: ${total} row(s) would be deleted; add --yes to delete them`);
        for (const n of notes) out(`notice: ${n}`);
        return incomplete ? 1 : 0;
      }),
    );

  targetOption(projectOption(program.command('compact').description('DuckDB: rewrite the warehouse, research and vault files with their live rows only (deleted rows keep their bytes in the files until then)')))
    .action(
      guard(async (o) => {
        const opts = o as CaptureCliOptions;
        const { compactCommand } = await import('./purge.ts');
        const { notes, failed } = await compactCommand(opts.projectDir, opts.target);
        for (const n of notes) out(`notice: ${n}`);
        return failed ? 1 : 0;
      }),
    );

  const oltp = program.command('oltp').description('the shared OLTP database that captured sources read');
  projectOption(oltp.command('load-demo').description('load the demo data (data/ehr/*.csv.gz) into shared OLTP tables with practice_id, updated_at and soft deletes'))
    .option('--url-env <name>', 'environment variable holding the OLTP URL', 'TSFORM_OLTP_URL')
    .option('--source <name>', 'the source whose tables and column types to use', 'ehr')
    .option('--data-dir <dir>', 'folder of <table>.csv.gz files', 'data/ehr')
    .option('--schema <name>', 'OLTP schema', 'oltp')
    .action(
      guard(async (o) => {
        const opts = o as CaptureCliOptions & { urlEnv: string; source: string; dataDir: string; schema: string };
        const url = process.env[opts.urlEnv];
        if (!url) throw new TsformError(Codes.missingEnv, `$${opts.urlEnv} is not set (the OLTP URL)`);
        const { compileWorkspace } = await import('./api.ts');
        const { demoTablesFrom, loadDemoOltp } = await import('../ingest/demo-oltp.ts');
        const ws = compileWorkspace(opts.projectDir, { write: false });
        const tables = ws.project.sources
          .filter((s) => s.source === opts.source)
          .map((s) => ({ name: s.identifier, columns: s.columns.map((c) => ({ name: c.name, data_type: c.dataType })) }));
        if (tables.length === 0) throw new TsformError(Codes.unknownSource, `no source '${opts.source}' in models/**/*.yml`);
        const { createPostgresAdapter } = await import('../adapters/postgres/postgres-adapter.ts');
        const db = await createPostgresAdapter({ url, poolSize: 2, applicationName: 'tsform-demo-oltp' });
        try {
          const counts = await loadDemoOltp(db, { dataDir: resolve(ws.project.root, opts.dataDir), tables: demoTablesFrom(tables, ws.project.config.tenantColumn), schema: opts.schema });
          for (const [t, n] of counts) out(`${opts.schema}.${t}\t${n} rows`);
        } finally {
          await db.close();
        }
        return 0;
      }),
    );
}
