import type { Command } from 'commander';
import type { CommandGuard } from './docs-command.ts';

/** `tsform init <dir>`: a new tenant-aware project that compiles and builds at once. */
export function registerInitCommand(program: Command, guard: CommandGuard, out: (line: string) => void): Command {
  return program
    .command('init')
    .description('scaffold a new tenant-aware project (3 example practices, a source, staging, a mart, a seed, policies); refuses a non-empty directory')
    .argument('<dir>', 'directory to create (new or empty)')
    .option('--name <name>', 'project name (default: from the directory name)')
    .action((dir: string, opts: { name?: string }) =>
      guard(async () => {
        const { scaffoldProject } = await import('../init/scaffold-project.ts');
        const result = scaffoldProject(dir, { name: opts.name });
        for (const file of result.files) out(`  created ${file}`);
        out(`initialized project '${result.name}' in ${result.root}`);
        out(`next: cd ${dir} && npx tsform build`);
        return 0;
      })({ projectDir: dir }),
    );
}
