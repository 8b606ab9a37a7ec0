import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * DESIGN §7: dependencies point one way. `project → compile → graph → plan → schedule/execute →
 * adapters`; `cli` on top; nothing imports `cli`; pure stages do no I/O; only `cli` wires a
 * concrete adapter (adapters/<engine>/), and lazily; no two src files import each other, however
 * indirectly. Imports are read with the TypeScript parser (not a regex), so multi-line,
 * type-only, re-export and dynamic imports (`import()`, `require()`) all count and an import
 * inside a comment or a string does not; a computed specifier (`import(name)`) is refused.
 */

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

interface ImportEdge {
  /** `src/compile/compile.ts` */
  from: string;
  line: number;
  specifier: string;
  typeOnly: boolean;
  /** `import('…')`: loaded when the code runs that line, not when the importing file loads. */
  dynamic: boolean;
  /** The imported src file (`src/cli/api.ts`) for a relative specifier; undefined for a package. */
  to?: string;
  /** Layer of the imported src file (`errors`, `sql`, `project`, …), or undefined for a package. */
  toLayer?: string;
  fromLayer: string;
  /** The specifier is an expression, not a string: `import(name)`, `require(name)`. */
  computed?: boolean;
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts'))
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name))
    .sort();
}

/** `errors.ts` and `clock.ts` are layers of their own; every other file belongs to its top folder under src/. */
function layerOf(src: string, absPath: string): string | undefined {
  const rel = relative(src, absPath);
  if (rel.startsWith('..')) return undefined;
  const [head] = rel.split(sep);
  return head?.replace(/\.ts$/, '');
}

