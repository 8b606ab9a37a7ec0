import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type Code, Codes, TsformError } from '../errors.ts';
import { initProjectFiles, projectNameFrom } from './project-template.ts';

/**
 * `tsform init` refuses a directory that already holds files. TODO(errors.ts): move into `Codes`
 * as `initDirNotEmpty: 'TSF115'` (project files, 1xx); kept here until errors.ts has it.
 */
export const INIT_DIR_NOT_EMPTY = Codes.initDirNotEmpty;

/** The project name goes into tsform.yml unquoted: a simple identifier. */
const PROJECT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Entries a fresh directory may already hold: `git init` first, then `tsform init .`. */
const IGNORED_ENTRIES = new Set(['.git']);

export interface ScaffoldResult {
  root: string;
  name: string;
  /** Written files, relative to `root`, in write order. */
  files: string[];
}

/**
 * Writes a new project into `dir` (created when missing). Never overwrites: a directory holding
 * anything but `.git` is refused before a single file is written. `tsformDependency` (an npm
 * spec) adds a package.json that depends on tsform.
 */
export function scaffoldProject(dir: string, opts: { name?: string; tsformDependency?: string } = {}): ScaffoldResult {
  const root = resolve(dir);
  if (opts.name !== undefined && !PROJECT_NAME.test(opts.name)) {
    throw new TsformError(Codes.invalidIdentifier, `tsform init: project name ${JSON.stringify(opts.name)} must match ${PROJECT_NAME.source}`);
  }
  if (existsSync(root)) {
    if (!statSync(root).isDirectory()) {
      throw new TsformError(INIT_DIR_NOT_EMPTY, `tsform init: '${dir}' exists and is not a directory`);
    }
    const present = readdirSync(root).filter((e) => !IGNORED_ENTRIES.has(e));
    if (present.length > 0) {
      const shown = present.slice(0, 5).join(', ') + (present.length > 5 ? `, … (${present.length} entries)` : '');
      throw new TsformError(INIT_DIR_NOT_EMPTY, `tsform init: '${dir}' is not empty (${shown}); choose a new or empty directory, nothing was written`);
    }
  }
  const name = opts.name ?? projectNameFrom(basename(root));
  const files = initProjectFiles(name, { tsformDependency: opts.tsformDependency });
  for (const [path, text] of Object.entries(files)) {
    const abs = join(root, ...path.split('/'));
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, text, { flag: 'wx' });
  }
  return { root, name, files: Object.keys(files) };
}
