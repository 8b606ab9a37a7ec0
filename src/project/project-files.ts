import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { fileInsideProject } from './project-path.ts';

/**
 * The files a project is read from. A pull request can commit a symbolic link, and tsform runs
 * in CI with the production warehouse's credentials in its environment: `tenants.yml ->
 * /proc/self/environ` or `macros/m.hbs -> ~/.pgpass` would put what the link names into
 * diagnostics, the manifest or a model. So a file or folder the project is read from must
 * resolve inside the project (TSF122 otherwise, and it is not read); a link that stays inside
 * is followed, as dbt follows them, except a link to a folder (a loop, or the same models twice).
 */
export class ProjectFiles {
  private readonly root: string;
  private readonly diagnostics: Diagnostic[];

  constructor(root: string, diagnostics: Diagnostic[]) {
    this.root = root;
    this.diagnostics = diagnostics;
  }

  /** `rel` (a top-level file or folder) under the root, when it exists and stays inside the project. */
  present(rel: string): string | undefined {
    const path = join(this.root, rel);
    if (!existsSync(path)) return undefined;
    return this.inside(rel) ? path : undefined;
  }

  /** Files below a top-level folder, sorted so that diagnostics and manifests are deterministic. */
  list(folder: string): string[] {
    const dir = this.present(folder);
    if (!dir || !statSync(dir).isDirectory()) return [];
    const out: string[] = [];
    this.walk(dir, folder, out);
    return out.sort();
  }

  /**
   * One folder's entries, descending into real folders only: Node's own recursive readdir follows
   * a link to a folder on some versions (22) and not on others (20), and what it finds there
   * looks like the project's own files.
   */
  private walk(dir: string, rel: string, out: string[]): void {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, d.name);
      const entry = `${rel}/${d.name}`;
      if (d.isDirectory()) this.walk(path, entry, out);
      else if (d.isFile()) out.push(path);
      else if (d.isSymbolicLink()) {
        const target = this.inside(entry);
        if (!target) continue;
        if (!existsSync(target)) this.diagnostics.push(diagnostic(Codes.projectLink, `${entry} is a symbolic link to nothing; not read`, { file: entry }, 'warning'));
        else if (statSync(target).isFile()) out.push(path);
        else this.diagnostics.push(diagnostic(Codes.projectLink, `${entry} is a symbolic link to a folder; not read (link the files, or move the folder here)`, { file: entry }, 'warning'));
      }
    }
  }

  private inside(rel: string): string | undefined {
    const resolved = fileInsideProject(this.root, rel);
    if (!resolved) {
      this.diagnostics.push(diagnostic(Codes.projectLink, `${rel} is a symbolic link that leads outside the project; not read (a project's files are its own)`, { file: rel }));
    }
    return resolved;
  }
}