function importsOf(src: string, absPath: string): ImportEdge[] {
  const root = resolve(src, '..');
  const text = readFileSync(absPath, 'utf8');
  const sf = ts.createSourceFile(absPath, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const from = relative(root, absPath).split(sep).join('/');
  const fromLayer = layerOf(src, absPath)!;
  const edges: ImportEdge[] = [];
  const add = (spec: ts.Expression, node: ts.Node, typeOnly: boolean, dynamic = false) => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    if (!ts.isStringLiteralLike(spec)) {
      // import(someVariable) could load anything: the rules cannot see it, so it is refused.
      edges.push({ from, line, specifier: spec.getText(sf), typeOnly, dynamic, computed: true, fromLayer });
      return;
    }
    const specifier = spec.text;
    const target = specifier.startsWith('.') ? resolve(dirname(absPath), specifier) : undefined;
    edges.push({
      from,
      line,
      specifier,
      typeOnly,
      dynamic,
      ...(target ? { to: relative(root, target).split(sep).join('/') } : {}),
      toLayer: target ? (layerOf(src, target) ?? `outside src (${relative(root, target)})`) : undefined,
      fromLayer,
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const typeOnly =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            c.namedBindings !== undefined &&
            ts.isNamedImports(c.namedBindings) &&
            c.namedBindings.elements.length > 0 &&
            c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, node, typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
      add(node.arguments[0], node, false, true);
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require' && node.arguments[0]) {
      add(node.arguments[0], node, false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal, node, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/** Every import of every .ts file under a src directory. */
function collectEdges(src: string): ImportEdge[] {
  return listTs(src).flatMap((f) => importsOf(src, f));
}
const show = (e: ImportEdge, why: string) => `${e.from}:${e.line} imports '${e.specifier}'${e.typeOnly ? ' (type only)' : ''}: ${why}`;

/** Which src layers each layer may import (itself always allowed). */
const ALLOWED: Record<string, readonly string[] | 'all-but'> = {
  errors: [],
  clock: [],
  sql: ['clock', 'errors'],
  project: ['clock', 'errors', 'sql'],
  compile: ['clock', 'errors', 'sql', 'project', 'artifacts'],
  graph: ['clock', 'errors', 'project', 'compile', 'artifacts'],
  security: ['clock', 'errors', 'sql', 'project', 'compile', 'artifacts'],
  plan: ['clock', 'errors', 'project', 'compile', 'graph', 'artifacts'],
  schedule: ['clock', 'errors', 'plan', 'artifacts'],
  // schedule/: the one retry policy (retry-policy.ts), for the wait on DuckDB's file lock. schedule/
  // is pure and imports no adapter, so this closes no cycle; a second backoff loop here would drift.
  adapters: ['clock', 'errors', 'sql', 'schedule'],
  artifacts: ['clock', 'errors', 'project'],
  // warehouse/: tsform's own tables (meta schema, deletion epochs) and the CSV loader, which both
  // execute/ (the runner) and ingest/ (capture) write in their transactions; below both.
  warehouse: ['clock', 'errors', 'sql', 'project', 'artifacts', 'adapters', 'schedule'],
  execute: 'all-but',
  ingest: 'all-but',
  sla: 'all-but',
  cli: 'all-but',
  docs: ['clock', 'errors', 'project', 'artifacts'],
  init: ['clock', 'errors'],
};
const FORBIDDEN_FOR: Record<string, readonly string[]> = {
  execute: ['cli', 'sla', 'ingest'],
  // Capture is a service the runner's capture strategy calls through an interface it declares
  // (execute/strategies/capture.ts); ingest/ never reaches back into the runner.
  ingest: ['cli', 'execute', 'sla'],
  sla: ['cli'],
  cli: [],
};

/** Pure stages: no file system, processes, sockets or database drivers. project/ may read files. */
const PURE = ['compile', 'graph', 'plan', 'security', 'schedule'];
const IO_MODULES = [/^(node:)?fs(\/promises)?$/, /^(node:)?child_process$/, /^(node:)?net$/, /^pg($|\/)/, /^pg-copy-streams$/, /^@duckdb\//];
const PROJECT_IO_MODULES = IO_MODULES.slice(1);

/** Every broken rule, one readable line each (file:line, the import, the rule). */
function violations(edges: readonly ImportEdge[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    if (e.computed) {
      bad.push(show(e, 'a computed specifier cannot be checked: import a string literal'));
      continue;
    }
    if (e.toLayer !== undefined) {
      if (e.toLayer.startsWith('outside src')) {
        bad.push(show(e, 'src/ must stand alone (no imports from tests, scripts or bench)'));
        continue;
      }
      const concrete = concreteAdapterRule(e);
      if (concrete) {
        bad.push(show(e, concrete));
        continue;
      }
      if (e.toLayer === e.fromLayer) continue;
      if (e.toLayer === 'cli') {
        bad.push(show(e, 'nothing outside cli/ imports cli/'));
        continue;
      }
      const rule = ALLOWED[e.fromLayer];
      if (rule === undefined) bad.push(show(e, `no rule for layer '${e.fromLayer}'`));
      else if (rule === 'all-but') {
        if ((FORBIDDEN_FOR[e.fromLayer] ?? []).includes(e.toLayer)) bad.push(show(e, `${e.fromLayer}/ may not import ${e.toLayer}/`));
      } else if (!rule.includes(e.toLayer)) {
        bad.push(show(e, `${e.fromLayer}/ may import ${rule.length > 0 ? `only ${rule.map((l) => `${l}/`).join(', ')}` : 'nothing from src'}`));
      } else if (e.fromLayer === 'artifacts' && e.toLayer === 'project' && !e.typeOnly) {
        bad.push(show(e, 'artifacts/ may take only types from project/ (import type)'));
      }
      continue;
    }
    if (e.typeOnly) continue;
    if (PURE.includes(e.fromLayer) && IO_MODULES.some((re) => re.test(e.specifier))) bad.push(show(e, `${e.fromLayer}/ is a pure stage: no I/O`));
    else if (e.fromLayer === 'project' && PROJECT_IO_MODULES.some((re) => re.test(e.specifier))) bad.push(show(e, 'project/ may read files, nothing else'));
    else if (e.fromLayer !== 'adapters' && DRIVERS.some((re) => re.test(e.specifier))) bad.push(show(e, 'only adapters/ talk to a database driver'));
  }
  return bad;
}

const DRIVERS = [/^pg($|\/)/, /^pg-copy-streams$/, /^pg-boss$/, /^pg-logical-replication$/, /^@duckdb\//];

/** A file in a folder of adapters/ (`src/adapters/duckdb/…`, `src/adapters/postgres/…`, any engine added later). */
const CONCRETE_ADAPTER = /^src\/adapters\/[^/]+\//;

/**
 * Concrete adapters are wired by cli/ alone (DESIGN §7), and lazily: cli/ takes them with
 * `import()` or `import type`, so that commands which never open a database (compile, ls)
 * load no driver. Inside adapters/ anything goes. Everyone else works through the interfaces
 * (`Adapter`, `OltpSource`) or is handed what it needs as a parameter.
 */
function concreteAdapterRule(e: ImportEdge): string | undefined {
  if (e.to === undefined || !CONCRETE_ADAPTER.test(e.to) || e.fromLayer === 'adapters') return undefined;
  if (e.fromLayer !== 'cli') return 'only cli/ (and adapters/ itself) imports a concrete adapter; use the Adapter or OltpSource interface';
  if (!e.dynamic && !e.typeOnly) return 'cli/ loads a concrete adapter lazily (await import(...)), so that compile and ls load no driver';
  return undefined;
}

/**
 * Import circles between src files, one line per circle (strongly connected component): the
 * shortest circle through its first file, `src/a.ts → src/b.ts → src/a.ts`. Every import counts,
 * type-only and dynamic ones too: a circle means two files that cannot be read, tested or
 * moved one without the other, usually because a shared type lives in the higher one.
 */
function importCycles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (e.to === undefined || e.toLayer === undefined || e.toLayer.startsWith('outside src')) continue;
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const successors = (f: string) => [...(next.get(f) ?? [])].sort();
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of successors(v)) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      components.push(c.sort());
    }
  };
  for (const f of [...next.keys()].sort()) if (!index.has(f)) connect(f);
  const found: string[] = [];
  for (const c of components) {
    const start = c[0]!;
    if (c.length === 1 && !next.get(start)?.has(start)) continue;
    // Breadth-first inside the component: the shortest way from `start` back to itself.
    const inside = new Set(c);
    const cameFrom = new Map<string, string>();
    const queue = [start];
    let last: string | undefined;
    for (let i = 0; i < queue.length && last === undefined; i++) {
      for (const w of successors(queue[i]!)) {
        if (w === start) {
          last = queue[i];
          break;
        }
        if (inside.has(w) && !cameFrom.has(w)) {
          cameFrom.set(w, queue[i]!);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let f = last!; f !== start; f = cameFrom.get(f)!) path.splice(1, 0, f);
    path.push(start);
    found.push(`${path.join(' → ')}${c.length > path.length - 1 ? ` (${c.length} files in this circle)` : ''}`);
  }
  return found.sort();
}

describe('architecture: src/ import rules (DESIGN §7)', () => {
  const edges = collectEdges(SRC);

  it('reads the imports of every src file', () => {
    // Guards the reader itself: a broken one would make the rules pass vacuously.
    expect(edges.length).toBeGreaterThan(50);
    expect(edges).toContainEqual(expect.objectContaining({ from: 'src/compile/compile.ts', specifier: '../artifacts/manifest.ts', toLayer: 'artifacts' }));
    expect(edges).toContainEqual(expect.objectContaining({ from: 'src/cli/program.ts', specifier: './api.ts', toLayer: 'cli' }));
    expect(edges).toContainEqual(
      expect.objectContaining({
        from: 'src/cli/target.ts',
        specifier: '../adapters/postgres/postgres-adapter.ts',
        to: 'src/adapters/postgres/postgres-adapter.ts',
        toLayer: 'adapters',
        typeOnly: false,
        dynamic: true,
      }),
    );
    expect(edges).toContainEqual(expect.objectContaining({ from: 'src/artifacts/manifest.ts', toLayer: 'project', typeOnly: true }));
  });

  it('every layer under src/ has a rule', () => {
    const layers = new Set(listTs(SRC).map((f) => layerOf(SRC, f)!));
    expect([...layers].filter((l) => !(l in ALLOWED))).toEqual([]);
  });

  it('src/ keeps every rule: dependencies point one way, nobody imports cli/, pure stages do no I/O', () => {
    const bad = violations(edges);
    expect(bad, `\n${bad.join('\n')}\n`).toEqual([]);
  });

  it('no import circles between src files (type-only and dynamic imports count)', () => {
    const cycles = importCycles(edges);
    expect(cycles, `\n${cycles.join('\n')}\n(move the shared type or function down into a module of its own)\n`).toEqual([]);
  });
});

describe('architecture: the checker catches what it should', () => {
  const files: Record<string, string> = {
    'errors.ts': "import { quoteIdent } from './sql/quote.ts';\nexport const x = 1;\n",
    'sql/quote.ts': "import { Codes } from '../errors.ts';\nexport const quoteIdent = (s: string) => s;\n",
    'compile/fine.ts': [
      "import type { Project } from '../project/types.ts';",
      "import { createHash } from 'node:crypto';",
      "// import { runCli } from '../cli/program.ts';",
      "const s = \"import x from '../cli/program.ts'\";",
      'export {};',
    ].join('\n'),
    'compile/bad.ts': [
      'import {',
      '  readFileSync,',
      "} from 'node:fs';",
      "import { plan } from '../plan/plan.ts';",
      "export { runCli } from '../cli/program.ts';",
      "const lazy = () => import('../execute/index.ts');",
      "type T = import('../graph/dag.ts').ModelDag;",
      'export {};',
    ].join('\n'),
    'project/reader.ts': "import { spawn } from 'node:child_process';\nimport { readFileSync } from 'node:fs';\n",
    'artifacts/manifest.ts': "import { SCOPES } from '../project/load-config.ts';\nimport type { Scope } from '../project/types.ts';\n",
    'execute/runner.ts': "import { alert } from '../sla/alert.ts';\nimport { plan } from '../plan/plan.ts';\nimport pg from 'pg';\n",
    'adapters/duckdb/duckdb.ts': "import { Adapter } from '../adapter.ts';\nimport { DuckDBInstance } from '@duckdb/node-api';\n",
    'graph/helper.ts': "import { fixture } from '../../test/fixtures/project-fixture.ts';\n",
    // capture reaching back into the runner (issue 14); the warehouse layer is below both
    'ingest/capture.ts': "import type { BuildOutcome } from '../execute/strategy.ts';\nimport { countDeletion } from '../warehouse/deletion-epochs.ts';\n",
    'warehouse/meta.ts': "import { runner } from '../execute/runner.ts';\n",
  };
  const dir = mkdtempSync(join(tmpdir(), 'tsform-arch-'));
  const src = join(dir, 'src');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(src, path)), { recursive: true });
    writeFileSync(join(src, path), text);
  }
  const found = violations(collectEdges(src));
  rmSync(dir, { recursive: true, force: true });

  it('names the file, line and import of every violation, and nothing else', () => {
    // Not reported: type-only project import in artifacts, node:crypto in compile, imports in a
    // comment or a string, adapters using @duckdb, execute importing plan, project reading fs.
    expect(found).toEqual([
      "src/artifacts/manifest.ts:1 imports '../project/load-config.ts': artifacts/ may take only types from project/ (import type)",
      "src/compile/bad.ts:1 imports 'node:fs': compile/ is a pure stage: no I/O",
      "src/compile/bad.ts:4 imports '../plan/plan.ts': compile/ may import only clock/, errors/, sql/, project/, artifacts/",
      "src/compile/bad.ts:5 imports '../cli/program.ts': nothing outside cli/ imports cli/",
      "src/compile/bad.ts:6 imports '../execute/index.ts': compile/ may import only clock/, errors/, sql/, project/, artifacts/",
      "src/compile/bad.ts:7 imports '../graph/dag.ts' (type only): compile/ may import only clock/, errors/, sql/, project/, artifacts/",
      "src/errors.ts:1 imports './sql/quote.ts': errors/ may import nothing from src",
      "src/execute/runner.ts:1 imports '../sla/alert.ts': execute/ may not import sla/",
      "src/execute/runner.ts:3 imports 'pg': only adapters/ talk to a database driver",
      "src/graph/helper.ts:1 imports '../../test/fixtures/project-fixture.ts': src/ must stand alone (no imports from tests, scripts or bench)",
      "src/ingest/capture.ts:1 imports '../execute/strategy.ts' (type only): ingest/ may not import execute/",
      "src/project/reader.ts:1 imports 'node:child_process': project/ may read files, nothing else",
      "src/warehouse/meta.ts:1 imports '../execute/runner.ts': warehouse/ may import only clock/, errors/, sql/, project/, artifacts/, adapters/, schedule/",
    ]);
  });
});

/** The import edges of a throwaway src/ made of `files` (path under src → text). */
function edgesOfFiles(files: Record<string, string>): ImportEdge[] {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-arch-'));
  const src = join(dir, 'src');
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(src, path)), { recursive: true });
      writeFileSync(join(src, path), text);
    }
    return collectEdges(src);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('architecture: the concrete-adapter and circle rules catch what they should', () => {
  it('a concrete adapter is imported only by cli/ (lazily or for types) and inside adapters/; a computed import is refused', () => {
    const found = violations(
      edgesOfFiles({
        'ingest/capture.ts': "import { describePgError } from '../adapters/postgres/postgres-adapter.ts';\nimport type { Adapter } from '../adapters/adapter.ts';\n",
        'execute/lazy.ts': "export const open = () => import('../adapters/duckdb/duckdb-adapter.ts');\n",
        // an engine added later is concrete too, and a type-only import still ties the layer to it
        'sla/typed.ts': "import type { SqliteAdapter } from '../adapters/sqlite/sqlite-adapter.ts';\n",
        'cli/api.ts': [
          "import { PostgresAdapter } from '../adapters/postgres/postgres-adapter.ts';",
          "export const open = () => import('../adapters/duckdb/duckdb-adapter.ts');",
          "import type { VerifyInput } from '../adapters/postgres/verify-types.ts';",
        ].join('\n'),
        'adapters/oltp-source.ts': "import type { PgOltpSource } from './postgres/pg-oltp-source.ts';\n",
        'adapters/postgres/pg-oltp-source.ts': "import { inClientTransaction } from './client-transaction.ts';\nimport pg from 'pg';\n",
        'execute/plugin.ts': "export const load = (name: string) => import(name);\nexport const old = (name: string) => require(name);\n",
      }),
    );
    expect(found).toEqual([
      "src/cli/api.ts:1 imports '../adapters/postgres/postgres-adapter.ts': cli/ loads a concrete adapter lazily (await import(...)), so that compile and ls load no driver",
      "src/execute/lazy.ts:1 imports '../adapters/duckdb/duckdb-adapter.ts': only cli/ (and adapters/ itself) imports a concrete adapter; use the Adapter or OltpSource interface",
      "src/execute/plugin.ts:1 imports 'name': a computed specifier cannot be checked: import a string literal",
      "src/execute/plugin.ts:2 imports 'name': a computed specifier cannot be checked: import a string literal",
      "src/ingest/capture.ts:1 imports '../adapters/postgres/postgres-adapter.ts': only cli/ (and adapters/ itself) imports a concrete adapter; use the Adapter or OltpSource interface",
      "src/sla/typed.ts:1 imports '../adapters/sqlite/sqlite-adapter.ts' (type only): only cli/ (and adapters/ itself) imports a concrete adapter; use the Adapter or OltpSource interface",
    ]);
  });

  it('finds every circle, through type-only, dynamic and re-export imports, with its shortest path', () => {
    const cycles = importCycles(
      edgesOfFiles({
        'a/one.ts': "import { two } from './two.ts';\nimport pg from 'pg';\n",
        'a/two.ts': "import type { Three } from './three.ts';\n",
        'a/three.ts': "export const four = () => import('../b/four.ts');\n",
        'b/four.ts': "export { one } from '../a/one.ts';\n",
        'c/self.ts': "import type { Me } from './self.ts';\n",
        'd/x.ts': "import { y } from './y.ts';\n",
        'd/y.ts': "import { x } from './x.ts';\nimport { z } from './z.ts';\n",
        'd/z.ts': "import { x } from './x.ts';\n",
        // no circle: a chain, a comment, a string, and a file outside src
        'e/p.ts': "import { q } from './q.ts';\n// import { p } from './p.ts';\n",
        'e/q.ts': "const s = \"import { p } from './p.ts'\";\nimport { fixture } from '../../test/fixture.ts';\n",
      }),
    );
    expect(cycles).toEqual([
      'src/a/one.ts → src/a/two.ts → src/a/three.ts → src/b/four.ts → src/a/one.ts',
      'src/c/self.ts → src/c/self.ts',
      'src/d/x.ts → src/d/y.ts → src/d/x.ts (3 files in this circle)',
    ]);
  });
});

