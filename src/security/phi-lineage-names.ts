/**
 * The name PostgreSQL gives an unaliased select item (FigureColname in parse_target.c): a column
 * reference its column's name, a call its function's name, a cast its operand's name (or the
 * type's), and `?column?` for the rest. DuckDB names some expressions differently (it uses the
 * expression text); models that publish a column should alias it, as the demo's do.
 */
import type { Node } from 'libpg-query';

export function figureColname(node: Node): string {
  return figure(node)?.name ?? '?column?';
}

/** Strength 2: a real name; 1: a fallback (`case`, a type name) that a cast may override. */
function figure(node: Node): { name: string; strength: number } | undefined {
  if ('ColumnRef' in node) {
    const fields = node.ColumnRef.fields ?? [];
    const last = fields[fields.length - 1];
    return last && 'String' in last && last.String.sval !== undefined ? { name: last.String.sval, strength: 2 } : undefined;
  }
  if ('A_Indirection' in node) {
    const ind = node.A_Indirection.indirection ?? [];
    for (let i = ind.length - 1; i >= 0; i--) {
      const n = ind[i];
      if (n && 'String' in n && n.String.sval !== undefined) return { name: n.String.sval, strength: 2 };
    }
    return node.A_Indirection.arg ? figure(node.A_Indirection.arg) : undefined;
  }
  if ('FuncCall' in node) {
    const names = node.FuncCall.funcname ?? [];
    const last = names[names.length - 1];
    return last && 'String' in last && last.String.sval !== undefined ? { name: last.String.sval, strength: 2 } : undefined;
  }
  if ('A_Expr' in node) return node.A_Expr.kind === 'AEXPR_NULLIF' ? { name: 'nullif', strength: 2 } : undefined;
  if ('TypeCast' in node) {
    const inner = node.TypeCast.arg ? figure(node.TypeCast.arg) : undefined;
    if (inner && inner.strength > 1) return inner;
    const names = node.TypeCast.typeName?.names ?? [];
    const last = names[names.length - 1];
    return last && 'String' in last && last.String.sval !== undefined ? { name: last.String.sval, strength: 1 } : inner;
  }
  if ('CollateClause' in node) return node.CollateClause.arg ? figure(node.CollateClause.arg) : undefined;
  if ('SubLink' in node) {
    const sl = node.SubLink;
    if (sl.subLinkType === 'EXISTS_SUBLINK') return { name: 'exists', strength: 2 };
    if (sl.subLinkType === 'ARRAY_SUBLINK') return { name: 'array', strength: 2 };
    if (sl.subLinkType === 'EXPR_SUBLINK' && sl.subselect && 'SelectStmt' in sl.subselect) {
      const first = sl.subselect.SelectStmt.targetList?.[0];
      if (first && 'ResTarget' in first && first.ResTarget.name) return { name: first.ResTarget.name, strength: 2 };
    }
    return undefined;
  }
  if ('CaseExpr' in node) return { name: 'case', strength: 1 };
  if ('A_ArrayExpr' in node) return { name: 'array', strength: 2 };
  if ('RowExpr' in node) return { name: 'row', strength: 2 };
  if ('CoalesceExpr' in node) return { name: 'coalesce', strength: 2 };
  if ('MinMaxExpr' in node) return { name: node.MinMaxExpr.op === 'IS_LEAST' ? 'least' : 'greatest', strength: 2 };
  if ('GroupingFunc' in node) return { name: 'grouping', strength: 2 };
  if ('SQLValueFunction' in node) {
    const op = node.SQLValueFunction.op ?? '';
    return { name: op.replace(/^SVFOP_/, '').replace(/_N$/, '').toLowerCase(), strength: 2 };
  }
  return undefined;
}
