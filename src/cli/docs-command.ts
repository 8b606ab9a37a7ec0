import { systemClock, type Clock } from '../clock.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { Codes, TsformError } from '../errors.ts';
import { projectOption, targetPathOption } from './option-sets.ts';
import { artifactDir } from './target-path.ts';

/** The options every command registered here reads. */
interface ProjectOptions {
  projectDir: string;
  targetPath?: string;
}

/** program.ts's `guard`: runs the action, turns its result or error into the exit code. */
export type CommandGuard = (fn: (o: ProjectOptions) => Promise<number>) => (o: ProjectOptions) => Promise<void>;

export interface GeneratedDocs {
  /** Absolute path of index.html: open it from the file system, no server needed. */
  index: string;
  dir: string;
  models: number;
  sources: number;
  seeds: number;
  tests: number;
  tenants: number;
  /** Where the column types came from. */
  catalog: string;
}

/** `<target path>/docs` (target/docs by default) unless `out` says otherwise (relative to the working directory). */
export function docsDir(projectDir: string, out?: string, targetPath?: string): string {
  return out ? resolve(out) : join(artifactDir(resolve(projectDir), targetPath), 'docs');
}

/**
 * Compiles the project and writes the static docs site, with the model files beside their
 * compiled SQL, the last run from run_results.json, and column types from the warehouse when
 * it is there to ask (`catalog: false` touches no database).
 */
export async function generateDocs(opts: { projectDir: string; out?: string; targetPath?: string; target?: string; catalog?: boolean; clock?: Clock }): Promise<GeneratedDocs> {
  const { compileWorkspace } = await import('./api.ts');
  const { buildDocsData } = await import('../docs/docs-data.ts');
  const { writeDocsSite } = await import('../docs/write-docs-site.ts');
  const { readCatalog, readLastRun } = await import('./docs-inputs.ts');
  const ws = compileWorkspace(opts.projectDir, { write: false, targetPath: opts.targetPath });
  const catalog = opts.catalog === false ? { note: 'column types from the yml (data_type): --no-catalog' } : await readCatalog(ws, opts.target);
  const data = buildDocsData(ws.manifest, ws.project.tenants, {
    generatedAt: (opts.clock ?? systemClock).now(),
    sourceSql: Object.fromEntries(ws.project.models.map((m) => [m.name, m.sql])),
    ...(catalog.types ? { catalog: catalog.types } : {}),
    catalogNote: catalog.note,
    lastRun: readLastRun(ws.targetDir),
  });
  const site = writeDocsSite(docsDir(opts.projectDir, opts.out, opts.targetPath), data);
  const m = ws.manifest;
  return {
    index: site.index,
    dir: site.dir,
    models: Object.keys(m.models).length,
    sources: Object.keys(m.sources).length,
    seeds: Object.keys(m.seeds).length,
    tests: Object.keys(m.tests).length,
    tenants: ws.project.tenants.length,
    catalog: data.catalog.note,
  };
}

/** `tsform docs generate` and `tsform docs serve`. */
export function registerDocsCommands(program: Command, guard: CommandGuard, out: (line: string) => void): Command {
  const docs = program.command('docs').description('a static documentation site: models, columns with PHI classes, tests, practices, lineage');

  targetPathOption(projectOption(docs.command('generate').description('write the docs site (opens from the file system: no server needed), with column types from the warehouse when it is built and the last run from run_results.json')))
    .option('--out <dir>', 'output directory (default: <target path>/docs)')
    .option('--target <name>', 'the warehouse to read column types from (default: tsform.yml\'s target)')
    .option('--no-catalog', 'touch no database: column types only from the yml (data_type)')
    .action(
      guard(async (o) => {
        const opts = o as ProjectOptions & { out?: string; target?: string; catalog: boolean };
        const site = await generateDocs({ projectDir: opts.projectDir, out: opts.out, targetPath: opts.targetPath, target: opts.target, catalog: opts.catalog });
        out(`column types: ${site.catalog}`);
        out(`docs: ${site.models} models, ${site.seeds} seeds, ${site.sources} sources, ${site.tests} tests, ${site.tenants} practices → ${site.index}`);
        out(`open ${pathToFileURL(site.index).href}`);
        return 0;
      }),
    );

  targetPathOption(projectOption(docs.command('serve').description('serve a generated docs site on 127.0.0.1 until interrupted (optional: file:// works too)')))
    .option('--out <dir>', 'docs directory (default: <target path>/docs)')
    .addOption(new Option('--port <n>', 'port (0 = any free port)').default(8080).argParser((v) => Number.parseInt(v, 10)))
    .action(
      guard(async (o) => {
        const opts = o as ProjectOptions & { out?: string; port: number };
        const dir = docsDir(opts.projectDir, opts.out, opts.targetPath);
        if (!existsSync(join(dir, 'index.html'))) {
          throw new TsformError(Codes.missingFile, `no docs site in ${dir}: run 'tsform docs generate' first`);
        }
        const { serveDocs } = await import('../docs/serve-docs.ts');
        const server = await serveDocs(dir, { port: opts.port });
        out(`serving ${dir} at ${server.url} (Ctrl-C to stop)`);
        await new Promise<void>((done) => {
          process.once('SIGINT', () => done());
          process.once('SIGTERM', () => done());
        });
        await server.close();
        return 0;
      }),
    );
  return docs;
}
