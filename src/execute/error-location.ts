import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ManifestNode } from '../artifacts/manifest.ts';
import type { StatementPosition } from '../adapters/statement-position.ts';
import { Codes, TsformError, type Code } from '../errors.ts';
import type { BuildContext } from './strategy.ts';

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

/**
 * A value error the engine places nowhere (DuckDB's `strptime`, PostgreSQL's `to_date` or a cast
 * of text it cannot read: neither engine says where in the statement), placed at the model lines
 * that make such a call: the line itself when the model makes one, the lines when it makes a few.
 * The calls are found in the compiled SQL (macros expanded), read back to the model's lines.
 */
const VALUE_ERROR_CALLS: { error: RegExp; call: RegExp; one: string; many: string }[] = [
  { error: /Could not parse string .*format specifier/i, call: /\bstrptime\s*\(/i, one: 'strptime call', many: 'strptime calls' },
  {
    error: /^2200[78]:/,
    call: /\b(to_date|to_timestamp|make_date|make_timestamp|make_timestamptz)\s*\(|::\s*(date|timestamp|timestamptz|time)\b|\bas\s+(date|timestamp|timestamptz|time)\b/i,
    one: 'date or time conversion',
    many: 'date or time conversions',
  },
  { error: /^22P02:|^Conversion Error:/i, call: /::|\bcast\s*\(/i, one: 'cast', many: 'casts' },
];
/** More candidate lines than this say nothing useful. */
const MAX_CANDIDATE_LINES = 5;

export function locateValueError(text: string, node: ManifestNode, projectRoot: string): ModelErrorLocation | undefined {
  if (node.kind !== 'model') return undefined;
  const kind = VALUE_ERROR_CALLS.find((k) => k.error.test(text));
  if (!kind) return undefined;
  const hits = new Set<number>(); // model lines making such a call
  const variants = [{ sql: node.compiled_sql, lines: node.compiled_lines }, { sql: node.compiled_incremental_sql, lines: node.compiled_incremental_lines }];
  for (const v of variants) {
    if (v.sql === undefined) continue;
    v.sql.split('\n').forEach((compiled, i) => {
      const source = v.lines?.[i];
      const match = kind.call.test(codeOnly(compiled));
      if (match && source !== undefined && source !== null) hits.add(source);
    });
  }
  if (hits.size === 0 || hits.size > MAX_CANDIDATE_LINES) return undefined;
  const lines = [...hits].sort((a, b) => a - b);
  if (lines.length > 1) return { where: `${node.path} (one of the ${kind.many} at lines ${lines.join(', ')})`, excerpt: [] };
  const line = lines[0]!;
  const sourceText = readLine(join(projectRoot, node.path), line);
  if (sourceText === undefined) return { where: `${node.path}:${line}`, excerpt: [] };
  const column = kind.call.exec(codeOnly(sourceText));
  const at = column ? column.index + 1 : undefined;
  return { where: `${node.path}:${line}${at ? `:${at}` : ''} (the model's only ${kind.one})`, excerpt: caretExcerpt(line, sourceText, at) };
}

/** A line without its string literals and `--` comment, same length up to the comment (a call inside a string is no call). */
function codeOnly(line: string): string {
  return line.replace(/'(?:[^']|'')*'/g, (s) => ' '.repeat(s.length)).replace(/--.*$/, '');
}

/** A node's failure as run_results.json records it: at the model's line when the engine placed it, with its stable code. */
export function describeNodeError(err: unknown, node: ManifestNode, ctx: Pick<BuildContext, 'adapter' | 'projectRoot'>): { message: string; code: Code } {
  if (err instanceof TsformError) return { message: `${node.path}: ${err.message}`, code: err.code };
  const text = ctx.adapter.describeError(err);
  const at = locateModelError(ctx.adapter.errorPosition?.(err), node, ctx.projectRoot) ?? locateValueError(text, node, ctx.projectRoot);
  if (!at) return { message: `${node.path}: ${text}`, code: Codes.sqlError };
  // The engine's own `LINE n:` counts lines of the statement sent, not of the model: replaced by the model's line.
  return { message: [`${at.where}: ${text.replace(/ \| LINE \d+:.*$/, '')}`, ...at.excerpt].join('\n'), code: Codes.sqlError };
}
