import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { Project } from '../../src/project/types.ts';
import { copyDemoProject } from './demo-project.ts';

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

/**
 * The errors of loading, else compiling, a copy of the demo project with `files` written into it
 * (project-relative path → text); the copy is removed before returning.
 */
export function demoCopyErrors(files: Record<string, string>, tenants?: (ids: string[]) => string[]): Diagnostic[] {
  const demo = copyDemoProject({ files, tenants });
  try {
    const project = loadProject(demo.dir);
    const loading = project.diagnostics.filter((d) => d.severity === 'error');
    return loading.length > 0 ? loading : compileErrors(project);
  } finally {
    demo.remove();
  }
}
