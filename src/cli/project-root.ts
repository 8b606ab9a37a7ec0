import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';

/**
 * The nearest folder holding tsform.yml, from `start` upwards (like git and dbt), so that
 * `tsform build` works from `models/marts/`. Undefined when no folder up to the root has one.
 */
export function findProjectRoot(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'tsform.yml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Before any command that offers `--project-dir`: when it was not given, the nearest project
 * from the working directory upwards (`.` when there is none, so the command says what is
 * missing); `notice` names the folder when it is not the working directory.
 */
export function useNearestProject(program: Command, notice: (line: string) => void): void {
  program.hook('preAction', (_root, action) => {
    if (!action.options.some((o) => o.attributeName() === 'projectDir') || action.getOptionValue('projectDir') !== undefined) return;
    const found = findProjectRoot(process.cwd());
    action.setOptionValue('projectDir', found ?? '.');
    if (found && found !== resolve(process.cwd())) notice(`using the project in ${found}`);
  });
}
