import { Command } from 'commander';
import { DiagnosticsError, formatDiagnostic, TsformError } from '../../src/errors.ts';
import type { CommandGuard } from '../../src/cli/docs-command.ts';
import { useNearestProject } from '../../src/cli/project-root.ts';

export interface HarnessRun {
  code: number;
  out: string[];
  err: string[];
}

/**
 * A commander program wired like src/cli/program.ts (`guard`, `out`, exit codes 0/2/3),
 * so a command's register function is tested through commander without touching program.ts.
 */
export async function runRegistered(
  register: (program: Command, guard: CommandGuard, out: (line: string) => void) => void,
  args: string[],
): Promise<HarnessRun> {
  const run: HarnessRun = { code: 0, out: [], err: [] };
  const program = new Command().name('tsform').exitOverride();
  useNearestProject(program, (line) => run.err.push(line));
  const guard: CommandGuard = (fn) => async (o) => {
    try {
      run.code = await fn(o);
    } catch (e) {
      if (e instanceof DiagnosticsError) {
        run.err.push(...e.diagnostics.map(formatDiagnostic));
        run.code = 2;
      } else if (e instanceof TsformError) {
        run.err.push(formatDiagnostic(e.toDiagnostic()));
        run.code = 2;
      } else {
        run.err.push(String((e as Error)?.stack ?? e));
        run.code = 3;
      }
    }
  };
  register(program, guard, (line) => run.out.push(line));
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    run.err.push(String(e));
    run.code = 2;
  }
  return run;
}
