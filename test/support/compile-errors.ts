import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import type { Project } from '../../src/project/types.ts';

/** The errors of compiling a project in memory (nothing written); [] when it compiles. */
export function compileErrors(project: Project): Diagnostic[] {
  try {
    compileLoadedProject(project, { write: false });
    return [];
  } catch (err) {
    if (err instanceof DiagnosticsError) return err.diagnostics.filter((d) => d.severity === 'error');
    throw err;
  }
}
