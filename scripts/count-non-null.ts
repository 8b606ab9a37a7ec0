import ts from 'typescript';
import { readFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
const files = execSync('git ls-files src', { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.ts'));
let n = 0; const per: Record<string, number> = {};
for (const f of files) {
  const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node: ts.Node) => { if (node.kind === ts.SyntaxKind.NonNullExpression) { n++; per[f] = (per[f] ?? 0) + 1; } ts.forEachChild(node, visit); };
  visit(sf);
}
console.log(n); console.log(Object.entries(per).sort((a, b) => b[1] - a[1]).slice(0, 12));
