/**
 * A macro's text arguments are SQL pasted into its body, and the lineage rendering pastes them
 * again inside its markers (`tsf_column(…)`, the shift copied into `tsf_shifted(…, shift)`). An
 * argument that is not one whole expression (a `/*` that opens a comment, an unbalanced
 * parenthesis, a second select item) splits differently in the two renderings: block comments
 * nest in both engines, so `"v.shift /* x"` then hid other text from the checks than from the
 * engine, and the checks passed SQL that was not what ran (red-team, 2026-12-07). So each text
 * argument must be one self-contained expression: it scans and parses alone as exactly one
 * select item without an alias, and holds no comment and no semicolon.
 */
import { loadModule, parseSync, scanSync } from 'libpg-query';
import { isObject } from './pg-tree.ts';

await loadModule();

/** Why `text` is not one self-contained SQL expression, or undefined when it is one. */
export function argumentProblem(text: string): string | undefined {
  let tokens: { text: string; tokenName: string }[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return 'does not scan as SQL (an unterminated comment, string or quoted name)';
  }
  if (tokens.length === 0) return 'is empty';
  if (tokens.some((t) => t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT')) return 'holds a comment';
  if (tokens.some((t) => t.text === ';')) return 'holds a semicolon';
  let tree: unknown;
  try {
    tree = parseSync(`SELECT ${text}`);
  } catch {
    return 'is not one SQL expression';
  }
  const stmts = isObject(tree) && Array.isArray(tree.stmts) ? tree.stmts : [];
  const select = stmts.length === 1 && isObject(stmts[0]) && isObject(stmts[0].stmt) ? stmts[0].stmt.SelectStmt : undefined;
  if (!isObject(select)) return 'is not one SQL expression';
  const clauses = Object.keys(select).filter((k) => k !== 'targetList' && k !== 'limitOption' && k !== 'op');
  const targets = Array.isArray(select.targetList) ? select.targetList : [];
  const only = targets.length === 1 && isObject(targets[0]) && isObject(targets[0].ResTarget) ? targets[0].ResTarget : undefined;
  if (clauses.length > 0 || !only || only.name !== undefined) return 'is not one SQL expression (a second item, an alias or a clause)';
  return undefined;
}
