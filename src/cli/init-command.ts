import type { Command } from 'commander';
import type { CommandGuard } from './docs-command.ts';
import { TSFORM_PACKAGE_ROOT } from './package-root.ts';

/**
 * How a new project depends on tsform while it is unpublished: `file:` this checkout (the package
 * root of the tsform that runs init), so `npm install` links it; `--tsform <spec>` for a git URL.
 */
export function defaultTsformDependency(): string {
  return `file:${TSFORM_PACKAGE_ROOT}`;
}

/** `cd` argument for the printed next step: quoted when the shell would split it. */
function shellWord(text: string): string {
  return /^[\w./@:+-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** `tsform init <dir>`: a new tenant-aware project that compiles and builds at once. */
export function registerInitCommand(program: Command, guard: CommandGuard, out: (line: string) => void): Command {
  return program
    .command('init')
    .description('scaffold a new tenant-aware project (3 example practices, a source, staging, a mart, a seed, policies, a package.json depending on tsform); refuses a non-empty directory')
    .argument('<dir>', 'directory to create (new or empty)')
    .option('--name <name>', 'project name (default: from the directory name)')
    .option('--tsform <spec>', 'how package.json gets tsform: an npm spec such as git+https://…/tsform.git (default: file:<this tsform checkout>)')
    .action((dir: string, opts: { name?: string; tsform?: string }) =>
      guard(async () => {
        const { scaffoldProject } = await import('../init/scaffold-project.ts');
        const result = scaffoldProject(dir, { name: opts.name, tsformDependency: opts.tsform ?? defaultTsformDependency() });
        for (const file of result.files) out(`  created ${file}`);
        out(`initialized project '${result.name}' in ${result.root}`);
        out(`next: cd ${shellWord(dir)} && npm install && npx tsform build`);
        return 0;
      })({ projectDir: dir }),
    );
}
