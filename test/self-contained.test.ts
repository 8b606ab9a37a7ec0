import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Fresh-clone rule (issue 15 item 2): the repository carries every file its tests, scripts, workflows
 * and docs need. A clone has nothing beside it: no ../shared with the design, notes or Synthea data.
 */
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SELF = fileURLToPath(import.meta.url);

function filesUnder(dir: string, keep: (path: string) => boolean): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'target' || name === 'test-output' || name === '.git') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, keep));
    else if (keep(path)) out.push(path);
  }
  return out;
}

const inside = (path: string) => path === ROOT || path.startsWith(ROOT + sep);
const rel = (path: string) => relative(ROOT, path);
const code = (p: string) => /\.(ts|mts|mjs|js|json|ya?ml|sh)$/.test(p);
const codeFiles = ['src', 'scripts', 'bench', 'test', 'bin', '.github', '.ci'].flatMap((d) => filesUnder(join(ROOT, d), code)).filter((p) => p !== SELF);
const docs = [join(ROOT, 'README.md'), ...filesUnder(join(ROOT, 'docs'), (p) => p.endsWith('.md')), ...filesUnder(join(ROOT, 'test/fixtures'), (p) => p.endsWith('README.md'))];

/** The code of a line without its comment (`//…`, a JSDoc/block line, a `#` shell/yml comment). */
function withoutComment(line: string): string {
  if (/^\s*(\*|\/\*|\/\/|#)/.test(line)) return '';
  return line.replace(/\s\/\/.*$/, '');
}

describe('a fresh clone has every file it needs', () => {
  it('no code reads ../shared (design, notes or data beside the clone)', () => {
    const found: string[] = [];
    for (const file of codeFiles) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\.\.\/shared\/|\bshared\/(data|notes|DESIGN|STYLE)\b/.test(withoutComment(line))) found.push(`${rel(file)}:${i + 1}`);
        });
    }
    expect(found).toEqual([]);
  });

  it('no code resolves a path outside the repository from its own file (new URL(…, import.meta.url))', () => {
    const found: string[] = [];
    for (const file of codeFiles.filter((f) => /\.(ts|mts|mjs|js)$/.test(f))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/new URL\(\s*(['"`])([^'"`]+)\1\s*,\s*import\.meta\.url\s*\)/g)) {
        const target = resolve(dirname(file), m[2]!);
        if (!inside(target)) found.push(`${rel(file)}: ${m[2]}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('every relative link of README.md and docs/ opens a file of the repository', () => {
    const broken: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(doc, 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const href = m[1]!;
        if (/^[a-z]+:/i.test(href) || href.startsWith('#')) continue;
        const target = resolve(dirname(doc), decodeURIComponent(href.split('#')[0]!));
        if (!inside(target) || !existsSync(target)) broken.push(`${rel(doc)}: ${href}`);
      }
      // A path shown in backticks is one a reader will try to open too (fixture READMEs may say
      // where their copy came from).
      if (!doc.includes(`${sep}fixtures${sep}`)) for (const m of text.matchAll(/`(\.\.\/shared[^`]*)`/g)) broken.push(`${rel(doc)}: \`${m[1]}\``);
    }
    expect(broken).toEqual([]);
  });

  it('carries the design, style and notes the README cites', () => {
    for (const f of ['docs/DESIGN.md', 'docs/STYLE.md', 'docs/notes/duckdb-fanout.md', 'docs/notes/postgres-rls.md', 'docs/notes/cdc-and-queues.md']) {
      expect(existsSync(join(ROOT, f)), f).toBe(true);
    }
    // DESIGN cites its notes as `notes/<name>.md` beside it.
    const design = readFileSync(join(ROOT, 'docs/DESIGN.md'), 'utf8');
    for (const m of design.matchAll(/`(notes\/[a-z0-9-]+\.md)`/g)) expect(existsSync(join(ROOT, 'docs', m[1]!)), m[1]).toBe(true);
  });
});