/**
 * Issue 18: one clock. Outside src/clock.ts and src/cli/ (which creates the system clock), no
 * code reads the time of day: `Date.now()`, `new Date()` / `Date()` without an argument. Found
 * with the TypeScript parser, so a mention in a comment or a string does not count, and
 * `new Date(iso)` (parsing an instant) is fine. Durations use `performance.now()` (monotonic).
 */
function clockReads(src: string): string[] {
  const root = resolve(src, '..');
  const found: string[] = [];
  for (const file of listTs(src)) {
    const rel = relative(root, file).split(sep).join('/');
    if (rel === 'src/clock.ts' || rel.startsWith('src/cli/')) continue;
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const at = (n: ts.Node) => `${rel}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
    const isDate = (e: ts.Expression) => ts.isIdentifier(e) && e.text === 'Date';
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node)) {
        const callee = node.expression;
        if (ts.isPropertyAccessExpression(callee) && isDate(callee.expression) && callee.name.text === 'now') found.push(`${at(node)} calls Date.now()`);
        else if (isDate(callee)) found.push(`${at(node)} calls Date()`);
      } else if (ts.isNewExpression(node) && isDate(node.expression) && (node.arguments?.length ?? 0) === 0) {
        found.push(`${at(node)} calls new Date()`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

describe('architecture: one clock (issue 18)', () => {
  it('no code outside src/clock.ts and src/cli/ reads the machine clock', () => {
    const reads = clockReads(SRC);
    expect(reads, `\n${reads.join('\n')}\n(take a Clock from the caller; see src/clock.ts)\n`).toEqual([]);
  });

  it('the check finds every form, and nothing in comments, strings or parses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsform-clock-'));
    const src = join(dir, 'src');
    const files: Record<string, string> = {
      'sla/bad.ts': ['const a = Date.now();', 'const b = new Date();', 'const c = Date();', 'const d = new Date', 'export { a, b, c, d };'].join('\n'),
      'sla/fine.ts': ["// Date.now() in a comment", "const s = 'new Date()';", "const p = new Date('2026-11-29T00:00:00Z');", 'const q = new Date(0);', 'export { s, p, q };'].join('\n'),
      'clock.ts': 'export const systemClock = { now: () => new Date() };\n',
      'cli/program.ts': 'export const started = Date.now();\n',
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(src, path)), { recursive: true });
      writeFileSync(join(src, path), text);
    }
    const reads = clockReads(src);
    rmSync(dir, { recursive: true, force: true });
    expect(reads).toEqual(['src/sla/bad.ts:1 calls Date.now()', 'src/sla/bad.ts:2 calls new Date()', 'src/sla/bad.ts:3 calls Date()', 'src/sla/bad.ts:4 calls new Date()']);
  });
});
