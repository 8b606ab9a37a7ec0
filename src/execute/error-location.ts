import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ManifestNode } from '../artifacts/manifest.ts';
import type { StatementPosition } from '../adapters/statement-position.ts';

/**
 * A database error against a model's compiled SQL, placed at the model file's line (issue 15
 * item 7): the statement sent holds the compiled SQL (behind `CREATE … AS`), its line map says
 * which model line each compiled line came from. The excerpt is the model file's own line with
 * a caret: source text, never a row value.
 */
export interface ModelErrorLocation {
  /** `models/x.sql:8:5`, or `target/compiled/x.sql:3 (SQL tsform added …)` for tsform's own lines. */
  where: string;
  excerpt: string[];
}

export function locateModelError(position: StatementPosition | undefined, node: ManifestNode, projectRoot: string): ModelErrorLocation | undefined {
  if (!position || node.kind !== 'model') return undefined;
  const variants = [
    { sql: node.compiled_sql, lines: node.compiled_lines, file: `${node.name}.sql` },
    ...(node.compiled_incremental_sql !== undefined ? [{ sql: node.compiled_incremental_sql, lines: node.compiled_incremental_lines, file: `${node.name}.incremental.sql` }] : []),
  ];
  for (const v of variants) {
    const at = position.statement.lastIndexOf(v.sql);
    if (at < 0 || position.offset < at || position.offset > at + v.sql.length) continue;
    const before = v.sql.slice(0, position.offset - at);
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    const compiledLine = v.sql.split('\n')[line - 1] ?? '';
    const sourceLine = v.lines?.[line - 1];
    if (sourceLine === undefined || sourceLine === null) {
      return { where: `target/compiled/${v.file}:${line} (SQL tsform added around ${node.path}: a CTE over an input)`, excerpt: caretExcerpt(line, compiledLine, column) };
    }
    const text = readLine(join(projectRoot, node.path), sourceLine);
    if (text === undefined) return { where: `${node.path}:${sourceLine}`, excerpt: [] };
    const sourceColumn = columnInSource(compiledLine, column, text);
    return { where: `${node.path}:${sourceLine}${sourceColumn ? `:${sourceColumn}` : ''}`, excerpt: caretExcerpt(sourceLine, text, sourceColumn) };
  }
  return undefined;
}

function readLine(path: string, line: number): string | undefined {
  try {
    return readFileSync(path, 'utf8').split('\n')[line - 1]?.replace(/\r$/, '');
  } catch {
    return undefined;
  }
}

/** The same column when the line rendered as written; else where the word under the caret is in the source line. */
function columnInSource(compiled: string, column: number, source: string): number | undefined {
  if (compiled === source) return column;
  const word = /^[\w$."]+/.exec(compiled.slice(column - 1))?.[0];
  if (!word) return undefined;
  const at = source.indexOf(word);
  return at < 0 ? undefined : at + 1;
}

function caretExcerpt(line: number, text: string, column: number | undefined): string[] {
  const gutter = String(line).length;
  const out = [`  ${line} | ${text}`];
  // Tabs before the caret are kept: a terminal widens them, and spaces alone put the caret short.
  if (column !== undefined) out.push(`  ${' '.repeat(gutter)} | ${text.slice(0, Math.max(0, column - 1)).replace(/[^\t]/g, ' ')}^`);
  return out;
}

/** The line of `sql` a position in the statement sent points at, when the statement holds `sql`. */
export function lineInSql(position: StatementPosition | undefined, sql: string): number | undefined {
  if (!position) return undefined;
  const at = position.statement.lastIndexOf(sql);
  if (at < 0 || position.offset < at || position.offset > at + sql.length) return undefined;
  return sql.slice(0, position.offset - at).split('\n').length;
}
